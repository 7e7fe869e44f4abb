"""Where and how reproducibly torch runs: device choice, seeding, thread count."""

from __future__ import annotations

import logging
import random

import numpy as np
import torch

from advinterp.errors import ParamError

log = logging.getLogger(__name__)


def resolve_device(spec: str) -> torch.device:
    """Turn ``base.device`` into a torch device; ``auto`` picks CUDA when present.

    Raises:
        ParamError: a CUDA/MPS device was asked for on a machine that has none.
    """
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if spec.startswith("cuda") and not torch.cuda.is_available():
        raise ParamError(f"base.device: '{spec}' asked for, but CUDA is not available here")
    if spec == "mps" and not torch.backends.mps.is_available():
        raise ParamError("base.device: 'mps' asked for, but MPS is not available here")
    return torch.device(spec)


def seed_everything(seed: int) -> torch.Generator:
    """Seed python, numpy and torch; return a CPU generator for explicit sampling."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def configure_threads(num_threads: int) -> None:
    """Set torch's intra-op thread count (0 leaves torch's default)."""
    if num_threads > 0:
        torch.set_num_threads(num_threads)
    log.debug("torch uses %d threads", torch.get_num_threads())
