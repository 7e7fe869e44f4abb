"""The comparison's store: the shared examples, every map and every reference set."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from advinterp.comparison.examples import GROUPS
from advinterp.comparison.study import Comparison
from advinterp.store import create_group, write_array

FORMAT = "advinterp-comparison/1"


def write_maps(path: Path, c: Comparison, chunk_size: int, params: dict[str, Any]) -> None:
    """Write ``c``'s examples, maps (one (N, H, W) array per method) and references to a
    new zarr store at ``path`` (inside an atomic output)."""
    ex = c.examples
    group = create_group(
        path,
        {
            "comparison_format": FORMAT,
            "methods": list(c.maps),
            "references": list(c.references),
            "params": params,
            **{k: v for k, v in c.info.items() if k != "methods"},
            "method_info": c.info.get("methods", []),
        },
    )
    sample = ("sample",)
    for name in ("rows", "label", "adv_class", "localized"):
        write_array(group, name, getattr(ex, name), dims=sample, chunk_size=chunk_size)
    codes = np.array([GROUPS.index(str(g)) for g in ex.group], np.int8)
    write_array(
        group, "group", codes, dims=sample, chunk_size=chunk_size, attrs={"codes": list(GROUPS)}
    )
    for name in ("clean", "adversarial"):
        write_array(
            group,
            name,
            getattr(ex, name),
            dims=("sample", "channel", "y", "x"),
            chunk_size=chunk_size,
            attrs={"range": [0, 1]},
        )
    pixels = ("sample", "y", "x")
    write_array(
        group,
        "delta",
        c.delta.astype(np.float32),
        dims=pixels,
        chunk_size=chunk_size,
        attrs={"units": "|x̂ - x| summed over channels"},
    )
    maps = group.require_group("maps")
    for name, m in c.maps.items():
        write_array(
            maps,
            name,
            m.astype(np.float32),
            dims=pixels,
            chunk_size=chunk_size,
            attrs={"units": "relevance >= 0 (only the order counts)"},
        )
    refs = group.require_group("references")
    for name, r in c.references.items():
        write_array(refs, name, r, dims=pixels, chunk_size=chunk_size)
