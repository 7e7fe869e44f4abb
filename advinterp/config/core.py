"""What every params section shares: the base model, the registry, loading and errors.

Parameters flow one way: ``params.yaml`` -> a section model checked here -> plain
function arguments in the library. Each section model names its ``params.yaml``
section in a ``section`` class variable and registers itself; a stage loads only the
sections its declaration lists (``stages/stage.py``), and a section missing from the
params file is an error, never a silent default.

Each section model lives alone in the module named for its section
(``advinterp/config/<section>.py``), so a stage depends only on the sections it reads
(and those of the library code it imports): editing ``GroundConfig`` leaves the attack
and the robust models current in ``dvc status``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, TypeVar

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
)

from advinterp.errors import ParamError

DEFAULT_PARAMS = Path("params.yaml")

REGISTRY: dict[str, type[Section]] = {}
"""Every top-level section model by its ``params.yaml`` name (filled as modules import)."""


@dataclass(frozen=True)
class Method:
    """One of the published methods the pipeline runs; stages declare which they serve."""

    key: str
    title: str
    paper: str
    order: int = 0  # where the method's stages come in dvc.yaml and the report

    @property
    def heading(self) -> str:
        """``title (first author et al.)``, or the title alone when there is no paper."""
        authors = self.paper.split(",")[0] if "et al." in self.paper else ""
        return f"{self.title} ({authors})" if authors else self.title


SHARED = Method(
    "shared", "Data and classifier", "the dataset and the classifier f every method explains", 0
)
FINDINGS = Method(
    "findings", "Findings", "each paper's headline claims beside ours, over seeds", 98
)
REPORT = Method("report", "Report", "one page of every method's results", 99)


class Section(BaseModel):
    """Base of every params model: immutable, unknown keys are an error.

    A top-level section sets ``section = "<name>"``; nested parameter groups leave it
    ``None``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")
    section: ClassVar[str | None] = None

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        name = cls.__dict__.get("section")
        if name is not None:
            if name in REGISTRY and REGISTRY[name].__qualname__ != cls.__qualname__:
                raise TypeError(f"params section '{name}' is declared twice")
            REGISTRY[name] = cls


class BaseConfig(Section):
    """``base``: what every stage shares."""

    section: ClassVar[str | None] = "base"

    seed: int = Field(0, ge=0)
    device: str = Field("auto", pattern=r"^(auto|cpu|cuda(:\d+)?|mps)$")
    num_threads: int = Field(0, ge=0, description="torch CPU threads; 0 keeps torch's default")
    chunk_size: int = Field(
        64, ge=1, description="samples per zarr shard: the unit of streaming and of parallel work"
    )
    precision: Literal["fp32", "bf16"] = Field(
        "fp32",
        description="inference-only passes (features, adv_features, detect, and LIME's "
        "forwards in explain and compare): bf16 = bfloat16 autocast (faster, agreement with "
        "fp32 measured in bench/); fp32 = bitwise as before",
    )


class ProfileConfig(Section):
    """``profile``: which stages a params file runs, where they write, and over which seeds.

    The default ``params.yaml`` is the profile whose outputs sit at the declared paths
    (``artifacts/<stage>/...``); any other profile (``profiles/<name>/params.yaml``)
    writes under ``artifacts/<name>/`` and ``data/<name>/``. A ``seeded`` stage runs
    once per seed (DVC ``foreach``, ``--seed``), writing under ``seed_<s>/``; its seeds
    replace ``base.seed`` for everything random in it. ``flows.generate`` renders the
    profile's dvc.yaml from this section.
    """

    section: ClassVar[str | None] = "profile"

    name: str = Field("birds", pattern=r"^[a-z][a-z0-9_]*$")
    stages: tuple[str, ...] | None = Field(
        None, description="the stages this profile runs (null = every declared stage)"
    )
    seeds: tuple[int, ...] = Field((0,), min_length=1, description="the seeds of the seeded stages")
    seeded: tuple[str, ...] = Field((), description="stages replicated once per seed")

    @field_validator("seeds")
    @classmethod
    def _distinct_seeds(cls, seeds: tuple[int, ...]) -> tuple[int, ...]:
        if len(set(seeds)) != len(seeds) or any(s < 0 for s in seeds):
            raise ValueError("seeds must be distinct non-negative integers")
        return seeds


class OptimizerParams(Section):
    """An SGD or Adam optimiser, as :func:`advinterp.models.training.make_optimizer` builds it."""

    name: Literal["sgd", "adam"] = "sgd"
    lr: float = Field(0.05, gt=0.0)
    momentum: float = Field(0.9, ge=0.0, lt=1.0, description="SGD momentum (Adam ignores it)")
    weight_decay: float = Field(5e-4, ge=0.0)


class FigureParams(Section):
    """How a stage renders its PNG figures."""

    dpi: int = Field(100, ge=30, le=600)


def _classifier_arch(name: str) -> str:
    """A name ``build_classifier`` knows (torchvision's classification models, the local ones)."""
    from advinterp.models.classifier import available_archs  # local: imports torchvision

    if name not in available_archs():
        raise ValueError(
            f"unknown model '{name}'; use a torchvision classification model name such as "
            "resnet152, or tiny_resnet or tiny_vgg"
        )
    return name


ClassifierArch = Annotated[str, AfterValidator(_classifier_arch)]
"""An architecture name ``build_classifier`` accepts."""


def _eps_list(values: tuple[float, ...]) -> tuple[float, ...]:
    """A sorted list of distinct L-inf budgets in (0, 1] (pixel units)."""
    if not values:
        raise ValueError("list at least one epsilon")
    if any(not 0.0 < e <= 1.0 for e in values):
        raise ValueError("every epsilon must lie in (0, 1] (pixel units)")
    if len(set(values)) != len(values):
        raise ValueError("epsilons must be distinct")
    return tuple(sorted(values))


EpsList = Annotated[tuple[float, ...], AfterValidator(_eps_list)]
"""A sorted tuple of distinct L-inf budgets in (0, 1], pixel units."""


class ScaleConfig(Section):
    """``scale``: how shard-mapped stages run (never what they compute).

    Read by the stages that map over samples but deliberately declared as a DVC param
    of none of them: a Dask run and a local run are cache hits for each other.
    """

    section: ClassVar[str | None] = "scale"

    executor: Literal["local", "dask"] = Field(
        "local", description="local: shards in the stage's process; dask: prefect-dask tasks"
    )
    workers: int = Field(2, ge=1, description="worker processes of the temporary LocalCluster")
    threads_per_worker: int = Field(1, ge=1, description="torch threads in each Dask worker")
    address: str | None = Field(
        None, description="scheduler of a running Dask cluster (tcp://host:8786); null = local"
    )
    prefetch: bool = Field(
        True,
        description="local executor: read the next shard's images while this one computes "
        "(features, adv_features); a Dask worker does not know its next shard",
    )


S = TypeVar("S", bound=Section)


def read_params(path: Path = DEFAULT_PARAMS) -> dict[str, Any]:
    """Read a params file as a plain mapping, with a clear error when it is unreadable."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError as err:
        raise ParamError(f"{path}: params file not found") from err
    except yaml.YAMLError as err:
        raise ParamError(f"{path}: not valid YAML: {' '.join(str(err).split())}") from None
    if not isinstance(raw, dict):
        raise ParamError(f"{path}: expected a mapping of sections at the top level")
    return raw


def section_name(model: type[Section]) -> str:
    """The ``params.yaml`` section of a top-level model (a nested group has none)."""
    if model.section is None:
        raise TypeError(f"{model.__name__} is not a top-level params section")
    return model.section


def load(model: type[S], path: Path = DEFAULT_PARAMS) -> S:
    """Validate ``model``'s section of a params file.

    Raises:
        ParamError: naming ``path`` and the section when it is missing, or the dotted
            key and what is wrong with its value.
    """
    name = section_name(model)
    raw = read_params(path)
    if name not in raw:
        raise ParamError(f"{path}: section '{name}' is missing")
    return parse_section(model, raw[name], source=str(path))


def parse_section(model: type[S], data: Any, source: str = "params") -> S:
    """Validate an in-memory mapping as ``model``'s section (tests and flows use this)."""
    name = section_name(model)
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


def all_sections() -> dict[str, type[Section]]:
    """Every section model of every method, by name (imports each config module)."""
    import importlib
    import pkgutil

    import advinterp.config as package

    for info in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"{package.__name__}.{info.name}")
    return dict(REGISTRY)
