"""``storage``: the attack store's adversarial images relative to their clean images vs
today's float32 (blosc-zstd, byte shuffle): bytes per image, write and read throughput.

Data: every adversarial image set of ``artifacts/attack/adversarial.zarr`` (the embedded
default: 2 models x 2 modes x 7 eps x 200 images of 3x64x64), read as values whichever
encoding that store has, with the clean images it was made from. Without it, a same-size
IFGSM-like stand-in (random signed steps of α on random images, projected as the attack
does) is measured and the rows say so.

Both layouts are written by the store module as the stage writes them (one
``write_shard`` per 64-image shard, the encoding inside it) into fresh stores, and read
back as a reader reads them (``open_store``, then ``read_array`` per set; the relative
layout reads its clean images once, into the process's reference cache). The relative
layout's bytes include its clean images, written once. Report rows put the bit-level
codings the encoding was chosen over (XOR and integer difference of the bit patterns),
and the words under bitshuffle and two other compressors, beside today's, each chunk
compressed as the store would.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import numpy as np
from numcodecs import Blosc

from advinterp.attacks.ifgsm_grid import relative_to_clean
from advinterp.data.adversarial import ChainLayout
from advinterp.errors import StoreError
from advinterp.store import (
    create_array,
    create_group,
    encode,
    forget_references,
    open_store,
    read_array,
    write_shard,
)
from bench.rows import Row, interleaved_best

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[1]
ATTACK = ROOT / "artifacts" / "attack" / "adversarial.zarr"
DIMS = ("sample", "channel", "y", "x")
CHUNK = 64

# (group path, eps, step size, adversarial images)
Sets = list[tuple[str, float, float, np.ndarray]]


def _attack_sets() -> tuple[np.ndarray, Sets, str]:
    """Clean images and every adversarial set of the attack store, as values."""
    store = open_store(ATTACK, {"rows": 1})
    layout = ChainLayout.from_attrs(store.attrs, str(ATTACK))
    if "clean" in store:
        clean = read_array(store, "clean")
    else:  # a store from before the encoding: the clean images are the dataset's rows
        dataset = open_store(ROOT / str(store.attrs["dataset"]), {"images": 4})
        clean = np.asarray(dataset["images"].get_orthogonal_selection((read_array(store, "rows"),)))
    sets = [
        (path, eps, float(store[path].attrs["step_size"]), read_array(store, f"{path}/images"))
        for _, _, eps, path in layout.adversarial_sets()
    ]
    return clean.astype(np.float32, copy=False), sets, f"{ATTACK.relative_to(ROOT)}"


def _stand_in(n: int = 200, size: int = 64, steps: int = 10) -> tuple[np.ndarray, Sets, str]:
    """The default grid's shapes, IFGSM-like values (the attack store is not there)."""
    rng = np.random.default_rng(0)
    clean = rng.random((n, 3, size, size), dtype=np.float32)
    sets: Sets = []
    for model in ("standard", "at_0.02"):
        for mode in ("untargeted", "targeted"):
            for eps in (0.0025, 0.005, 0.01, 0.02, 0.04, 0.06, 0.12):
                alpha = 2.5 * eps / steps
                adv = clean.copy()
                for _ in range(steps):
                    step = np.float32(alpha) * rng.choice(np.float32([-1, 1]), clean.shape)
                    adv = np.clip(np.clip(adv + step, clean - eps, clean + eps), 0, 1)
                sets.append((f"{model}/{mode}/eps_{eps:g}", eps, alpha, adv))
    return clean, sets, "IFGSM-like stand-in (no attack store)"


def _write(path: Path, clean: np.ndarray, sets: Sets, relative: bool) -> None:
    """Every set shard by shard as the attack stage writes it (the clean images first)."""
    group = create_group(path)
    n = len(clean)
    todo = [("clean", None, clean)] if relative else []
    todo += [
        (f"{p}/images", relative_to_clean(e, a) if relative else None, v) for p, e, a, v in sets
    ]
    for name, rel, values in todo:
        arr = create_array(
            group, name, values.shape, "float32", dims=DIMS, chunk_size=CHUNK, relative=rel
        )
        for s in range(0, n, CHUNK):
            sl = slice(s, min(s + CHUNK, n))
            write_shard({name: arr}, {name: values[sl]}, sl)


def _read(path: Path, sets: Sets, which: int | None = None) -> None:
    """Read every set (or one) as a reader does, from a cold reference cache."""
    forget_references()
    store = open_store(path)
    for p, *_ in sets if which is None else sets[which : which + 1]:
        read_array(store, f"{p}/images")


def _read_every_set(old: Path, new: Path, sets: Sets, repeat: int) -> dict[str, float]:
    """Best time to open each store and read every set once, summed piece by piece: the
    open, then each set, the two layouts interleaved set by set, so a burst of load on a
    shared machine spoils one piece of one run rather than a whole run of one layout.
    The relative layout's first set is read with a cold reference cache (it reads the
    clean images, once for all sets, as a stage does)."""
    total = interleaved_best(
        {"old": lambda: open_store(old), "new": lambda: open_store(new)}, repeat
    )
    stores = {"old": open_store(old), "new": open_store(new)}
    for i, (p, *_) in enumerate(sets):

        def read(key: str, cold: bool, name: str = f"{p}/images") -> None:
            if cold:
                forget_references()
            read_array(stores[key], name)

        best = interleaved_best(
            {"old": lambda: read("old", False), "new": lambda c=i == 0: read("new", c)}, repeat
        )
        total = {k: total[k] + best[k] for k in total}
    return total


def _bytes(path: Path, names: list[str]) -> int:
    return sum(f.stat().st_size for name in names for f in (path / name).rglob("*") if f.is_file())


def _chunked_bytes(arrays: list[np.ndarray], codec: Blosc) -> int:
    """What ``codec`` makes of ``arrays``, one chunk per shard as the store writes them."""
    return sum(
        len(codec.encode(np.ascontiguousarray(a[s : s + CHUNK])))
        for a in arrays
        for s in range(0, len(a), CHUNK)
    )


def _zigzag_delta(adv: np.ndarray, clean: np.ndarray) -> np.ndarray:
    d = adv.view(np.int32) - clean.view(np.int32)
    return ((d << 1) ^ (d >> 31)).view(np.uint32)


def run(repeat: int = 2, read_repeat: int = 9) -> list[Row]:
    try:
        clean, sets, source = _attack_sets()
    except StoreError as err:
        log.warning("%s: measuring a stand-in instead", err)
        clean, sets, source = _stand_in()
    images = sum(len(v) for *_, v in sets)
    shape = "x".join(str(s) for s in clean.shape[1:])
    where = f"{len(sets)} sets x {len(clean)} images of {shape}, {source}"
    with tempfile.TemporaryDirectory() as d:
        old, new = Path(d) / "float32.zarr", Path(d) / "relative.zarr"
        writes = interleaved_best(
            {
                "old": lambda: _write(old, clean, sets, relative=False),
                "new": lambda: _write(new, clean, sets, relative=True),
            },
            repeat=repeat,
        )
        names = [f"{p}/images" for p, *_ in sets]
        old_bytes = _bytes(old, names) / images
        new_sets = _bytes(new, names) / images
        new_bytes = new_sets + _bytes(new, ["clean"]) / images
        # Every set, as a stage reads them (one reference read), then one set cold.
        every = _read_every_set(old, new, sets, read_repeat)
        reads = interleaved_best(
            {
                "old_one": lambda: _read(old, sets, len(sets) // 2),
                "new_one": lambda: _read(new, sets, len(sets) // 2),
            },
            repeat=read_repeat,  # reads are short: more runs to find the undisturbed one
        )
        reads.update(old_all=every["old"], new_all=every["new"])
        for path in (old, new):  # both layouts hold the same values
            for p, *_, values in sets[:: max(1, len(sets) // 4)]:
                got = read_array(open_store(path), f"{p}/images")
                if not np.array_equal(got.view(np.uint32), values.view(np.uint32)):
                    raise AssertionError(f"{path}/{p}: not bitwise the values written")

    # The codings the encoding was chosen over, on the same images, chunk by chunk.
    advs = [v for *_, v in sets]
    xor = [v.view(np.uint32) ^ clean.view(np.uint32) for v in advs]
    delta = [_zigzag_delta(v, clean) for v in advs]
    words = [encode(v, clean, relative_to_clean(e, a))[0] for _, e, a, v in sets]
    shuffle, bitshuffle = Blosc.SHUFFLE, Blosc.BITSHUFFLE
    alternatives = {
        "XOR of the bit patterns, bitshuffle + zstd 3": (xor, Blosc("zstd", 3, bitshuffle)),
        "XOR of the bit patterns, byte shuffle + zstd 3": (xor, Blosc("zstd", 3, shuffle)),
        "integer difference of the bits (zigzag), byte shuffle + zstd 3": (
            delta,
            Blosc("zstd", 3, shuffle),
        ),
        "relative words, bitshuffle + lz4hc 5": (words, Blosc("lz4hc", 5, bitshuffle)),
        "relative words, byte shuffle + zstd 5 (smaller, slower to read)": (
            words,
            Blosc("zstd", 5, shuffle),
        ),
        "relative words, byte shuffle + lz4 5 (faster, larger)": (words, Blosc("lz4", 5, shuffle)),
    }
    per_mb = 1 << 20
    rows = [
        Row(
            "storage (attack images)",
            "float32, blosc-zstd 3 byte shuffle",
            "adversarial images per MiB stored (relative/float32)",
            per_mb / new_bytes,
            per_mb / old_bytes,
            4.0,
            higher_is_better=True,
            note=(
                f"{new_bytes / 1024:.2f} KiB vs {old_bytes / 1024:.2f} KiB per image "
                f"({new_sets / 1024:.2f} KiB of words + {(new_bytes - new_sets) / 1024:.2f} "
                f"KiB share of the clean images); {where}"
            ),
        ),
        Row(
            "storage (attack images)",
            "float32, blosc-zstd 3 byte shuffle",
            "read throughput, every set (relative/float32)",
            images / reads["new_all"],
            images / reads["old_all"],
            1.0,
            higher_is_better=True,
            note=(
                f"{images / reads['new_all']:.0f} vs {images / reads['old_all']:.0f} img/s: "
                "open_store, then read_array of each set, the clean images read once; best "
                "time of each piece, the layouts interleaved set by set"
            ),
        ),
        Row(
            "storage (attack images)",
            "float32, blosc-zstd 3 byte shuffle",
            "read throughput, one set cold (relative/float32)",
            len(clean) / reads["new_one"],
            len(clean) / reads["old_one"],
            None,
            higher_is_better=True,
            note=(
                f"{len(clean) / reads['new_one']:.0f} vs {len(clean) / reads['old_one']:.0f} "
                "img/s: one set of a freshly opened store, its clean images read with it"
            ),
        ),
        Row(
            "storage (attack images)",
            "float32, blosc-zstd 3 byte shuffle",
            "write throughput (relative/float32)",
            images / writes["new"],
            images / writes["old"],
            None,
            higher_is_better=True,
            note=(
                f"{images / writes['new']:.0f} vs {images / writes['old']:.0f} img/s, "
                "write_shard per 64-image shard; relative includes encoding and the clean images"
            ),
        ),
    ]
    for name, (arrays, codec) in alternatives.items():
        size = _chunked_bytes(arrays, codec) / images
        rows.append(
            Row(
                "storage (attack images)",
                "float32, blosc-zstd 3 byte shuffle",
                f"images per MiB: {name}",
                per_mb / size,
                per_mb / old_bytes,
                None,
                higher_is_better=True,
                note=f"{size / 1024:.2f} KiB per image (no clean images counted)",
            )
        )
    return rows
