"""advinterp.analysis.findings and claims: verdicts from spreads, rows from metrics."""

from __future__ import annotations

import pytest

from advinterp.analysis.claims import CLAIMS, SETTINGS
from advinterp.analysis.findings import (
    Claim,
    difference,
    each,
    evaluate,
    findings_table,
    render_markdown,
    render_settings,
    verdict,
    verdict_counts,
    within,
)
from advinterp.analysis.spread import spread
from advinterp.errors import StoreError


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([0.30, 0.32, 0.31], "reproduced"),  # mean 0.31, sd 0.01
        ([0.05, -0.02, 0.06], "partly"),  # mean 0.03, sd 0.044: within 2 sd
        ([-0.1, -0.2, 0.0], "not reproduced"),
        ([0.0, 0.0, 0.0], "not reproduced"),  # no difference is not the paper's direction
        ([0.5, 0.6], "not comparable"),  # two seeds: no verdict
    ],
)
def test_the_verdict_follows_the_margin_and_its_spread(values, expected):
    assert verdict(spread(values))[0] == expected


def test_a_margin_just_past_two_sd_is_reproduced_and_just_short_is_partly():
    sd = spread([1.0, 2.0, 3.0])["sd"]  # = 1
    assert verdict({"mean": 2.01 * sd, "sd": sd, "n": 3})[0] == "reproduced"
    assert verdict({"mean": 1.99 * sd, "sd": sd, "n": 3})[0] == "partly"


def test_a_claim_not_testable_here_says_why():
    label, reason = verdict(spread([1.0, 1.0, 1.0]), not_comparable="no such setting")
    assert (label, reason) == ("not comparable", "no such setting")


def _claim(**kw) -> Claim:
    base = dict(
        paper="A et al.",
        claim="x beats y | z",
        paper_number="0.9 vs 0.8",
        source="s",
        profile="birds",
        ours=each(lambda m: m["x"]),
        margin=difference(each(lambda m: m["x"]), each(lambda m: m["y"])),
        measures="x - y",
    )
    base.update(kw)
    return Claim(**base)


def test_evaluate_reads_one_number_per_seeded_run():
    runs = [{"x": 0.9, "y": 0.5}, {"x": 0.8, "y": 0.5}, {"x": 0.85, "y": 0.5}]
    row = evaluate(_claim(), runs)
    assert row["ours"]["mean"] == pytest.approx(0.85)
    assert row["margin"]["values"] == pytest.approx([0.4, 0.3, 0.35])
    assert row["seeds"] == 3 and row["verdict"] == "reproduced"


def test_within_reads_the_seeds_a_stage_looped_over_itself():
    run = {"rate": spread([0.2, 0.4, 0.3])}
    claim = _claim(ours=within(lambda m: m["rate"]), margin=within(lambda m: m["rate"]))
    row = evaluate(claim, [run])
    assert row["ours"]["values"] == [0.2, 0.4, 0.3] and row["seeds"] == 3
    with pytest.raises(ValueError, match="one run"):
        within(lambda m: m["rate"])([run, run])


def test_the_table_needs_every_source_and_renders_escaped_markdown():
    with pytest.raises(StoreError, match="'s'"):
        findings_table([_claim()], {})
    with pytest.raises(StoreError, match=r"a/m\.json: no number for the claim 'x beats y"):
        findings_table([_claim()], {"s": [{"x": 1.0}]}, {"s": "a/m.json"})
    rows = findings_table([_claim()], {"s": [{"x": 1.0, "y": 0.0}] * 3})
    text = render_markdown(rows)
    assert text.count("\n") == 3  # header, rule, one row
    assert "x beats y \\| z" in text and "1.000 ± 0.000" in text
    assert verdict_counts(rows) == {
        "reproduced": 1, "partly": 0, "not reproduced": 0, "not comparable": 0
    }  # fmt: skip


def test_every_paper_has_a_claim_and_every_claim_reads_a_known_source():
    papers = {c.paper for c in CLAIMS}
    assert {"Gulshad et al.", "Göpfert et al.", "Nguyen et al.", "Jalwana et al.",
            "Zheng et al."} <= papers  # fmt: skip
    from stages.findings import SOURCES

    assert {c.source for c in CLAIMS} | {s for s, _, _ in SETTINGS} <= set(SOURCES)


def _claim_named(text: str) -> Claim:
    (found,) = [c for c in CLAIMS if text in c.claim]
    return found


def test_zheng_lossy_layer_margin_is_the_difference_of_layer_means():
    vul = {"conv1": 0.4, "conv2": 0.2, "conv3": 0.1, "conv4": 0.2, "fc1": 0.0, "fc2": 0.05,
           "fc3": -0.05}  # fmt: skip
    run = {"natural": {"layers": {k: {"vul": v} for k, v in vul.items()}}}
    lossy = _claim_named("lose information")
    # (0.4 + 0.2 + 0.2 + 0.0) / 4 = 0.2; (0.1 + 0.05 - 0.05) / 3 = 0.0333
    assert lossy.margin([run]) == pytest.approx([0.2 - 0.1 / 3])
    most = _claim_named("conv1 is the most vulnerable")
    assert most.margin([run]) == pytest.approx([0.4 - 0.2])


def test_goepfert_lime_first_margin_is_the_best_other_rank_minus_limes():
    ranks = {"saliency": 2.5, "guided_backprop": 1.5, "lime": 2.0}
    run = {"mean_rank": {k: {"jaccard": v} for k, v in ranks.items()}}
    assert _claim_named("LIME finds").margin([run]) == pytest.approx([1.5 - 2.0])
    assert _claim_named("guided backprop ranks").margin([run]) == pytest.approx([2.5 - 1.5])


def test_jalwana_margins_read_the_stage_own_seeds_against_the_clean_rate_and_chance():
    sp = {"values": [0.3, 0.5, 0.4]}
    run = {
        "chance": 0.1,
        "headline": {
            "heldout_fooling_rate": {"standard": {"standard": sp}},
            "clean_heldout_target_rate": {"standard": 0.05},
            "perturbation_classified_as_target": {"standard": {"standard": sp, "second": sp}},
        },
    }
    assert _claim_named("moves held-out").margin([run]) == pytest.approx([0.25, 0.45, 0.35])
    assert _claim_named("alone is seen").margin([run]) == pytest.approx([0.2, 0.4, 0.3])


def test_the_setting_checks_render_one_row_each():
    text = render_settings([{"what": "f1", **spread([0.98, 0.99, 1.0])}])
    assert "| f1 | 0.990 ± 0.010 | 3 |" in text
