"""A model used as a fixed function: eval mode, parameters frozen, both restored after.

Attacks and explainers differentiate with respect to the input only; this is the one
guard they all run their model under.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from torch import nn


@contextlib.contextmanager
def frozen(model: nn.Module) -> Iterator[nn.Module]:
    """Eval mode and ``requires_grad=False`` on every parameter; both restored on exit.

    Attacks need gradients with respect to the input only: freezing the parameters
    skips their gradient computation and leaves any ``.grad`` the caller holds untouched.
    The train/eval flag of every submodule is restored as it was (also on error).
    """
    modes = {m: m.training for m in model.modules()}
    flags = {p: p.requires_grad for p in model.parameters()}
    try:
        model.eval()
        for p in flags:
            p.requires_grad_(False)
        yield model
    finally:
        for p, flag in flags.items():
            p.requires_grad_(flag)
        for m, flag in modes.items():
            m.training = flag
