"""The report page, rendered from the committed results: its size, and what a real
browser (headless Chromium, tests/browser.py) makes of it.

The page must stay one offline file of at most 2.5 MB, load without console errors,
decode every image, have no id twice and no horizontal scrolling in a 1280 px window,
and show the findings, every method's overview card, heading and stage section; the
expected parts come from the stage and overview declarations, not from a list here.

Without Chromium the browser tests fail (scripts/test.sh installs Debian's package); set
``ADVINTERP_ALLOW_NO_BROWSER=1`` to skip them on a machine without one.
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest
from PIL import Image, ImageStat

from stages.report import STAGE, build_page
from tests.browser import VIEWPORT, BrowserReport, check_page, chromium_or_fail, report_expectation
from tests.conftest import ROOT

MAX_BYTES = 2_500_000  # the page is mailed and archived: figures are re-encoded to fit

pytestmark = pytest.mark.timeout(180)

STALE = (
    " (a stage or method declared since the results were committed is expected: "
    "run it with `dvc repro`)"
)


@pytest.fixture(scope="module")
def browser() -> str:
    return chromium_or_fail()


@pytest.fixture(scope="module")
def report_page(tmp_path_factory) -> Path:
    """The page the report stage makes of the committed results (the checkout's own
    artifacts/report/index.html is DVC-cached and may predate this code), written to a
    temporary directory: the checkout is not written."""
    page = tmp_path_factory.mktemp("report") / "index.html"
    inputs = {flag: ROOT / path for flag, path in STAGE.paths().items()}
    page.write_text(build_page(inputs["dvc_yaml"], inputs["findings"], inputs["comparison"]))
    return page


def test_the_page_is_one_offline_file_of_at_most_2_5_mb(report_page):
    text = report_page.read_text()
    size = len(text.encode())
    assert size <= MAX_BYTES, f"the report is {size / 1e6:.2f} MB, over {MAX_BYTES / 1e6} MB"
    remote = re.findall(r"""(?:src|href)\s*=\s*['"]?(?:https?:)?//[^'" >]*""", text)
    assert not remote, f"the page loads from elsewhere: {remote[:5]}"
    assert "<script" not in text and "<link" not in text
    assert text.count("data:image/") >= 20  # the figures are in the file
    # every overview card found its key figure and its three numbers
    assert "not computed yet" not in text and "<b>missing</b>" not in text


def assert_non_blank_png(path: Path, size: tuple[int, int]) -> None:
    """``path`` is a PNG of ``size`` with something drawn on it."""
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    with Image.open(path) as img:
        assert img.size == size, f"screenshot is {img.size}, expected {size}"
        grey = img.convert("L")
        colours = img.convert("RGB").getcolors(maxcolors=1 << 16)
        assert colours is None or len(colours) > 16, f"screenshot has {len(colours)} colours"
        assert ImageStat.Stat(grey).stddev[0] > 5, "screenshot is (nearly) one flat colour"
        ink = sum(n for value, n in enumerate(grey.histogram()) if value < 200)
        assert ink > 0.005 * size[0] * size[1], "screenshot has (nearly) nothing drawn"


def assert_page_ok(report: BrowserReport, hint: str = "") -> None:
    """No console errors, no broken images, no id twice, no horizontal scrolling, every
    asked-for element visible."""
    assert not report.console_errors, "console errors:\n" + "\n".join(report.console_errors)
    assert not report.broken_images, (
        f"{len(report.broken_images)} of {report.images} images broken: {report.broken_images}"
    )
    assert not report.duplicate_ids, f"ids used more than once: {report.duplicate_ids}"
    assert report.page_size[0] <= VIEWPORT[0], (
        f"the page is {report.page_size[0]} px wide in a {VIEWPORT[0]} px window: "
        "something (a wide table, a figure) overflows instead of scrolling in its box"
    )
    assert not report.invisible, f"not visible on the page: {report.invisible}{hint}"


def test_report_renders_in_chromium_with_every_section_visible(browser, report_page, tmp_path):
    expected = report_expectation()
    shot = tmp_path / "report.png"
    report = check_page(report_page, expected.selectors, screenshot=shot)

    assert report.title == "advinterp report"
    assert_page_ok(report, STALE)
    assert report.images > 0, "the report shows no figures"
    missing = expected.headings - set(report.headings)
    assert not missing, f"method headings not shown: {sorted(missing)}{STALE}"
    assert report.screenshot == shot
    assert_non_blank_png(shot, VIEWPORT)


def test_the_browser_check_sees_errors_broken_images_duplicate_ids_overflow_and_hidden_parts(
    browser, tmp_path
):
    """The checks above have teeth: a page with each fault is reported with it."""
    page = tmp_path / "bad.html"
    page.write_text(
        "<!doctype html><html><head><title>bad</title></head><body>"
        "<h2 id='shown'>Shown</h2><p id='dup'>text</p><p id='dup'>again</p>"
        "<section id='hidden' style='display:none'>gone</section>"
        "<table><tr><td style='min-width:3000px'>a wide table</td></tr></table>"
        "<img src='data:image/png;base64,bm90IGEgcG5n' alt='garbage'>"
        "<img src='missing.png' alt='missing'>"
        "<script>console.error('boom'); setTimeout(() => { throw new Error('late'); });</script>"
        "</body></html>"
    )
    report = check_page(page, ["h2#shown", "section#hidden", "#absent"])

    assert report.visible == {"h2#shown": True, "section#hidden": False, "#absent": False}
    assert report.invisible == ["section#hidden", "#absent"]
    assert report.images == 2 and len(report.broken_images) == 2
    errors = "\n".join(report.console_errors)
    assert "console.error: boom" in errors
    assert "late" in errors  # an uncaught exception after load
    assert "missing.png" in errors  # the failed load, from the browser's log
    assert report.headings == [("shown", "Shown")]
    assert report.duplicate_ids == ["dup"]
    assert report.page_size[0] > VIEWPORT[0]  # the wide table widens the page
    with pytest.raises(AssertionError, match="console errors"):
        assert_page_ok(report)
    clean = replace(
        report, console_errors=[], broken_images=[], duplicate_ids=[], page_size=(1, 1), visible={}
    )
    assert_page_ok(clean)
    for fault, message in [
        ({"broken_images": ["x"]}, "images broken"),
        ({"duplicate_ids": ["dup"]}, "more than once"),
        ({"page_size": (VIEWPORT[0] + 1, 1)}, "px wide"),
        ({"visible": {"#absent": False}}, "not visible"),
    ]:
        with pytest.raises(AssertionError, match=message):
            assert_page_ok(replace(clean, **fault))
