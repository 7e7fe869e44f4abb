"""Attention-mask detection (Nguyen et al.): the method. Its stages' sections have their
models in ``advinterp/config/<section>.py`` (``lan_train``, ``lan_attacks``, ...).
"""

from __future__ import annotations

from advinterp.config.core import Method

LAN = Method(
    "lan",
    "Attention-mask detection",
    "Nguyen et al., Where classification fails, interpretation rises",
    3,
)
