"""Typed configuration: one frozen model per ``params.yaml`` section.

Parameters flow one way: ``params.yaml`` -> a section model checked here -> plain
function arguments in the library. A stage reads only the sections it declares in
``dvc.yaml``; a bad value fails at load with the file, the dotted key and the reason.

Each section model shares its name with the stage that reads it (``train`` is the
``train`` stage, ``stages/train.py`` and the ``train`` Prefect task).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from advinterp.errors import ParamError

DEFAULT_PARAMS = Path("params.yaml")


class Section(BaseModel):
    """Base of every params section: immutable, unknown keys are an error."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class BaseConfig(Section):
    """``base``: what every stage shares."""

    seed: int = Field(0, ge=0)
    device: str = Field("auto", pattern=r"^(auto|cpu|cuda(:\d+)?|mps)$")
    num_threads: int = Field(0, ge=0, description="torch CPU threads; 0 keeps torch's default")
    chunk_size: int = Field(
        64, ge=1, description="samples per zarr shard: the unit of streaming and of parallel work"
    )


class SyntheticConfig(Section):
    """``dataset.synthetic``: the embedded procedurally generated attribute dataset."""

    mode: Literal["fine", "coarse"] = "fine"
    num_classes: int = Field(20, ge=2)
    images_per_class: int = Field(80, ge=3)
    families: int = Field(
        5, ge=1, description="fine mode: classes derive from this many prototypes"
    )
    fine_differences: int = Field(
        3,
        ge=1,
        description="fine mode: attribute groups in which a class departs from its prototype",
    )
    dominance: tuple[float, float] = Field(
        (0.75, 0.95), description="range of a class's probability for its main value of a group"
    )
    dropout: float = Field(0.05, ge=0.0, lt=1.0, description="probability a part is not drawn")
    clutter: int = Field(6, ge=0, description="background clutter shapes per image")
    noise: float = Field(0.03, ge=0.0, le=0.5, description="std of Gaussian pixel noise")

    @model_validator(mode="after")
    def _check(self) -> SyntheticConfig:
        lo, hi = self.dominance
        if not 0.0 < lo <= hi <= 1.0:
            raise ValueError("dominance must satisfy 0 < low <= high <= 1")
        if self.families > self.num_classes:
            raise ValueError("families must not exceed num_classes")
        return self


class DatasetConfig(Section):
    """``dataset``: which source to read and how to shape its images."""

    source: Literal["synthetic", "cub", "awa2", "lad"] = "synthetic"
    root: Path | None = Field(None, description="dataset directory, for the real sources")
    image_size: int = Field(64, ge=8, le=1024)
    val_fraction: float = Field(0.1, ge=0.0, lt=1.0)
    test_fraction: float = Field(0.3, gt=0.0, lt=1.0)
    max_images: int | None = Field(
        None, ge=1, description="keep a class-stratified subset of this many images (quick runs)"
    )
    synthetic: SyntheticConfig = SyntheticConfig()

    @model_validator(mode="after")
    def _check(self) -> DatasetConfig:
        if self.source != "synthetic" and self.root is None:
            raise ValueError(f"source '{self.source}' needs dataset.root")
        if self.val_fraction + self.test_fraction >= 1.0:
            raise ValueError("val_fraction + test_fraction must leave images for training")
        return self


class TrainConfig(Section):
    """``train``: the classifier f (Gulshad et al.'s fine-tuned ResNet)."""

    arch: str = Field("tiny_resnet", description="torchvision model name or 'tiny_resnet'")
    weights: Path | None = Field(None, description="local state_dict to start from (never fetched)")
    epochs: int = Field(15, ge=1)
    batch_size: int = Field(64, ge=1)
    optimizer: Literal["sgd", "adam"] = "sgd"
    lr: float = Field(0.05, gt=0.0)
    momentum: float = Field(0.9, ge=0.0, lt=1.0)
    weight_decay: float = Field(5e-4, ge=0.0)
    label_smoothing: float = Field(0.0, ge=0.0, lt=1.0)
    augment: bool = True
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)

    @model_validator(mode="after")
    def _check(self) -> TrainConfig:
        if min(self.std) <= 0:
            raise ValueError("std must be positive")
        return self


class FeaturesConfig(Section):
    """``features``: penultimate-layer features θ(x)."""

    batch_size: int = Field(128, ge=1)


S = TypeVar("S", bound=Section)


def read_params(path: Path = DEFAULT_PARAMS) -> dict[str, Any]:
    """Read a params file as a plain mapping, with a clear error when it is unreadable."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError as err:
        raise ParamError(f"{path}: params file not found") from err
    except yaml.YAMLError as err:
        raise ParamError(f"{path}: not valid YAML: {err}") from err
    if not isinstance(raw, dict):
        raise ParamError(f"{path}: expected a mapping of sections at the top level")
    return raw


def load_section(model: type[S], name: str, path: Path = DEFAULT_PARAMS) -> S:
    """Validate section ``name`` of a params file into ``model``.

    Raises:
        ParamError: naming ``path``, the dotted key and what is wrong.
    """
    raw = read_params(path)
    return parse_section(model, name, raw.get(name, {}), source=str(path))


def parse_section(model: type[S], name: str, data: Any, source: str = "params") -> S:
    """Validate an in-memory mapping as section ``name`` (tests and flows use this)."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ParamError(f"{source}: section '{name}' must be a mapping")
    try:
        return model.model_validate(data)
    except ValidationError as err:
        problems = []
        for e in err.errors():
            key = ".".join([name, *(str(p) for p in e["loc"])])
            problems.append(f"{key}: {e['msg']} (got {e.get('input')!r})")
        raise ParamError(f"{source}: " + "; ".join(problems)) from None
