"""Mean and spread of one number over seeds: the form every headline number takes."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any


def spread(values: Iterable[float]) -> dict[str, Any]:
    """Mean, sample sd (ddof = 1; 0 for a single value), count and the values themselves.

    The values stay in the result so a reader (and the findings table) can see each seed's
    number, not only the summary. NaN values are refused: a seed that produced no number
    must say so where it ran, not vanish into a mean.
    """
    vals = [float(v) for v in values]
    if not vals:
        raise ValueError("spread of no values")
    if any(math.isnan(v) for v in vals):
        raise ValueError(f"spread of values with NaN: {vals}")
    n = len(vals)
    mean = sum(vals) / n
    sd = math.sqrt(sum((v - mean) ** 2 for v in vals) / (n - 1)) if n > 1 else 0.0
    return {"mean": mean, "sd": sd, "n": n, "values": vals}


def is_spread(obj: Any) -> bool:
    """Whether ``obj`` is a :func:`spread` result (as read back from a metrics file)."""
    return isinstance(obj, Mapping) and {"mean", "sd", "n", "values"} <= set(obj)
