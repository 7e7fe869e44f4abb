"""The plain-text index files of real datasets, read with errors that name file and line.

CUB-200-2011, Animals_with_Attributes2 and LAD describe their images in small text
tables (``<id> <name>`` lists, numeric matrices, comma-separated annotation lines).
Every reader here turns whatever goes wrong (a missing file, bytes that are not UTF-8,
a short line, a word where a number belongs, NaN, a non-integer id, a duplicate id)
into one :class:`~advinterp.errors.DatasetError` of the form ``<file>:<line>: <what>``.

Large numeric tables (CUB's 3.7M-line ``image_attribute_labels.txt``) go through
numpy's C ``loadtxt``; only on failure is the file rescanned to name the line.
"""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from advinterp.errors import DatasetError

log = logging.getLogger(__name__)

# Integers beyond this lose precision as float64: ids that large are malformed anyway.
_MAX_ID = 2**53


def find_file(root: Path, *candidates: str, what: str = "index file") -> Path:
    """The first of ``root/candidate`` that is a file.

    Raises:
        DatasetError: naming the first candidate (and the others looked at).
    """
    for rel in candidates:
        path = root / rel
        if path.is_file():
            return path
    first = root / candidates[0]
    others = [str(root / c) for c in candidates[1:]]
    also = f" (also looked for {', '.join(others)})" if others else ""
    raise DatasetError(f"{first}: missing {what}{also}")


def read_text(path: Path) -> str:
    """A whole file as text (UTF-8, optional BOM), ``\\r\\n`` normalised to ``\\n``."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise DatasetError(f"{path}: missing index file") from None
    except OSError as err:
        raise DatasetError(f"{path}: cannot read ({err.strerror or err})") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise DatasetError(f"{path}:{line}: not UTF-8 text (byte {err.start})") from None
    if "\x00" in text:
        line = text[: text.index("\x00")].count("\n") + 1
        raise DatasetError(f"{path}:{line}: contains NUL bytes (not a text file)")
    return text.replace("\r\n", "\n").replace("\r", "\n")


def read_lines(path: Path) -> list[tuple[int, str]]:
    """Non-blank lines as ``(line number, stripped text)``.

    Raises:
        DatasetError: the file is missing, unreadable, not UTF-8 or has no lines.
    """
    lines = [(i + 1, ln.strip()) for i, ln in enumerate(read_text(path).split("\n"))]
    lines = [(n, ln) for n, ln in lines if ln]
    if not lines:
        raise DatasetError(f"{path}: the file is empty")
    return lines


def read_id_names(path: Path) -> tuple[np.ndarray, list[str], list[int]]:
    """An ``<integer id> <name>`` list (the name may contain spaces).

    Returns:
        ids (n,) int64 (unique, >= 1), names, line numbers.
    """
    ids, names, numbers = [], [], []
    seen: dict[int, int] = {}
    for n, line in read_lines(path):
        parts = line.split(None, 1)
        if len(parts) != 2:
            raise DatasetError(f"{path}:{n}: expected '<id> <name>', found {_show(line)}")
        ident = parse_id(parts[0], path, n)
        if ident in seen:
            raise DatasetError(f"{path}:{n}: id {ident} repeats line {seen[ident]}")
        seen[ident] = n
        ids.append(ident)
        names.append(parts[1].strip())
        numbers.append(n)
    return np.asarray(ids, dtype=np.int64), names, numbers


def parse_id(token: str, path: Path, line: int) -> int:
    """A positive integer id."""
    try:
        value = int(token)
    except ValueError:
        raise DatasetError(f"{path}:{line}: id {_show(token)} is not an integer") from None
    if not 1 <= value < _MAX_ID:
        raise DatasetError(f"{path}:{line}: id {value} out of range (ids start at 1)")
    return value


def read_numbers(
    path: Path | str,
    usecols: Sequence[int] | None = None,
    *,
    text: str | None = None,
    line_numbers: Sequence[int] | None = None,
) -> np.ndarray:
    """A whitespace-separated numeric table, one row per non-blank line.

    Args:
        usecols: read only these columns (lines may then have more fields, as a few of
            CUB's ``image_attribute_labels.txt`` lines do); None reads all columns and
            requires every line to have the same number.
        text: parse this instead of the file's content (``path`` still names it).
        line_numbers: file line of each row of ``text``, for error messages.

    Returns:
        (rows, columns) float64, all finite.
    """
    path = Path(path)
    source = read_text(path) if text is None else text
    if not source.strip():
        raise DatasetError(f"{path}: the file has no numeric rows")
    # Streamed from UTF-8 bytes: a StringIO would hold 4 bytes per character (3.7M lines).
    stream = io.TextIOWrapper(io.BytesIO(source.encode("utf-8")), encoding="utf-8", newline="\n")
    try:
        values = np.loadtxt(
            stream,
            dtype=np.float64,
            comments=None,
            usecols=usecols,
            ndmin=2,
            encoding=None,
        )
    except (ValueError, TypeError, IndexError, OverflowError) as err:
        raise DatasetError(_locate(path, source, err, line_numbers)) from None
    if values.size == 0:
        raise DatasetError(f"{path}: the file has no numeric rows")
    bad = ~np.isfinite(values)
    if bad.any():
        row = int(np.flatnonzero(bad.any(axis=1))[0])
        raise DatasetError(f"{path}:{_line(source, row, line_numbers)}: NaN or infinite value")
    return values


def as_ids(
    values: np.ndarray, path: Path, what: str, *, lines: Sequence[int] | None = None
) -> np.ndarray:
    """A float column that must hold integers (ids, flags): checked and cast to int64."""
    bad = (values != np.round(values)) | (np.abs(values) >= _MAX_ID)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise DatasetError(
            f"{path}:{row_line(path, row, lines)}: {what} {values[row]:g} is not an integer"
        )
    return values.astype(np.int64)


def row_line(path: Path, row: int, lines: Sequence[int] | None = None) -> int:
    """File line number of data row ``row`` (blank lines are not rows)."""
    if lines is not None:
        return int(lines[row])
    return _line(read_text(path), row, None)


def lookup(known: np.ndarray, query: np.ndarray) -> np.ndarray:
    """Position of each ``query`` id in ``known`` (unique ids), or -1 where absent."""
    order = np.argsort(known, kind="stable")
    pos = np.searchsorted(known[order], query)
    pos = np.clip(pos, 0, max(len(known) - 1, 0))
    found = (known[order][pos] == query) if len(known) else np.zeros(len(query), bool)
    return np.where(found, order[pos], -1)


def check_ids(
    path: Path,
    ids: np.ndarray,
    known: np.ndarray,
    known_file: Path,
    what: str,
    *,
    complete: bool,
    lines: Sequence[int] | None = None,
) -> np.ndarray:
    """Map the ``ids`` column of ``path`` onto ``known`` (the ids of ``known_file``).

    Args:
        complete: every known id must appear exactly once (one row per image).

    Returns:
        (n,) int64 positions into ``known``.

    Raises:
        DatasetError: an id that ``known_file`` does not list, a repeated id, or (with
            ``complete``) a known id without a row.
    """
    pos = lookup(known, ids)
    if (pos < 0).any():
        row = int(np.flatnonzero(pos < 0)[0])
        raise DatasetError(
            f"{path}:{row_line(path, row, lines)}: {what} {ids[row]} is not listed in "
            f"{known_file.name}"
        )
    if complete:
        counts = np.bincount(pos, minlength=len(known))
        if (counts > 1).any():
            k = int(np.flatnonzero(counts > 1)[0])
            row = int(np.flatnonzero(pos == k)[1])
            raise DatasetError(
                f"{path}:{row_line(path, row, lines)}: {what} {known[k]} appears more than once"
            )
        if (counts == 0).any():
            k = int(np.flatnonzero(counts == 0)[0])
            missing = int((counts == 0).sum())
            raise DatasetError(
                f"{path}: {what} {known[k]} of {known_file.name} has no entry"
                + (f" ({missing - 1} more missing)" if missing > 1 else "")
            )
    return pos


def map_ids(
    path: Path,
    values: np.ndarray,
    known: np.ndarray,
    known_file: Path,
    what: str,
    *,
    complete: bool,
) -> np.ndarray:
    """A float id column of ``path`` as positions into ``known``: :func:`as_ids`, then
    :func:`check_ids` (the same ``what`` names the column in both errors).

    Shape:
        values: (n,) float64; returns (n,) int64 positions into ``known``.
    """
    ids = as_ids(values, path, what)
    return check_ids(path, ids, known, known_file, what, complete=complete)


def read_class_matrix(path: Path, C: int, A: int, what: str, columns: str) -> np.ndarray:
    """A numeric ``C x A`` class-by-attribute table (one row per class of classes.txt).

    Args:
        what: the table's name in the error, e.g. ``"predicate matrix"``.
        columns: what the columns are and where they are listed, e.g.
            ``"predicates in predicates.txt"``.

    Returns:
        (C, A) float64, all finite.
    """
    values = read_numbers(path)
    if values.shape != (C, A):
        raise DatasetError(
            f"{path}: {what} is {values.shape[0]} x {values.shape[1]}, expected "
            f"{C} x {A} ({C} classes in classes.txt, {A} {columns})"
        )
    return values


def check_cells(path: Path, values: np.ndarray, bad: np.ndarray, expected: str) -> None:
    """Raise naming the first cell (row-major) of ``values`` where ``bad`` holds.

    The message is ``<file>:<line>: value <v> in column <c> is <expected>``.

    Shape:
        values, bad: (rows, columns), rows = the file's non-blank lines.
    """
    if bad.any():
        row, col = (int(v[0]) for v in np.nonzero(bad))
        raise DatasetError(
            f"{path}:{row_line(path, row)}: value {values[row, col]:g} in column {col + 1} is "
            f"{expected}"
        )


def _line(source: str, row: int, line_numbers: Sequence[int] | None) -> int:
    if line_numbers is not None and 0 <= row < len(line_numbers):
        return int(line_numbers[row])
    k = -1
    for i, ln in enumerate(source.split("\n")):
        if ln.strip():
            k += 1
            if k == row:
                return i + 1
    return row + 1


def _locate(path: Path, source: str, err: Exception, line_numbers: Sequence[int] | None) -> str:
    """Turn a numpy parse error ("... at row 3 ...") into ``file:line: message``."""
    msg = str(err)
    m = re.search(r"\brow (\d+)", msg)
    if m:
        # numpy counts data rows (blank lines skipped): from 0 in conversion errors,
        # from 1 in column-count errors.
        row = int(m.group(1)) - (0 if "could not convert" in msg else 1)
        return f"{path}:{_line(source, row, line_numbers)}: malformed line ({msg})"
    return f"{path}: malformed numeric table ({msg})"


def _show(text: str, limit: int = 60) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "...")
