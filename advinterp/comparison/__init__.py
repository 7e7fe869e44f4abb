"""Every method's explanation of the same adversarial examples, side by side.

:mod:`.examples` picks the shared examples, :mod:`.maps` turns each method's explanation
into a pixel map, :mod:`.scores` scores maps with their random expectations,
:mod:`.study` puts them together, :mod:`.tables` and :mod:`.figures` show the result.
"""
