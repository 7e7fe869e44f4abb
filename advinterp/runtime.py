"""Where and how torch runs: device choice, seeding, thread count, and the GPU-ready
pieces of an inference pass (``base.precision`` autocast, pinned non-blocking transfers,
channels_last).

An inference pass (features, detect) runs its forwards as::

    with autocast(device, precision), channels_last(model, precision == "bf16"):
        out = model(to_device(batch, device)).float()

With ``precision="fp32"`` both contexts do nothing and :func:`to_device` on the CPU is the
tensor itself, so the results are bitwise those of a plain ``model(batch)``.
"""

from __future__ import annotations

import contextlib
import logging
import random
from collections.abc import Iterator
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from advinterp.errors import ParamError

Precision = Literal["fp32", "bf16"]

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


def autocast(device: torch.device, precision: Precision) -> contextlib.AbstractContextManager[Any]:
    """The forwards of an inference-only pass at ``base.precision``.

    ``bf16``: :func:`torch.autocast` to bfloat16 on ``device`` (convolutions and matmuls
    in bf16, reductions and softmax kept in fp32 by torch's autocast lists); callers
    cast outputs back with ``.float()``. ``fp32``: a no-op, results bitwise unchanged.

    Raises:
        ParamError: bf16 asked for on a CUDA device without bf16 support (pre-Ampere).
    """
    if precision == "fp32":
        return contextlib.nullcontext()
    if device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise ParamError(f"base.precision: bf16 asked for, but {device} does not support it")
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def to_device(batch: np.ndarray | torch.Tensor, device: torch.device) -> torch.Tensor:
    """``batch`` as a tensor on ``device``; to CUDA from pinned memory, without blocking.

    On the CPU a float32 array becomes a tensor sharing its memory (no copy). To CUDA the
    batch is first copied into page-locked memory, so the host-to-device copy runs
    asynchronously and the host can prepare the next batch while it is in flight.

    Shape:
        batch: any; returns the same shape and dtype.
    """
    x = torch.as_tensor(batch)
    if device.type != "cuda":
        return x.to(device)
    if not x.is_pinned():
        x = x.pin_memory()
    return x.to(device, non_blocking=True)


@contextlib.contextmanager
def channels_last(model: nn.Module, enabled: bool = True) -> Iterator[nn.Module]:
    """``model``'s 4-D weights in channels_last (NHWC) memory format inside the block.

    Convolutions whose weight is NHWC compute in NHWC, which bf16 kernels (AMX on the
    CPU, tensor cores on CUDA) run faster. Only with bf16: in fp32 it changes the
    summation order, so outputs would no longer be bitwise the NCHW ones (measured
    max |diff| 4e-7 on tiny_resnet). Each tensor's memory format is restored on exit.
    """
    if not enabled:
        yield model
        return
    params = [n for n, t in model.named_parameters() if t.dim() == 4 and t.is_contiguous()]
    buffers = [n for n, t in model.named_buffers() if t.dim() == 4 and t.is_contiguous()]
    model.to(memory_format=torch.channels_last)
    try:
        yield model
    finally:
        for name in params:  # ``Module.to`` swaps a parameter's data, keeping the object
            p = model.get_parameter(name)
            p.data = p.data.contiguous()
        for name in buffers:  # ...but replaces a buffer by a new tensor
            owner, _, attr = name.rpartition(".")
            setattr(model.get_submodule(owner), attr, model.get_buffer(name).contiguous())


def precision_attrs(precision: Precision) -> dict[str, str]:
    """What a store records of ``base.precision``: nothing for fp32, so fp32 outputs stay
    byte for byte what they were before the key existed."""
    return {} if precision == "fp32" else {"precision": precision}
