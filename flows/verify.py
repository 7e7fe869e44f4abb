"""Re-hash what DVC recorded: the workspace outputs and their cache objects.

DVC 3 trusts its own bookkeeping (checked on DVC 3.67 / dvc-data 3.18):

- ``dvc checkout`` (and ``dvc repro`` restoring a stage from its run cache) copies or
  links a cache object into the workspace without re-hashing it: the objects are
  read-only (mode 0444) and ``LocalHashFileDB.check`` skips the hash of read-only
  objects, and the index-based checkout does not call it at all;
- ``dvc status`` reuses the hash it recorded for a file while the file's inode, mtime
  and size are unchanged, and after a checkout it records the hash the lock expects.

So a flipped byte in a cache object reaches the workspace through ``dvc checkout`` and
``dvc status`` stays clean. This module hashes the bytes themselves (DVC 3's ``md5`` is
the plain MD5 of a file's content; a directory's ``.dir`` object lists its files)::

    python -m flows.verify                         # every recorded output and cache object
    python -m flows.verify data/dataset.zarr       # some outputs only
    python -m flows.verify --no-cache              # the workspace only

It prints one line per damaged file, naming it and the remedy, and exits 1 if there is
any. Neither ``dvc repro`` nor the Prefect flow runs it: run it after restoring from a
cache you do not fully trust (a shared or copied cache, an old disk).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

_BLOCK = 1 << 20


@dataclass(frozen=True)
class Recorded:
    """One output as dvc.lock records it.

    Attributes:
        path: the output in the workspace (absolute).
        md5: DVC's hash (``<hex>``, or ``<hex>.dir`` for a directory).
        cache: the cache's object directory (``.../files/md5``); None for an output
            kept out of the cache (metrics, plots: git holds them).
        stage: the stage that writes it, as ``dvc repro`` names it.
        root: the repository root (for relative paths in messages).
    """

    path: Path
    md5: str
    cache: Path | None
    stage: str
    root: Path

    @property
    def rel(self) -> str:
        return _rel(self.path, self.root)

    def obj(self, md5: str) -> Path | None:
        """Where the cache keeps the object ``md5``."""
        return None if self.cache is None else self.cache / md5[:2] / md5[2:]


@dataclass(frozen=True)
class Damage:
    """A file whose bytes are not the ones DVC recorded."""

    path: str  # relative to the repository root where possible
    what: str

    def __str__(self) -> str:
        return f"{self.path}: {self.what}"


def _rel(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


def file_md5(path: Path) -> str:
    """The MD5 of a file's content (DVC 3's ``md5`` hash)."""
    h = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        while block := f.read(_BLOCK):
            h.update(block)
    return h.hexdigest()


def recorded_outputs(root: Path | str) -> dict[str, list[Recorded]]:
    """Every output recorded in the dvc.lock files of ``root``, by the stage writing it."""
    from dvc.repo import Repo

    from flows.dvc_dag import address

    root = Path(root).resolve()
    found: dict[str, list[Recorded]] = {}
    with Repo(str(root)) as repo:
        for out in repo.index.outs:
            name = address(out.stage, root)
            if name is None or not out.hash_info or not out.hash_info.value:
                continue  # not recorded yet (the stage never ran) or not a stage output
            cache = Path(out.cache.path) if out.use_cache and out.cache is not None else None
            found.setdefault(name, []).append(
                Recorded(Path(out.fs_path), str(out.hash_info.value), cache, name, root)
            )
    return found


def _manifest(rec: Recorded) -> tuple[list[tuple[str, str]] | None, Damage | None]:
    """A directory output's (relpath, md5) list from its ``.dir`` cache object."""
    obj = rec.obj(rec.md5)
    if obj is None or not obj.is_file():
        return None, Damage(
            rec.rel, f"cannot check: DVC's listing {rec.md5} is not in the cache ({obj})"
        )
    data = obj.read_bytes()
    if hashlib.md5(data, usedforsecurity=False).hexdigest() != rec.md5.removesuffix(".dir"):
        return None, Damage(_rel(obj, rec.root), f"DVC cache object (listing of {rec.rel}) damaged")
    return [(e["relpath"], e["md5"]) for e in json.loads(data)], None


def _files(rec: Recorded) -> Iterator[tuple[Path, str] | Damage]:
    """Each file of ``rec`` with the md5 DVC recorded for it, or the damage that stops
    the listing."""
    if not rec.md5.endswith(".dir"):
        yield rec.path, rec.md5
        return
    entries, damage = _manifest(rec)
    if damage is not None:
        yield damage
        return
    for relpath, md5 in entries or []:
        yield rec.path / relpath, md5


def _advice(rec: Recorded, obj_damaged: bool) -> str:
    if obj_damaged:
        return (
            f"its DVC cache object is damaged too: delete that object and {rec.rel}, "
            f"then `dvc repro {rec.stage}`"
        )
    return f"restore it with `dvc checkout {rec.stage}` (or `dvc repro {rec.stage}`)"


def verify(
    records: Iterable[Recorded], *, workspace: bool = True, cache: bool = True
) -> list[Damage]:
    """Hash the workspace files and/or the cache objects of ``records``.

    Returns:
        One :class:`Damage` per file whose bytes differ from what DVC recorded (or that
        is missing from the workspace); an empty list when everything matches. Cache
        objects absent from the cache are not damage (``dvc gc`` or a partial pull).
    """
    found: list[Damage] = []
    for rec in records:
        for item in _files(rec):
            if isinstance(item, Damage):
                found.append(item)
                continue
            path, md5 = item
            obj = rec.obj(md5)
            obj_damaged: bool | None = None  # None: not looked at
            if cache and obj is not None and obj.is_file():
                obj_damaged = file_md5(obj) != md5
                if obj_damaged:
                    found.append(
                        Damage(
                            _rel(obj, rec.root),
                            f"DVC cache object of {_rel(path, rec.root)} (stage '{rec.stage}') "
                            "damaged: its bytes no longer hash to its name; delete it, "
                            f"then `dvc repro {rec.stage}` (or `dvc pull`) rewrites it",
                        )
                    )
            if not workspace:
                continue
            if not path.is_file():
                found.append(Damage(_rel(path, rec.root), f"missing; {_advice(rec, False)}"))
                continue
            actual = file_md5(path)
            if actual != md5:
                if obj_damaged is None:  # which way out: the cache object decides
                    obj_damaged = obj is not None and obj.is_file() and file_md5(obj) != md5
                found.append(
                    Damage(
                        _rel(path, rec.root),
                        f"content differs from what DVC recorded for {rec.rel} of stage "
                        f"'{rec.stage}' (md5 {actual}, recorded {md5}); "
                        f"{_advice(rec, obj_damaged)}",
                    )
                )
    return found


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m flows.verify",
        description="Re-hash the outputs DVC recorded (workspace and cache), bypassing "
        "DVC's own hash cache; one line per damaged file, exit 1 if any.",
    )
    p.add_argument("paths", nargs="*", help="outputs to check (default: every recorded one)")
    p.add_argument("--repo", default=".", help="repository root holding dvc.yaml")
    p.add_argument("--no-cache", action="store_true", help="skip the DVC cache objects")
    p.add_argument("--no-workspace", action="store_true", help="skip the workspace files")
    args = p.parse_args(argv)
    root = Path(args.repo).resolve()
    records = [r for recs in recorded_outputs(root).values() for r in recs]
    if args.paths:
        wanted = {Path(os.path.normpath(root / x)) for x in args.paths}
        records = [r for r in records if r.path in wanted]
        unknown = wanted - {r.path for r in records}
        if unknown:
            p.error(f"not an output dvc.lock records: {', '.join(sorted(map(str, unknown)))}")
    damage = verify(records, workspace=not args.no_workspace, cache=not args.no_cache)
    for d in damage:
        sys.stderr.write(f"DAMAGED {d}\n")
    if damage:
        return 1
    sys.stdout.write(f"{len(records)} recorded outputs checked: every byte is what DVC recorded\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
