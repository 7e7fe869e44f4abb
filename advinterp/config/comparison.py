"""The side-by-side comparison of the five methods: the method entry of the report;
the ``compare`` section's model is in :mod:`advinterp.config.compare`.
"""

from __future__ import annotations

from advinterp.config.core import Method

COMPARISON = Method(
    "comparison",
    "Side by side",
    "every method's explanation of the same adversarial examples",
    97,
)
