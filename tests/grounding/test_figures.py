"""Figures 6-7 style grounding figures are produced and show what they should."""

from __future__ import annotations

import io

import numpy as np

from advinterp.grounding.figures import GREY, GroundedPanel, grounding_figure, pretty_attribute


def _panel(seed: int, grounded: list[bool]) -> GroundedPanel:
    rng = np.random.default_rng(seed)
    k = len(grounded)
    boxes = np.tile([[0.1, 0.2, 0.5, 0.6]], (k, 1))
    boxes[~np.array(grounded)] = np.nan
    return GroundedPanel(
        image=rng.random((3, 16, 16)).astype(np.float32),
        title="clean: class A",
        attributes=[f"wing_color::c{i}" for i in range(k)],
        importance=np.linspace(1.0, 0.1, k),
        boxes=boxes,
    )


def test_pretty_attribute():
    assert pretty_attribute("wing_color::blue") == "blue wing"
    assert pretty_attribute("has_bill_shape::all-purpose") == "all-purpose bill"
    assert pretty_attribute("is_black") == "is black"


def test_grounding_figure_png_with_boxes_and_grey_ungrounded():
    left, right = _panel(0, [True, False, True]), _panel(1, [False, False, False])
    fig = grounding_figure([(left, right), (right, left)], "untargeted")
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    png = buf.getvalue()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    image_axes = [ax for ax in fig.axes if ax.images]
    assert len(image_axes) == 4
    # two grounded attributes -> two rectangles on the first image, none on the second
    assert len(image_axes[0].patches) == 2 and len(image_axes[1].patches) == 0
    text_axes = [ax for ax in fig.axes if not ax.images]
    colours = [t.get_color() for t in text_axes[1].texts]
    assert colours == [GREY] * 3  # right panel: nothing grounded, all listed in grey
    first = [t.get_color() for t in text_axes[0].texts]
    assert first[1] == GREY and first[0] != GREY and first[2] != GREY
    assert "1. c0 wing" in text_axes[0].texts[0].get_text()


def test_empty_figure_still_renders():
    buf = io.BytesIO()
    grounding_figure([], "targeted").savefig(buf, format="png")
    assert len(buf.getvalue()) > 1000
