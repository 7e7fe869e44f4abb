"""Typed configuration: one frozen model per ``params.yaml`` section, in a module named
for the section (``advinterp.config.lan_train`` holds ``LanTrainConfig``).

A stage depends on the files it imports, so a section's model lives alone: editing
``GroundConfig`` reruns ``ground`` and what reads its section, not the attack or the
robust models beside it in the same method. A method's module (``attributes``, ``lan``,
``a2e``, ``igan``, ``localized``, ``comparison``) holds its :class:`~advinterp.config.core.Method`
entry and what its stages share. This package imports nothing. See
:mod:`advinterp.config.core`.
"""
