"""Attributes (Gulshad et al.): the method. Each of its stages' sections (``attack``,
``adv_train``, ``sje``, ...) has its model in ``advinterp/config/<section>.py``.
"""

from __future__ import annotations

from advinterp.config.core import Method

ATTRIBUTES = Method(
    "attributes",
    "Attributes",
    "Gulshad et al., Interpreting adversarial examples with attributes",
    1,
)
