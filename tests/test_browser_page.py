"""tests/browser.py's step-by-step page (open_page, screenshot_url), which
scripts/prefect_ui_screenshot.py drives the Prefect UI with, on a tiny app of its own."""

from __future__ import annotations

import struct

import pytest

from tests.browser import BrowserError, Page, chromium_or_fail, open_page, screenshot_url

pytestmark = pytest.mark.timeout(120)

# Renders late (as a single-page app does), adds a field per click, echoes what is typed.
APP = """<!doctype html><html><head><title>app</title></head><body><main></main><script>
setTimeout(() => {
  document.querySelector('main').innerHTML =
    '<button id=add>Add item</button><button>Add items later</button><p id=echo></p>';
  document.querySelector('#add').addEventListener('pointerdown', () => {
    const field = document.createElement('input');
    field.className = 'item';
    field.value = 'placeholder';
    field.addEventListener('input', () => {
      document.querySelector('#echo').textContent = 'typed: ' + field.value;
    });
    document.querySelector('main').append(field);
  });
}, 300);
</script></body></html>"""


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def test_a_page_waits_clicks_types_and_shoots(tmp_path):
    chromium_or_fail()
    app = tmp_path / "app.html"
    app.write_text(APP)
    with open_page((640, 400), timeout=60) as page:
        page.goto(app.as_uri())
        assert page.find("button", "Add item") is None  # not rendered yet
        page.wait_for("button", "Add item", timeout=10)
        page.click("button", "Add item")  # the exact label, not "Add items later"
        page.type_text("input.item", "train")  # replaces what the field held
        page.wait_for(text="typed: train", timeout=10)
        assert page.evaluate("document.querySelectorAll('input.item').length") == 1
        with pytest.raises(BrowserError, match="no visible 'nothing'"):
            page.wait_for("nothing", timeout=0.5)
        page.set_viewport(640, 300)
        assert _png_size(page.screenshot(tmp_path / "a.png").read_bytes()) == (640, 300)
        assert page.messages() == ([], [])


def test_screenshot_url_waits_prepares_and_reports(tmp_path):
    chromium_or_fail()
    app = tmp_path / "app.html"
    app.write_text(APP)

    def prepare(page: Page) -> None:
        page.click("button", "Add item")
        page.type_text("input.item", "accuracy@0")

    report = screenshot_url(
        app.as_uri(),
        tmp_path / "shot.png",
        text="Add item",
        prepare=prepare,
        viewport=(800, 500),
        timeout=30,
        settle=0.2,
    )
    assert report.screenshot == tmp_path / "shot.png"
    assert _png_size((tmp_path / "shot.png").read_bytes()) == (800, 500)
    assert report.title == "app" and report.page_size == (800, 500)
    assert report.console_errors == []
