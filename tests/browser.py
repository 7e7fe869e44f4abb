"""Render an HTML page in headless Chromium and report what a reader would see.

:func:`check_page` opens a file in Debian's ``chromium`` (no Python browser package,
no browser download) and drives it over the Chrome DevTools Protocol on
``--remote-debugging-pipe``: JSON messages, each ended by a NUL byte, written to the
browser's fd 3 and read from its fd 4. The standard library is all it needs.

What comes back (:class:`BrowserReport`): console errors and uncaught exceptions
(``Runtime.consoleAPICalled``, ``Runtime.exceptionThrown``, ``Log.entryAdded``),
images that did not load (``naturalWidth`` 0), whether each CSS selector asked about
is visible, the ids used more than once, and a PNG screenshot of the first screen.

:func:`open_page` gives a :class:`Page` to drive step by step (go to a URL, wait for a
single-page app to render a selector or text, click, type, screenshot), and
:func:`screenshot_url` is the one-call version: scripts/prefect_ui_screenshot.py takes
the README's Prefect UI screenshots with them.

The browser is ``$ADVINTERP_CHROMIUM`` or ``chromium`` on PATH; scripts/test.sh
installs Debian's package. :func:`chromium_or_fail` is the tests' gate: without a
browser it fails, or skips where ``ADVINTERP_ALLOW_NO_BROWSER=1`` says a local run
may go without one.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import queue
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

VIEWPORT = (1280, 900)
ALLOW_NO_BROWSER = "ADVINTERP_ALLOW_NO_BROWSER"


class BrowserError(RuntimeError):
    """Chromium could not be started, answered with an error, or stopped answering."""


def chromium_path() -> str | None:
    """The Chromium executable: ``$ADVINTERP_CHROMIUM``, else ``chromium`` on PATH."""
    return os.environ.get("ADVINTERP_CHROMIUM") or shutil.which("chromium")


def chromium_or_fail() -> str:
    """The browser for a test; without one the test fails (skips only when
    ``ADVINTERP_ALLOW_NO_BROWSER=1``)."""
    found = chromium_path()
    if found:
        return found
    message = (
        "no Chromium: install Debian's package (`apt-get install -y chromium`, as "
        "scripts/test.sh does) or point ADVINTERP_CHROMIUM at a Chromium binary"
    )
    if os.environ.get(ALLOW_NO_BROWSER) == "1":
        pytest.skip(f"{message} ({ALLOW_NO_BROWSER}=1)")
    pytest.fail(f"{message}; set {ALLOW_NO_BROWSER}=1 to skip locally", pytrace=False)


@dataclass
class BrowserReport:
    """What Chromium made of one page."""

    url: str
    title: str
    console_errors: list[str] = field(default_factory=list)  # console.error, exceptions, log errors
    console_warnings: list[str] = field(default_factory=list)
    images: int = 0  # <img> elements on the page
    broken_images: list[str] = field(default_factory=list)  # src (shortened) of each broken one
    visible: dict[str, bool] = field(default_factory=dict)  # selector -> visible
    duplicate_ids: list[str] = field(default_factory=list)
    headings: list[tuple[str, str]] = field(default_factory=list)  # (id, text) of visible h2
    page_size: tuple[int, int] = (0, 0)  # the document's scroll width and height, CSS px
    screenshot: Path | None = None

    @property
    def invisible(self) -> list[str]:
        """The selectors asked about that match no visible element."""
        return [sel for sel, shown in self.visible.items() if not shown]


class _Pipe:
    """One CDP connection over Chromium's fd 3 (commands) and fd 4 (replies, events)."""

    def __init__(self, proc: subprocess.Popen[bytes], to_browser: int, from_browser: int):
        self.proc = proc
        self._out = to_browser
        self._in = from_browser
        self._next = 0
        self._replies: dict[int, dict[str, Any]] = {}
        self._messages: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self.events: list[dict[str, Any]] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        buf = b""
        try:
            while chunk := os.read(self._in, 1 << 20):
                buf += chunk
                *whole, buf = buf.split(b"\0")
                for raw in whole:
                    self._messages.put(json.loads(raw))
        except OSError:
            pass
        self._messages.put(None)  # the browser closed the pipe

    def _take(self, deadline: float) -> bool:
        """Move one message to the replies or events; False when none came in time."""
        try:
            msg = self._messages.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            return False
        if msg is None:
            raise BrowserError(f"Chromium closed the DevTools pipe (exit {self.proc.poll()})")
        if "id" in msg:
            self._replies[msg["id"]] = msg
        else:
            self.events.append(msg)
        return True

    def send(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        session: str | None = None,
        timeout: float = 30.0,
    ) -> dict[str, Any]:
        """Send one command and wait for its reply; events that arrive meanwhile are kept."""
        self._next += 1
        ident = self._next
        msg: dict[str, Any] = {"id": ident, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._out, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while ident not in self._replies:
            if not self._take(deadline):
                raise BrowserError(f"no reply to {method} within {timeout:.0f} s")
        reply = self._replies.pop(ident)
        if "error" in reply:
            raise BrowserError(f"{method}: {reply['error']}")
        return reply.get("result", {})

    def wait_event(
        self,
        method: str,
        session: str,
        timeout: float,
        after: int = 0,
        match: Callable[[dict[str, Any]], bool] = lambda params: True,
    ) -> int:
        """The index in ``events`` of the first event ``method`` of ``session`` from
        ``after`` on whose params ``match`` (already received or still to come)."""
        deadline = time.monotonic() + timeout
        seen = after
        while True:
            for i, ev in enumerate(self.events[seen:], seen):
                if (
                    ev.get("method") == method
                    and ev.get("sessionId") == session
                    and match(ev.get("params", {}))
                ):
                    return i
            seen = len(self.events)
            if not self._take(deadline):
                raise BrowserError(f"no {method} within {timeout:.0f} s")

    def drain(self, seconds: float) -> None:
        """Collect the events of the next ``seconds``."""
        deadline = time.monotonic() + seconds
        while self._take(deadline):
            pass


@contextlib.contextmanager
def _chromium(binary: str, profile: Path, extra: Iterable[str] = ()) -> Iterator[_Pipe]:
    """A headless Chromium speaking CDP on fds 3 and 4 (``extra``: more command-line
    switches), stopped on exit."""
    cmd_r, cmd_w = os.pipe()  # we write, the browser reads on fd 3
    ev_r, ev_w = os.pipe()  # the browser writes on fd 4, we read

    def _fds() -> None:  # in the child, before exec: the pipes onto fds 3 and 4
        high_r, high_w = os.dup(cmd_r), os.dup(ev_w)  # neither is 3 or 4 while both are open
        os.dup2(high_r, 3)
        os.dup2(high_w, 4)

    args = [
        binary,
        "--headless",
        "--remote-debugging-pipe",
        "--no-sandbox",  # CI runs as root, where the sandbox refuses to start
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-extensions",
        "--hide-scrollbars",
        "--mute-audio",
        f"--user-data-dir={profile}",
        f"--window-size={VIEWPORT[0]},{VIEWPORT[1]}",
        *extra,
        "about:blank",
    ]
    proc = subprocess.Popen(
        args,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        preexec_fn=_fds,
        # Not close_fds: it would close fds 3 and 4 after _fds. Python's own fds are
        # non-inheritable, so only 0-4 reach the browser.
        close_fds=False,
    )
    os.close(cmd_r)
    os.close(ev_w)
    pipe = _Pipe(proc, cmd_w, ev_r)
    try:
        try:
            pipe.send("Browser.getVersion", timeout=60)
        except BrowserError as err:
            proc.kill()
            _, stderr = proc.communicate(timeout=10)
            raise BrowserError(f"{err}; chromium's stderr:\n{stderr.decode()[-3000:]}") from None
        yield pipe
    finally:
        with contextlib.suppress(BrowserError, OSError):
            pipe.send("Browser.close", timeout=5)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stderr:
            proc.stderr.close()
        os.close(cmd_w)
        os.close(ev_r)


def _text_of(args: list[dict[str, Any]]) -> str:
    return " ".join(str(a.get("value", a.get("description", a.get("type", "")))) for a in args)


def _messages(events: Iterable[dict[str, Any]], session: str) -> tuple[list[str], list[str]]:
    """(errors, warnings) from the console, uncaught exceptions and the browser's log."""
    errors: list[str] = []
    warnings: list[str] = []
    for ev in events:
        if ev.get("sessionId") != session:
            continue
        method, p = ev.get("method"), ev.get("params", {})
        if method == "Runtime.consoleAPICalled":
            text = f"console.{p['type']}: {_text_of(p.get('args', []))}"
            if p["type"] in ("error", "assert"):
                errors.append(text)
            elif p["type"] == "warning":
                warnings.append(text)
        elif method == "Runtime.exceptionThrown":
            d = p.get("exceptionDetails", {})
            errors.append(f"uncaught: {d.get('exception', {}).get('description') or d.get('text')}")
        elif method == "Log.entryAdded":
            e = p.get("entry", {})
            text = f"{e.get('source')}: {e.get('text')} {e.get('url', '')}".rstrip()
            if e.get("level") == "error":
                errors.append(text)
            elif e.get("level") == "warning":
                warnings.append(text)
    return errors, warnings


# Run in the page after load: images, visibility of each selector, duplicate ids.
_INSPECT = """
(async (selectors) => {
  const imgs = [...document.images];
  await Promise.all(imgs.map((i) => i.decode().catch(() => null)));
  const shown = (el) => {
    if (!el) return false;
    const r = el.getBoundingClientRect();
    const ok = el.checkVisibility
      ? el.checkVisibility({checkOpacity: true, checkVisibilityCSS: true})
      : getComputedStyle(el).visibility !== 'hidden';
    return ok && r.width > 0 && r.height > 0;
  };
  const visible = {};
  for (const sel of selectors) {
    visible[sel] = [...document.querySelectorAll(sel)].some(shown);
  }
  const counts = {};
  for (const el of document.querySelectorAll('[id]')) counts[el.id] = (counts[el.id] || 0) + 1;
  return {
    title: document.title,
    images: imgs.length,
    broken: imgs.filter((i) => !i.complete || i.naturalWidth === 0)
                .map((i) => (i.currentSrc || i.src || i.alt || '?').slice(0, 120)),
    visible,
    duplicates: Object.keys(counts).filter((k) => counts[k] > 1),
    headings: [...document.querySelectorAll('h2')].filter(shown)
                .map((h) => [h.id, h.textContent.trim()]),
    size: [document.documentElement.scrollWidth, document.documentElement.scrollHeight],
  };
})
"""


def check_page(
    path: Path | str,
    selectors: Iterable[str] = (),
    screenshot: Path | str | None = None,
    timeout: float = 60.0,
    settle: float = 0.3,
    anchor: str = "",
) -> BrowserReport:
    """Open ``path`` in headless Chromium and report what it shows.

    Args:
        path: the HTML file.
        selectors: CSS selectors to test: each is visible when at least one element it
            matches is rendered with a non-empty box (``report.visible[selector]``).
        screenshot: where to write a PNG of the first screen (``VIEWPORT``); None = none.
        timeout: seconds for Chromium to start and for the page to load.
        settle: seconds after load in which late console messages still count.
        anchor: an element id: the page opens scrolled to it (``page.html#anchor``), so
            the screenshot shows that part of the page.

    Raises:
        BrowserError: Chromium failed to start, to load the page or to answer.
        FileNotFoundError: ``path`` is not a file.
    """
    page = Path(path).resolve()
    if not page.is_file():
        raise FileNotFoundError(page)
    binary = chromium_path()
    if binary is None:
        raise BrowserError("no Chromium (chromium on PATH or $ADVINTERP_CHROMIUM)")
    wanted = list(dict.fromkeys(selectors))
    with (
        tempfile.TemporaryDirectory(prefix="advinterp-chromium-") as profile,
        _chromium(binary, Path(profile)) as cdp,
    ):
        target = cdp.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = cdp.send("Target.attachToTarget", {"targetId": target, "flatten": True})[
            "sessionId"
        ]
        for domain in ("Page", "Runtime", "Log", "Network"):
            cdp.send(f"{domain}.enable", session=session)
        cdp.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": VIEWPORT[0], "height": VIEWPORT[1], "deviceScaleFactor": 1, "mobile": False},
            session=session,
        )
        del cdp.events[:]  # about:blank's own events are not the page's
        url = page.as_uri() + (f"#{anchor}" if anchor else "")
        nav = cdp.send("Page.navigate", {"url": url}, session=session, timeout=timeout)
        if nav.get("errorText"):
            raise BrowserError(f"{page}: {nav['errorText']}")
        # the page's main frame committed, then its load event (not about:blank's)
        committed = cdp.wait_event(
            "Page.frameNavigated",
            session,
            timeout,
            match=lambda p: not p["frame"].get("parentId") and p["frame"]["url"] == page.as_uri(),
        )
        cdp.wait_event("Page.loadEventFired", session, timeout, after=committed)
        result = cdp.send(
            "Runtime.evaluate",
            {
                "expression": f"({_INSPECT})({json.dumps(wanted)})",
                "awaitPromise": True,
                "returnByValue": True,
            },
            session=session,
            timeout=timeout,
        )
        if "exceptionDetails" in result:
            raise BrowserError(f"inspecting {page}: {result['exceptionDetails']}")
        found = result["result"]["value"]
        shot = None
        if screenshot is not None:
            data = cdp.send(
                "Page.captureScreenshot", {"format": "png"}, session=session, timeout=timeout
            )["data"]
            shot = Path(screenshot)
            shot.parent.mkdir(parents=True, exist_ok=True)
            shot.write_bytes(base64.b64decode(data))
        cdp.drain(settle)
        errors, warnings = _messages(cdp.events, session)
    return BrowserReport(
        url=page.as_uri(),
        title=found["title"],
        console_errors=errors,
        console_warnings=warnings,
        images=found["images"],
        broken_images=found["broken"],
        visible=found["visible"],
        duplicate_ids=found["duplicates"],
        headings=[(i, t) for i, t in found["headings"]],
        page_size=tuple(found["size"]),
        screenshot=shot,
    )


# -- a live page, step by step: single-page apps served over HTTP (the Prefect UI) -------

SCREENSHOT_VIEWPORT = (1280, 800)
# Chromium resolves no host name but the loopback ones: nothing leaves the machine.
LOOPBACK_ONLY = "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1"

# Run in the page: the centre of the first visible element that matches a selector (the
# body when null) and whose text is `text` or else contains it (any text when null): the
# innermost such element, so that a click lands on the labelled control; scrolled into
# view first when `scroll`; null if there is none.
_FIND = """
((selector, text, scroll) => {
  const shown = (el) => {
    const r = el.getBoundingClientRect();
    const ok = el.checkVisibility
      ? el.checkVisibility({checkOpacity: true, checkVisibilityCSS: true})
      : getComputedStyle(el).visibility !== 'hidden';
    return ok && r.width > 0 && r.height > 0;
  };
  const pool = selector ? [...document.querySelectorAll(selector)] : [document.body];
  const hits = pool.filter((el) => shown(el) && (text === null || el.innerText.includes(text)));
  const exact = hits.filter((el) => el.innerText.trim() === text);
  const pick = exact.length ? exact : hits;
  const el = pick.find((h) => !pick.some((o) => o !== h && h.contains(o)));
  if (!el) return null;
  if (scroll) el.scrollIntoView({block: 'center', inline: 'center'});
  const r = el.getBoundingClientRect();
  return {x: r.left + r.width / 2, y: r.top + r.height / 2};
})
"""


class Page:
    """One tab of a headless Chromium, driven step by step (from :func:`open_page`).

    Where :func:`check_page` loads a file once, a :class:`Page` goes to URLs, waits for
    a single-page app to render, clicks (real mouse events, so that components listening
    to pointer events react), types (keyboard input, so that the app's handlers see it)
    and takes screenshots. Every wait has a timeout and raises :class:`BrowserError`.
    """

    def __init__(self, cdp: _Pipe, session: str):
        self._cdp = cdp
        self._session = session

    def _send(self, method: str, params: dict[str, Any], timeout: float = 30.0) -> dict[str, Any]:
        return self._cdp.send(method, params, session=self._session, timeout=timeout)

    def goto(self, url: str, timeout: float = 60.0) -> None:
        """Navigate to ``url`` and wait for its load event (an app may render later:
        :meth:`wait_for` what it should show)."""
        after = len(self._cdp.events)
        nav = self._send("Page.navigate", {"url": url}, timeout)
        if nav.get("errorText"):
            raise BrowserError(f"{url}: {nav['errorText']}")
        committed = self._cdp.wait_event(
            "Page.frameNavigated",
            self._session,
            timeout,
            after=after,
            match=lambda p: not p["frame"].get("parentId"),
        )
        self._cdp.wait_event("Page.loadEventFired", self._session, timeout, after=committed)

    def evaluate(self, expression: str, timeout: float = 30.0) -> Any:
        """The value of a JavaScript expression in the page (a promise is awaited)."""
        result = self._send(
            "Runtime.evaluate",
            {"expression": expression, "awaitPromise": True, "returnByValue": True},
            timeout,
        )
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            error = details.get("exception", {}).get("description") or details.get("text")
            raise BrowserError(f"{expression[:80]!r}: {error}")
        return result["result"].get("value")

    @property
    def url(self) -> str:
        """Where the page is now (an app changes it without a navigation)."""
        return str(self.evaluate("location.href"))

    def find(
        self, selector: str | None = None, text: str | None = None, scroll: bool = False
    ) -> dict[str, Any] | None:
        """The centre (``x``, ``y``: CSS px in the viewport) of the first visible element
        that matches ``selector`` and shows ``text`` (exactly, else as a part), scrolled
        into view first if ``scroll``; None if there is none."""
        args = ", ".join(json.dumps(a) for a in (selector, text, scroll))
        return self.evaluate(f"({_FIND})({args})")

    def wait_for(
        self, selector: str | None = None, text: str | None = None, timeout: float = 60.0
    ) -> dict[str, Any]:
        """Wait until :meth:`find` finds ``selector`` and/or ``text`` (``text`` alone:
        anywhere on the page); its answer."""
        if selector is None and text is None:
            raise ValueError("wait_for needs a selector, a text or both")
        deadline = time.monotonic() + timeout
        while (found := self.find(selector, text)) is None:
            if time.monotonic() > deadline:
                what = " containing ".join(repr(w) for w in (selector, text) if w is not None)
                raise BrowserError(f"{self.url}: no visible {what} within {timeout:.0f} s")
            self._cdp.drain(0.25)
        return found

    def click(
        self, selector: str | None = None, text: str | None = None, timeout: float = 30.0
    ) -> None:
        """Wait for an element (as :meth:`wait_for`), scroll it into view and click its
        centre."""
        self.wait_for(selector, text, timeout)
        at = self.find(selector, text, scroll=True)
        if at is None:
            raise BrowserError(f"{self.url}: {selector or text!r} went away before the click")
        for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
            self._send(
                "Input.dispatchMouseEvent",
                {"type": kind, "x": at["x"], "y": at["y"], "button": "left", "clickCount": 1},
            )

    def type_text(self, selector: str, value: str, timeout: float = 30.0) -> None:
        """Click into the field ``selector``, select what it holds and type ``value``."""
        self.click(selector, timeout=timeout)
        self.evaluate(f"document.querySelector({json.dumps(selector)}).select?.()")
        self._send("Input.insertText", {"text": value})

    def set_viewport(self, width: int, height: int) -> None:
        """Resize the viewport (CSS px, scale 1), e.g. to fit a form's whole height."""
        self._send(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
        )

    def settle(self, seconds: float) -> None:
        """Let the page run for ``seconds`` (animations, late requests)."""
        self._cdp.drain(seconds)

    def screenshot(self, path: Path | str, timeout: float = 30.0) -> Path:
        """Write a PNG of the viewport to ``path``."""
        data = self._send("Page.captureScreenshot", {"format": "png"}, timeout)["data"]
        shot = Path(path)
        shot.parent.mkdir(parents=True, exist_ok=True)
        shot.write_bytes(base64.b64decode(data))
        return shot

    def messages(self) -> tuple[list[str], list[str]]:
        """(errors, warnings) from the console, uncaught exceptions and the browser's log
        since the page opened."""
        return _messages(self._cdp.events, self._session)


@contextlib.contextmanager
def open_page(
    viewport: tuple[int, int] = SCREENSHOT_VIEWPORT,
    timeout: float = 60.0,
    loopback_only: bool = False,
) -> Iterator[Page]:
    """A blank tab of a fresh headless Chromium at ``viewport``; the browser and its
    temporary profile are gone on exit. ``loopback_only``: host names other than
    localhost do not resolve, so a page's requests to the internet fail at once.

    Raises:
        BrowserError: no Chromium, or it did not start within ``timeout``.
    """
    binary = chromium_path()
    if binary is None:
        raise BrowserError("no Chromium (chromium on PATH or $ADVINTERP_CHROMIUM)")
    extra = [LOOPBACK_ONLY] if loopback_only else []
    with (
        tempfile.TemporaryDirectory(prefix="advinterp-chromium-") as profile,
        _chromium(binary, Path(profile), extra) as cdp,
    ):
        target = cdp.send("Target.createTarget", {"url": "about:blank"}, timeout=timeout)
        session = cdp.send(
            "Target.attachToTarget", {"targetId": target["targetId"], "flatten": True}
        )["sessionId"]
        for domain in ("Page", "Runtime", "Log"):
            cdp.send(f"{domain}.enable", session=session)
        page = Page(cdp, session)
        page.set_viewport(*viewport)
        del cdp.events[:]  # about:blank's own events are not the page's
        yield page


def screenshot_url(
    url: str,
    path: Path | str,
    *,
    selector: str | None = None,
    text: str | None = None,
    prepare: Callable[[Page], object] | None = None,
    viewport: tuple[int, int] = SCREENSHOT_VIEWPORT,
    timeout: float = 60.0,
    settle: float = 1.0,
    loopback_only: bool = True,
) -> BrowserReport:
    """Open ``url``, wait until the app shows ``selector`` and/or ``text``, run
    ``prepare(page)`` (fill a form, open a tab...), let the page settle for ``settle``
    seconds and write a PNG of the viewport to ``path``.

    Returns:
        A :class:`BrowserReport` with the final URL, the title, the console messages and
        the screenshot (the other fields stay empty).

    Raises:
        BrowserError: Chromium failed, or what was waited for did not show in time.
    """
    with open_page(viewport, timeout, loopback_only) as page:
        page.goto(url, timeout)
        if selector is not None or text is not None:
            page.wait_for(selector, text, timeout)
        if prepare is not None:
            prepare(page)
        page.settle(settle)
        shot = page.screenshot(path, timeout)
        errors, warnings = page.messages()
        return BrowserReport(
            url=page.url,
            title=str(page.evaluate("document.title")),
            console_errors=errors,
            console_warnings=warnings,
            page_size=tuple(page.evaluate("[innerWidth, innerHeight]")),
            screenshot=shot,
        )


# -- what the advinterp report must show ------------------------------------------------


@dataclass(frozen=True)
class ReportExpectation:
    """The parts of the report page the declarations promise, found by id.

    ``methods``: method key -> heading (an ``<h2 id=method-key>`` per method group);
    ``stages``: the ``<section id=stage-...>`` of every stage the page gathers, a
    non-default profile's as ``<profile>/<stage>``; ``overviews``: the methods with an
    overview card (``<section id=overview-key>``; the findings' numbers sit above the
    findings table instead).
    """

    methods: dict[str, str]
    stages: list[str]
    overviews: list[str] = field(default_factory=list)

    @property
    def headings(self) -> set[tuple[str, str]]:
        """(id, text) of every method's ``<h2>``."""
        return {(f"method-{key}", heading) for key, heading in self.methods.items()}

    @property
    def selectors(self) -> list[str]:
        """CSS selectors that must be visible: the findings table and its numbers, every
        method's overview card, heading and stage section."""
        return [
            "h2#findings",
            "table.findings td",
            "h2#findings ~ .nums .num",
            *(f'section[id="overview-{key}"] .num' for key in self.overviews),
            *(f'h2[id="method-{key}"]' for key in self.methods),
            *(f'section[id="stage-{name}"]' for name in self.stages),
        ]


def report_expectation(root: Path | None = None) -> ReportExpectation:
    """What the report of the repository (or of a world) at ``root`` must show, from the
    stage declarations and each profile's params (``flows.generate``) and the overview
    declarations (``advinterp.report_overview``): nothing is listed by hand, so a new
    stage or method is expected as soon as it is declared."""
    from advinterp.report_overview import OVERVIEWS
    from flows.generate import ROOT, declarations, load_profiles

    stages = declarations()
    methods: dict[str, str] = {}
    names: list[str] = []
    for prof in load_profiles(ROOT if root is None else root):
        for s in prof.runs(stages):
            if s.gathers:  # the report itself
                continue
            methods.setdefault(s.method.key, s.method.heading)
            names.append(s.name if prof.key is None else f"{prof.key}/{s.name}")
    cards = [key for key in methods if key in OVERVIEWS and key != "findings"]
    return ReportExpectation(methods, names, cards)
