"""Params files from the command line: resize one with an overlay, or check one whole.

    python -m flows.params overlay params/cub_resnet152.yaml params/smoke.yaml -o params.yaml
    python -m flows.params check params/cub_resnet152.yaml

``overlay`` writes the base file with the overlay's values in place
(:mod:`advinterp.config.overlay`); ``check`` validates every section of a file with
its model, the way each stage will when it runs. Both exit 2 with one line on bad input.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from advinterp.config.core import ProfileConfig, all_sections, parse_section, read_params
from advinterp.config.overlay import overlay
from advinterp.errors import AdvinterpError, ParamError
from advinterp.store import write_text
from flows.generate import declarations
from stages.stage import Stage

log = logging.getLogger("flows.params")
_ABSENT = object()


def missing_keys(raw: Mapping[str, Any], stages: Sequence[Stage]) -> list[str]:
    """The DVC params (``section`` or ``section.key``) of ``stages`` a params mapping
    lacks. DVC refuses to run a stage whose declared param is absent from the file, even
    where the section's model has a default for it."""
    missing = []
    for stage in stages:
        for key in stage.params:
            node: Any = raw
            for part in key.split("."):
                node = node.get(part, _ABSENT) if isinstance(node, Mapping) else _ABSENT
            if node is _ABSENT:
                missing.append(f"{key} (read by {stage.name})")
    return sorted(set(missing))


def check(path: Path) -> list[str]:
    """Validate every section of the params file ``path`` and check it has every key the
    stages it runs declare; return the sections checked.

    Raises:
        ParamError: the first section its model refuses, a section no model knows, or
            the declared keys the file lacks.
    """
    raw = read_params(path)
    sections = all_sections()
    unknown = sorted(set(raw) - set(sections))
    if unknown:
        raise ParamError(f"{path}: no stage reads the sections {unknown}")
    for name, value in raw.items():
        parse_section(sections[name], value, source=str(path))
    runs = parse_section(ProfileConfig, raw.get("profile"), source=str(path)).stages
    stages = [s for s in declarations() if runs is None or s.name in runs]
    missing = missing_keys(raw, stages)
    if missing:
        raise ParamError(f"{path}: DVC will refuse to run without {'; '.join(missing)}")
    return list(raw)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    p = argparse.ArgumentParser(prog="python -m flows.params", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    ov = sub.add_parser("overlay", help="write BASE with OVERLAY's values in place")
    ov.add_argument("base", type=Path)
    ov.add_argument("over", type=Path)
    ov.add_argument("-o", "--out", type=Path, required=True, help="the params file to write")
    ck = sub.add_parser("check", help="validate every section of a params file")
    ck.add_argument("path", type=Path)
    args = p.parse_args(argv)
    try:
        if args.command == "check":
            log.info("%s: %d sections valid", args.path, len(check(args.path)))
            return 0
        merged = overlay(read_params(args.base), read_params(args.over), str(args.over))
        header = f"# {args.base} with {args.over} in place (python -m flows.params overlay)\n"
        write_text(args.out, header + yaml.safe_dump(merged, sort_keys=False))
        log.info("wrote %s", args.out)
        return 0
    except AdvinterpError as err:
        log.error("%s", err)
        return 2


if __name__ == "__main__":
    sys.exit(main())
