"""The findings table: each paper's headline claims, the paper's number, ours over seeds, a verdict.

A :class:`Claim` reads one number per seed from a stage's metrics (``ours``) and the
signed difference the paper claims (``margin``: positive in the paper's direction,
e.g. SJE accuracy minus softmax accuracy). The verdict follows from the margin's
spread over seeds alone, never from how close ours is to the paper's number (the
settings differ in size and data):

- reproduced: the mean margin is positive and exceeds 2 sd;
- partly: positive, but within 2 sd (the seeds do not settle it);
- not reproduced: zero or negative (the opposite direction);
- not comparable: fewer than 3 seeds, or the claim is not testable in this setting
  (``Claim.not_comparable`` says why).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from advinterp.analysis.spread import spread
from advinterp.errors import StoreError

MIN_SEEDS = 3
Metrics = Mapping[str, Any]
PerSeed = Callable[[Sequence[Metrics]], list[float]]


def each(fn: Callable[[Metrics], float]) -> PerSeed:
    """A number from each seeded run's metrics (a stage DVC runs once per seed)."""
    return lambda runs: [float(fn(m)) for m in runs]


def within(fn: Callable[[Metrics], Any]) -> PerSeed:
    """The per-seed values of a :func:`~advinterp.analysis.spread.spread` inside one run's
    metrics (a stage that loops over its own seeds)."""

    def values(runs: Sequence[Metrics]) -> list[float]:
        if len(runs) != 1:
            raise ValueError(f"expected one run holding its seeds, got {len(runs)}")
        return [float(v) for v in fn(runs[0])["values"]]

    return values


def difference(a: PerSeed, b: PerSeed) -> PerSeed:
    """Seed by seed ``a - b``."""
    return lambda runs: [x - y for x, y in zip(a(runs), b(runs), strict=True)]


@dataclass(frozen=True)
class Claim:
    """One headline claim of a paper and how our metrics test it.

    Attributes:
        paper: ``First author et al.``.
        claim: the claim in a few words, with the paper's table or figure.
        paper_number: the paper's own number(s), as text (their setting, not ours).
        source: the metrics it reads: a key of the findings stage's inputs.
        profile: the profile those metrics come from (``birds``, ``digits``).
        ours: the number shown beside the paper's, one per seed, from the source's
            metrics (one mapping per seeded run; :func:`each` and :func:`within` build it).
        margin: the claimed difference, one per seed (> 0 = as the paper says).
        measures: what ``margin`` is, for the reason line.
        not_comparable: why the claim cannot be tested here (None = it can).
    """

    paper: str
    claim: str
    paper_number: str
    source: str
    profile: str
    ours: PerSeed
    margin: PerSeed
    measures: str
    not_comparable: str | None = None


def verdict(margin: Mapping[str, Any], not_comparable: str | None = None) -> tuple[str, str]:
    """(verdict, one-line reason) from a margin's :func:`spread` over seeds."""
    m, sd, n = margin["mean"], margin["sd"], margin["n"]
    if not_comparable:
        return "not comparable", not_comparable
    if n < MIN_SEEDS:
        return "not comparable", f"only {n} seed(s); a verdict needs {MIN_SEEDS}"
    if m > 0 and m > 2 * sd:
        return "reproduced", f"{m:+.3f} ± {sd:.3f}: beyond 2 sd over {n} seeds"
    if m > 0:
        return "partly", f"{m:+.3f} ± {sd:.3f}: the paper's direction, within 2 sd"
    return "not reproduced", f"{m:+.3f} ± {sd:.3f}: not the paper's direction"


def evaluate(claim: Claim, runs: Sequence[Metrics]) -> dict[str, Any]:
    """One findings row: the claim, the paper's number, ours and the margin over seeds."""
    ours = spread(claim.ours(runs))
    margin = spread(claim.margin(runs))
    label, reason = verdict(margin, claim.not_comparable)
    return {
        "paper": claim.paper,
        "claim": claim.claim,
        "paper_number": claim.paper_number,
        "ours": ours,
        "margin": margin,
        "measures": claim.measures,
        "profile": claim.profile,
        "seeds": margin["n"],
        "verdict": label,
        "reason": reason,
    }


def findings_table(
    claims: Sequence[Claim],
    metrics: Mapping[str, Sequence[Metrics]],
    origins: Mapping[str, str] | None = None,
) -> list[dict[str, Any]]:
    """Every claim evaluated on ``metrics`` (source -> one metrics mapping per seed).

    Raises:
        StoreError: a source is missing, or its metrics lack a number a claim reads
            (naming ``origins[source]``, the files it came from).
    """
    origins = origins or {}
    missing = sorted({c.source for c in claims} - set(metrics))
    if missing:
        raise StoreError(f"no metrics for {missing}")
    rows = []
    for c in claims:
        try:
            rows.append(evaluate(c, metrics[c.source]))
        except (KeyError, IndexError, TypeError) as err:
            where = origins.get(c.source, c.source)
            raise StoreError(
                f"{where}: no number for the claim '{c.claim}' ({type(err).__name__}: {err}); "
                "rerun the stage that writes it"
            ) from None
    return rows


def render_markdown(rows: Sequence[Mapping[str, Any]]) -> str:
    """The findings as a markdown table (README, docs and the report show this)."""
    lines = [
        "| paper | claim | paper's number | ours (mean ± sd) | seeds | profile | verdict | why |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        ours = f"{r['ours']['mean']:.3f} ± {r['ours']['sd']:.3f}"
        cells = [
            r["paper"],
            r["claim"],
            r["paper_number"],
            ours,
            str(r["seeds"]),
            r["profile"],
            f"**{r['verdict']}**",
            f"{r['measures']}: {r['reason']}",
        ]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + "\n"


def render_settings(settings: Sequence[Mapping[str, Any]]) -> str:
    """The setting checks (e.g. each classifier's accuracy) as a markdown table."""
    lines = ["| setting check | mean ± sd | seeds |", "|---|---|---|"]
    lines += [f"| {x['what']} | {x['mean']:.3f} ± {x['sd']:.3f} | {x['n']} |" for x in settings]
    return "\n".join(lines) + "\n"


def verdict_counts(rows: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    """How many rows got each verdict (for ``dvc metrics``)."""
    counts = {"reproduced": 0, "partly": 0, "not reproduced": 0, "not comparable": 0}
    for r in rows:
        counts[r["verdict"]] += 1
    return counts
