"""One declaration per stage, and the runner every stage entry point shares.

A stage module is a declaration, a ``main`` and one line that runs it::

    STAGE = Stage(
        name="train",
        method=CLASSIFIER,
        desc="Train the classifier f on the train split; clean val/test accuracy.",
        inputs={"dataset": "data/dataset.zarr"},
        outputs={
            "model": out("artifacts/train/model.pt"),
            "metrics": metrics("artifacts/train/metrics.json"),
            "history": plot("artifacts/train/history.csv", Curve("Training", "epoch", ["acc"])),
        },
        configs=(TrainConfig,),
    )


    def main(io: StageIO) -> None:  # load -> one library call -> write
        cfg = io.config(TrainConfig)
        ...


    if __name__ == "__main__":
        run(STAGE, main)

Everything else derives from the declaration: the command line (one ``--flag`` per
input and output, defaulting to the declared path), ``dvc.yaml`` (``python -m
flows.generate dvc-yaml``: cmd, deps, params, outs, metrics, plots), the report's
sections and the tests' stage world. A stage reads only the params sections it declares: ``io.config``
refuses any other, so dvc.yaml's ``params`` cannot miss one.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Literal, TypeVar

import torch

from advinterp.config.core import DEFAULT_PARAMS, BaseConfig, Method, Section, load
from advinterp.errors import AdvinterpError
from advinterp.profiles import expand_seeds
from advinterp.runtime import configure_threads, resolve_device, seed_everything

log = logging.getLogger("advinterp.stage")

S = TypeVar("S", bound=Section)
OutputKind = Literal["out", "metrics", "plot", "figure", "table"]
BASE_KEYS = ("seed", "device", "num_threads")
ABSENT = "-"  # the command-line value of an optional input a profile does not have
UNIT = "{unit}"  # in a unit stage's output paths: the value of its run
UNIT_DEST = "unit_value"  # where the parser keeps a unit stage's value


@dataclass(frozen=True)
class Curve:
    """One ``dvc plots`` definition drawn from a CSV output.

    Attributes:
        title: the plot's title.
        x: the x column.
        y: y columns of the CSV, or ``{file in the output directory: column}`` to draw
            one column of several files (then ``name`` is the plot's id).
        file: the CSV inside a directory output; ``None`` = the output itself.
        name: the top-level plot id when ``y`` spans files.
    """

    title: str
    x: str
    y: Sequence[str] | Mapping[str, str]
    file: str | None = None
    name: str | None = None


@dataclass(frozen=True)
class Output:
    """A path a stage writes, and how DVC treats it."""

    path: str
    kind: OutputKind
    curves: tuple[Curve, ...] = ()

    @property
    def cached(self) -> bool:
        """Cached outputs live in the DVC cache; the small ones (metrics, tables,
        curves, figures) are committed to git so they show in reviews."""
        return self.kind == "out"


def out(path: str) -> Output:
    """A DVC-cached output: a zarr store, a checkpoint, a directory of them."""
    return Output(path, "out")


def metrics(path: str) -> Output:
    """A JSON of numbers for ``dvc metrics`` (and the report)."""
    return Output(path, "metrics")


def plot(path: str, *curves: Curve) -> Output:
    """A CSV (or directory of CSVs) that ``dvc plots`` draws as ``curves``."""
    return Output(path, "plot", tuple(curves))


def figure(path: str) -> Output:
    """A PNG, or a directory of PNGs, shown by ``dvc plots`` and the report."""
    return Output(path, "figure")


def table(path: str) -> Output:
    """A CSV that is data rather than a curve (committed, not drawn)."""
    return Output(path, "table")


@dataclass(frozen=True)
class Keys:
    """Only some keys of a section are the stage's DVC params (it reads the rest never)."""

    model: type[Section]
    keys: tuple[str, ...]

    def __post_init__(self) -> None:
        unknown = set(self.keys) - set(self.model.model_fields)
        if unknown:
            raise ValueError(f"{self.model.__name__} has no keys {sorted(unknown)}")

    @property
    def params(self) -> list[str]:
        return [f"{self.model.section}.{k}" for k in self.keys]


@dataclass(frozen=True)
class Unit:
    """What a stage that runs once per value of a list param runs over (DVC ``foreach``).

    dvc.yaml gets ``foreach: ${<section>.<key>}``, so adding a value to the list (in
    params.yaml or by ``dvc exp run -S``) adds one run and leaves the others cached. Each
    run gets its value as ``--<key>`` and writes every output at its declared path with
    ``{unit}`` filled in (DVC's rendering of the value); the directory holding an output's
    files is what other stages read and depend on. The stage's params are its section's
    other keys: the list itself decides which runs exist, not what one of them computes.
    """

    model: type[Section]
    key: str

    def __post_init__(self) -> None:
        if self.key not in self.model.model_fields:
            raise ValueError(f"{self.model.__name__} has no key '{self.key}'")

    @property
    def param(self) -> str:
        """The list param: ``<section>.<key>``."""
        return f"{self.model.section}.{self.key}"

    def values(self, params: Path) -> list[float]:
        """The list in ``params`` (validated by the section's model)."""
        return [float(v) for v in getattr(load(self.model, params), self.key)]


def render_unit(value: float) -> str:
    """A unit value as DVC writes ``${item}`` of a float list (Python's ``str``)."""
    return str(float(value))


def fill_unit(path: str, value: str) -> str:
    """A unit output's ``path`` with ``value`` in place of ``{unit}``: one run's file
    (``value`` from :func:`render_unit`), or dvc.yaml's template (``${item}``)."""
    return path.replace(UNIT, value)


def collection(path: str) -> str:
    """The directory that holds a unit output's files (``path`` itself for other outputs)."""
    return path.rsplit("/", 1)[0] if UNIT in path else path


@dataclass(frozen=True)
class Stage:
    """Everything DVC, the CLI, the report and the tests need to know of one stage.

    Attributes:
        name: the one word shared by the dvc.yaml key, ``stages/<name>.py``, the params
            section (when it has one) and the Prefect task.
        method: the published method the stage serves (groups the report).
        desc: one or two sentences: what it computes, with the paper's section/equation.
        inputs: ``--flag`` -> path of a file or directory another stage writes.
        sources: ``--flag`` -> a repository file the stage reads that is no DVC dep:
            dvc.yaml itself, which the report reads for the other stages' outputs (DVC
            refuses it as a dependency; what the report shows of it is in ``gathers``).
        outputs: ``--flag`` -> what it writes.
        configs: the params sections it reads (each a DVC param of the stage), or
            ``Keys(model, ...)`` where only some keys of a section decide its results.
        base: the ``base`` keys it reads (DVC params too).
        runtime: sections it reads that change how it runs, never what it computes
            (``scale``): deliberately not DVC params, so runs that differ only there
            share the cache.
        gathers: it reads every other stage's metrics, curves and figures (the report).
        optional: input flags a profile may lack (no stage of it writes them): the command
            line then passes ``-`` and ``io.optional(flag)`` is None.
        per_seed: input flags that read every seed of a seeded stage (one path with a
            ``seed_0,1,2`` list, :meth:`StageIO.seeds`); other inputs read the first seed.
        unit: the list param the stage runs once per value of (:class:`Unit`); every
            output path then has ``{unit}`` in its file name.
    """

    name: str
    method: Method
    desc: str
    inputs: Mapping[str, str] = field(default_factory=dict)
    outputs: Mapping[str, Output] = field(default_factory=dict)
    sources: Mapping[str, str] = field(default_factory=dict)
    configs: tuple[type[Section] | Keys, ...] = ()
    base: tuple[str, ...] = BASE_KEYS
    runtime: tuple[type[Section], ...] = ()
    gathers: bool = False
    per_seed: tuple[str, ...] = ()
    optional: tuple[str, ...] = ()
    unit: Unit | None = None

    def __post_init__(self) -> None:
        flags = [*self.inputs, *self.sources, *self.outputs]
        if len(set(flags)) != len(flags):
            raise ValueError(f"stage {self.name}: two inputs, sources or outputs share a flag")
        if set(self.per_seed) - set(self.inputs) or set(self.optional) - set(self.inputs):
            raise ValueError(f"stage {self.name}: per_seed/optional name flags that are not inputs")
        unknown = set(self.base) - set(BaseConfig.model_fields)
        if unknown:
            raise ValueError(f"stage {self.name}: unknown base keys {sorted(unknown)}")
        unit_paths = [o.path for o in self.outputs.values() if UNIT in o.path]
        if self.unit is None and unit_paths:
            raise ValueError(f"stage {self.name}: {unit_paths} name {UNIT} but no unit is declared")
        if self.unit is not None:
            if self.unit.model not in self.configs:
                raise ValueError(
                    f"stage {self.name}: its unit's section must be one of its configs"
                )
            if self.unit.key in self.paths():
                raise ValueError(
                    f"stage {self.name}: unit key '{self.unit.key}' is also a path flag"
                )
            dirs = [collection(o.path) for o in self.outputs.values()]
            if len(unit_paths) != len(self.outputs) or any(
                UNIT in d or UNIT not in o.path.rsplit("/", 1)[-1]
                for d, o in zip(dirs, self.outputs.values(), strict=True)
            ):
                raise ValueError(f"stage {self.name}: every output's file name needs {UNIT}")
            if len(set(dirs)) != len(dirs):
                raise ValueError(f"stage {self.name}: each unit output needs its own directory")

    @property
    def params(self) -> list[str]:
        """dvc.yaml ``params``: the declared base keys, then whole sections (a unit
        stage's own section as its keys other than the unit's list)."""
        sections = []
        for c in self.configs:
            if isinstance(c, Keys):
                sections.append(c.params)
            elif self.unit is not None and c is self.unit.model:
                keys = [k for k in c.model_fields if k != self.unit.key]
                sections.append([f"{c.section}.{k}" for k in keys])
            else:
                sections.append([str(c.section)])
        return [f"base.{k}" for k in self.base] + [p for group in sections for p in group]

    @property
    def models(self) -> tuple[type[Section], ...]:
        """The section models it may load: its configs' and its runtime sections."""
        return tuple(c.model if isinstance(c, Keys) else c for c in self.configs) + self.runtime

    def paths(self) -> dict[str, str]:
        """Every declared flag -> its path."""
        outputs = {k: o.path for k, o in self.outputs.items()}
        return {**self.inputs, **self.sources, **outputs}

    def parser(self) -> argparse.ArgumentParser:
        """The command line: ``--params`` and one ``--flag`` per input and output."""
        p = argparse.ArgumentParser(prog=f"python -m stages.{self.name}", description=self.desc)
        p.add_argument("--params", type=Path, default=DEFAULT_PARAMS, help="params file")
        p.add_argument(
            "--seed",
            type=int,
            default=None,
            help="replaces base.seed (a seeded stage runs once per seed of its profile)",
        )
        if self.unit is not None:
            p.add_argument(
                f"--{self.unit.key.replace('_', '-')}",
                dest=UNIT_DEST,
                type=float,
                required=True,
                help=f"the one value of {self.unit.param} this run computes (fills {UNIT})",
            )
        for flag, path in self.paths().items():
            p.add_argument(
                f"--{flag.replace('_', '-')}",
                dest=flag,
                type=_optional_path if flag in self.optional else Path,
                default=Path(path),
                help=f"default: {path}",
            )
        return p

    def argv(self, paths: Mapping[str, str] | None = None) -> list[str]:
        """Command-line flags for ``paths`` (default: the declared ones), in declared order."""
        given = paths if paths is not None else self.paths()
        return [a for flag, p in given.items() for a in (f"--{flag.replace('_', '-')}", str(p))]


def _optional_path(text: str) -> Path | None:
    """``-`` = the input is absent from this profile."""
    return None if text == ABSENT else Path(text)


class StageIO:
    """What ``main`` receives: the resolved paths (``io.<flag>``) and the declared params."""

    def __init__(self, stage: Stage, args: argparse.Namespace) -> None:
        self.stage = stage
        self.params: Path = args.params
        self._seed: int | None = getattr(args, "seed", None)
        self._unit: float | None = getattr(args, UNIT_DEST, None)
        self._paths: dict[str, Path | None] = {f: getattr(args, f) for f in stage.paths()}
        if self._unit is not None:  # a declared default path still holds the placeholder
            value = render_unit(self._unit)
            self._paths = {
                f: None if p is None else Path(fill_unit(str(p), value))
                for f, p in self._paths.items()
            }

    def __getattr__(self, flag: str) -> Path:
        paths = self.__dict__.get("_paths", {})
        if flag in self.stage.optional:
            raise TypeError(f"stage {self.stage.name}: read optional input '{flag}' by io.optional")
        if flag in paths:
            return paths[flag]  # type: ignore[no-any-return]
        raise AttributeError(f"stage {self.stage.name} declares no input or output '{flag}'")

    @property
    def unit(self) -> float:
        """The value of the stage's unit list this run computes (``--<key>``)."""
        if self._unit is None:
            raise TypeError(f"stage {self.stage.name} declares no unit")
        return self._unit

    def optional(self, flag: str) -> Path | None:
        """An ``optional`` input: its path, or None where the profile has no such input."""
        if flag not in self.stage.optional:
            raise TypeError(f"stage {self.stage.name} does not declare '{flag}' optional")
        return self._paths[flag]

    def config(self, model: type[S]) -> S:
        """The validated section ``model``; it must be one the stage declares."""
        if model not in self.stage.models:
            raise TypeError(
                f"stage {self.stage.name} reads {model.__name__} but does not declare it in "
                "configs (or runtime): dvc.yaml would miss the param"
            )
        return load(model, self.params)

    @cached_property
    def base(self) -> BaseConfig:
        """``base``, loaded once, with ``--seed`` in place of ``base.seed`` when given
        (the runner has already seeded and set threads from it)."""
        base = load(BaseConfig, self.params)
        return base if self._seed is None else base.model_copy(update={"seed": self._seed})

    def seeds(self, flag: str) -> dict[int | None, Path]:
        """Every seed's path of a ``per_seed`` input (``{None: path}`` when it is unseeded)."""
        if flag not in self.stage.per_seed:
            raise TypeError(f"stage {self.stage.name} does not declare '{flag}' per_seed")
        return expand_seeds(getattr(self, flag))

    @cached_property
    def device(self) -> torch.device:
        """``base.device`` resolved (``auto`` = CUDA when present)."""
        return resolve_device(self.base.device)


def run(stage: Stage, main: Callable[[StageIO], None]) -> None:
    """The entry point: parse the declared flags, seed, run ``main``; input errors exit 2.

    Errors caused by input (``AdvinterpError``) become one line on stderr and exit code
    2; anything else is a bug and keeps its traceback.
    """
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    io = StageIO(stage, stage.parser().parse_args())
    try:
        if stage.base:
            seed_everything(io.base.seed)
            configure_threads(io.base.num_threads)
        main(io)
    except AdvinterpError as err:
        log.error("%s", err)
        sys.exit(2)
