"""Where a profile's and a seed's outputs live: the one rule every reader of paths shares.

A stage declares its paths once (``artifacts/<stage>/<file>``). The default profile
writes there; another profile ``p`` writes ``artifacts/p/<stage>/<file>`` (and
``data/p/...``); a seeded stage's seed ``s`` writes ``artifacts/<stage>/seed_<s>/<file>``.
The DVC generator, the report and the findings use these functions, so the layout is
defined here only.
"""

from __future__ import annotations

import re
from pathlib import Path

SEED_DIR = "seed_{}"
# Commas, not shell braces: DVC runs commands through the user's shell, which would
# expand ``seed_{0,1}`` into two arguments.
_SEEDS = re.compile(r"seed_([0-9]+(?:,[0-9]+)+)(?=/|$)")


def locate(path: str, profile: str | None = None, seed: int | str | None = None) -> str:
    """The path a declared ``path`` takes in ``profile`` (None = the default) and ``seed``.

    ``seed`` may be a string such as ``"${item}"`` (DVC's foreach placeholder) or a
    list ``"0,1,2"`` (:func:`seed_list`) that :func:`expand_seeds` reads back.
    """
    parts = path.split("/")
    if seed is not None:
        if len(parts) < 3:
            raise ValueError(f"{path}: a seeded output must lie in its stage's directory")
        parts = [*parts[:2], SEED_DIR.format(seed), *parts[2:]]
    if profile is not None:
        parts = [parts[0], profile, *parts[1:]]
    return "/".join(parts)


def seed_list(seeds: tuple[int, ...] | list[int]) -> str:
    """The list that stands for several seeds in one command-line path: ``0,1,2``."""
    return ",".join(str(s) for s in seeds)


def expand_seeds(path: Path | str) -> dict[int | None, Path]:
    """``.../seed_0,1,2/...`` -> one path per seed; a path without a list -> ``{None: path}``
    (one seed's path, or an unseeded one: a single path either way)."""
    text = str(path)
    found = _SEEDS.search(text)
    if found is None:
        return {None: Path(text)}
    seeds = [int(s) for s in found.group(1).split(",") if s]
    return {
        s: Path(text[: found.start()] + SEED_DIR.format(s) + text[found.end() :]) for s in seeds
    }
