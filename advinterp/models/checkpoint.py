"""Saving and loading classifier weights safely.

Checkpoints are plain dicts of tensors, strings and numbers, loaded with
``torch.load(..., weights_only=True)``: a file carrying a pickled payload (code) is
refused instead of executed.
"""

from __future__ import annotations

import pickle
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import torch
from torch import nn

from advinterp.errors import CheckpointError
from advinterp.models.classifier import ImageClassifier, build_classifier
from advinterp.store import atomic_output

CHECKPOINT_FORMAT = "advinterp-classifier/1"
ModelT = TypeVar("ModelT", bound=nn.Module)


def read_weights_file(path: Path | str, device: torch.device | str = "cpu") -> dict[str, Any]:
    """``torch.load`` with ``weights_only=True`` and errors that name the file.

    Raises:
        CheckpointError: missing, truncated/corrupt, or carrying pickled objects.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: weights file not found (weights are never downloaded)")
    try:
        obj = torch.load(path, map_location=device, weights_only=True)
    except pickle.UnpicklingError as err:
        raise CheckpointError(
            f"{path}: refused: the file holds pickled objects that weights_only loading "
            f"does not allow (it could run code). Re-save it as a plain state_dict. "
            f"({_one_line(err)})"
        ) from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as err:
        raise CheckpointError(
            f"{path}: not a readable torch checkpoint ({_one_line(err)})"
        ) from None
    except Exception as err:  # torch's unpickler fails on garbage with assorted types
        raise CheckpointError(
            f"{path}: not a readable torch checkpoint ({type(err).__name__}: {_one_line(err)})"
        ) from None
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path}: expected a dict of tensors, found {type(obj).__name__}")
    return obj


def load_from_state(
    path: Path | str, device: torch.device, from_state: Callable[[dict[str, Any]], ModelT]
) -> ModelT:
    """``from_state`` of the weights file at ``path`` (:func:`read_weights_file`), on ``device``.

    Raises:
        CheckpointError: missing or unreadable file, or ``from_state`` refusing the
            payload (its ValueError, with the file named).
    """
    obj = read_weights_file(path, device)
    try:
        model = from_state(obj)
    except ValueError as err:
        raise CheckpointError(f"{path}: {err}") from None
    return model.to(device)


def _one_line(err: BaseException) -> str:
    """The informative line of a (possibly long, multi-line) torch loading error."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    for line in lines:  # weights_only refusals name the offending global here
        if "unsupported global" in line.lower() or "unsupported operand" in line.lower():
            return line
    return lines[0] if lines else type(err).__name__


def save_classifier(path: Path | str, model: ImageClassifier, **metadata: Any) -> None:
    """Save architecture, normalisation and weights atomically."""
    payload = {
        "format": CHECKPOINT_FORMAT,
        "arch": model.arch,
        "num_classes": model.num_classes,
        "mean": model.mean.flatten().tolist(),
        "std": model.std.flatten().tolist(),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "metadata": metadata,
    }
    with atomic_output(path) as tmp:
        torch.save(payload, tmp)


def load_classifier(
    path: Path | str, device: torch.device | str = "cpu", num_classes: int | None = None
) -> ImageClassifier:
    """Load a checkpoint written by :func:`save_classifier`, in eval mode.

    Args:
        num_classes: when given, the class count of the dataset the model is used on;
            a classifier with another number of outputs is refused.
    """
    obj = read_weights_file(path, device)
    if obj.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path}: not an advinterp classifier checkpoint")
    if num_classes is not None and int(obj.get("num_classes", -1)) != num_classes:
        raise CheckpointError(
            f"{path}: a classifier for {obj.get('num_classes')} classes, but the dataset has "
            f"{num_classes} classes (trained on another dataset?)"
        )
    model = build_classifier(obj["arch"], int(obj["num_classes"]), obj["mean"], obj["std"])
    _load_state(model, obj["state_dict"], path, strict=True)
    return model.to(device).eval()


def load_pretrained(model: ImageClassifier, path: Path | str) -> list[str]:
    """Initialise ``model`` from a local torchvision-style state_dict (fine-tuning start).

    Keys of the original model (``conv1.weight``, ``fc.weight``...) are mapped onto the
    wrapper; the final layer is kept only if its shape matches the new class count.

    Returns:
        Names of parameters left at their fresh initialisation (normally the head).
    """
    obj = read_weights_file(path)
    state = (
        obj.get("state_dict", obj) if obj.get("format") != CHECKPOINT_FORMAT else obj["state_dict"]
    )
    if not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{path}: expected a state_dict mapping names to tensors")
    own = model.state_dict()
    mapped: dict[str, torch.Tensor] = {}
    last = _torchvision_head_name(model, state)
    for key, value in state.items():
        if key.startswith(("body.", "head.", "mean", "std")):
            target = key
        elif last and key.startswith(last + "."):
            target = "head." + key[len(last) + 1 :]
        else:
            target = "body." + key
        if target not in own:
            raise CheckpointError(
                f"{path}: parameter '{key}' does not exist in a {model.arch}: "
                f"wrong architecture for train.arch={model.arch!r}"
            )
        if own[target].shape != value.shape:
            if target.startswith("head."):
                continue  # a new class count: the head is trained from scratch
            raise CheckpointError(
                f"{path}: '{key}' has shape {tuple(value.shape)}, a {model.arch} needs "
                f"{tuple(own[target].shape)}: wrong architecture"
            )
        mapped[target] = value
    missing = [k for k in own if k not in mapped and not k.startswith(("mean", "std"))]
    body_missing = [k for k in missing if k.startswith("body.")]
    if body_missing:
        raise CheckpointError(
            f"{path}: {len(body_missing)} parameters of a {model.arch} are absent "
            f"(first: {body_missing[0]}): wrong architecture"
        )
    model.load_state_dict(mapped, strict=False)
    return missing


def _torchvision_head_name(model: ImageClassifier, state: dict[str, torch.Tensor]) -> str | None:
    """Dotted name of the final Linear in an original torchvision state_dict."""
    # build_classifier swapped the final Linear for an Identity: find it by that.
    for name in (n for n, m in model.body.named_modules() if isinstance(m, nn.Identity)):
        if f"{name}.weight" in state:
            return name
    return None


def _load_state(
    model: nn.Module, state: dict[str, torch.Tensor], path: Path | str, strict: bool
) -> None:
    try:
        model.load_state_dict(state, strict=strict)
    except RuntimeError as err:
        first = str(err).splitlines()[0]
        raise CheckpointError(f"{path}: weights do not fit the architecture: {first}") from None
