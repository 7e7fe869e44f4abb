"""Screenshots of the Prefect UI for the README and docs, taken from a real server.

Run from the repository root, with the project's virtual environment::

    .venv/bin/python scripts/prefect_ui_screenshot.py                # both figures
    .venv/bin/python scripts/prefect_ui_screenshot.py --no-flow-run  # the form only
    .venv/bin/python scripts/prefect_ui_screenshot.py --repo . --no-flow-run

It writes (``--out-dir``, default ``docs/figures``):

* ``prefect_custom_run.png``: the custom-run form of the deployment ``advinterp/pipeline``
  (Deployments, pipeline, Run > Custom run), with ``targets``, ``force`` and ``jobs``
  filled in as the README's CLI line sets them (``--targets train --force``), down to
  its Submit button;
* ``prefect_flow_run.png``: the page of a completed flow run started from that form
  (``--flow-run-targets accuracy@0``): its stage tasks in the run graph, and its logs.

What it does, every step with a timeout, everything on loopback:

1. copies the pipeline (advinterp/, stages/, flows/, dvc.yaml, the profiles) into a new
   git + DVC repository with the tests' tiny params, in a temporary directory (as the
   tests' ``pipeline_repo`` fixture does); ``--repo PATH`` serves that repository
   instead, read-only: no run is submitted and only the form is shot;
2. starts ``prefect server start`` on a free port of 127.0.0.1, with ``PREFECT_HOME``
   (its database) and the UI's static files in the temporary directory, analytics and
   promotional content off; the UI is Prefect's bundled one (``prefect/server/ui-v2``
   and ``ui`` in the installed package, no build step, nothing downloaded): ``/`` leads
   to the default, the V2 UI at ``/v2/`` in Prefect 3.8;
3. starts ``python -m flows.serve --repo <repo>`` against it and waits for the
   deployment;
4. drives headless Chromium (``tests/browser.py``; Debian's ``chromium`` or
   ``$ADVINTERP_CHROMIUM``; host names other than localhost do not resolve) through the
   UI as a user would: Deployments, pipeline, Run > Custom run; fills the form, takes
   the first screenshot and presses Submit; reads the run back through the API (its
   parameters must be those typed, its state Completed); then starts the second run the
   same way and shoots its page once it has completed;
5. stops the serve process (Ctrl-C, then kills its process group), the server and the
   browser, and deletes the temporary directory, also on failure or Ctrl-C.

It takes about a minute and a half on two cores, most of it the two flow runs of the
tiny pipeline. The screenshots are 1280 px wide (the form's as tall as the form, at most
1200 px; the flow run's 800 px) and about 110 kB each. The form shows the served default
``repo``, the scratch copy's temporary path. Prefect 3.8.8's V2 run graph draws the
artifact icons as black squares and asks for ``/completed.svg`` (a 404, logged as a
console message): the UI's own quirks, not this script's.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a file: tests/ and flows/ from this checkout


from tests.browser import Page, chromium_path, open_page, screenshot_url  # noqa: E402
from tests.conftest import pipeline_env, scratch_repo  # noqa: E402

DEPLOYMENT = "advinterp/pipeline"
FORM_PNG = "prefect_custom_run.png"
FLOW_RUN_PNG = "prefect_flow_run.png"
WIDTH, HEIGHT, MAX_HEIGHT = 1280, 800, 1200
MAX_BYTES = 300_000  # what the README may embed
UI = 60.0  # seconds for the UI to show what a step waits for

log = logging.getLogger("prefect_ui_screenshot")


# -- the scratch repository, the server and the serve process ---------------------------


def bundled_ui() -> list[Path]:
    """The index.html of each UI the installed Prefect bundles (it serves them as they
    are: no build step, nothing downloaded); fails when there is none."""
    spec = importlib.util.find_spec("prefect")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(f"no prefect in {sys.executable}: run this with .venv/bin/python")
    server = Path(next(iter(spec.submodule_search_locations))) / "server"
    found = [server / ui / "index.html" for ui in ("ui-v2", "ui")]
    found = [f for f in found if f.is_file()]
    if not found:
        raise SystemExit(f"this Prefect bundles no UI: no {server}/ui-v2 or ui/index.html")
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def prefect_env(home: Path, api: str) -> dict[str, str]:
    """This shell's environment less its Prefect settings (a profile, an API URL, a
    key), plus the scratch server's; ``dvc`` finds this interpreter."""
    env = {k: v for k, v in pipeline_env().items() if not k.startswith("PREFECT_")}
    env.update(
        PREFECT_HOME=str(home),
        PREFECT_API_URL=api,
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_SERVER_UI_SHOW_PROMOTIONAL_CONTENT="false",
        # the UI's static files are copied here at start, not into site-packages
        PREFECT_SERVER_UI_STATIC_DIRECTORY=str(home / "ui"),
    )
    return env


@contextlib.contextmanager
def process(
    cmd: list[str], cwd: Path, env: dict[str, str], log_path: Path, stop: signal.Signals
) -> Iterator[subprocess.Popen[bytes]]:
    """``cmd`` in a process group of its own, its output in ``log_path``; on exit sent
    ``stop``, given 30 s, then its whole group killed (a flow run or dvc left behind)."""
    with open(log_path, "wb") as out:
        proc = subprocess.Popen(
            cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            yield proc
        finally:
            if proc.poll() is None:
                proc.send_signal(stop)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=30)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)


def tail(path: Path, chars: int = 3000) -> str:
    return path.read_text(errors="replace")[-chars:] if path.exists() else "(no log)"


class Api:
    """The few REST calls this script makes to the Prefect server."""

    def __init__(self, base: str):
        self.base = base  # http://127.0.0.1:PORT

    def call(self, path: str, body: dict[str, Any] | None = None, timeout: float = 10) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            f"{self.base}/api{path}", data=data, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return json.loads(r.read())

    def wait(
        self,
        what: str,
        probe: Callable[[], Any],
        proc: subprocess.Popen[bytes],
        logfile: Path,
        timeout: float,
    ) -> Any:
        """``probe()``'s first answer that is not None; fails when ``proc`` died or time
        ran out."""
        deadline = time.monotonic() + timeout
        while True:
            with contextlib.suppress(OSError, ValueError):
                if (answer := probe()) is not None:
                    return answer
            if proc.poll() is not None or time.monotonic() > deadline:
                state = "exited" if proc.poll() is not None else f"not within {timeout:.0f} s"
                raise SystemExit(f"{what}: {state}; {logfile.name}:\n{tail(logfile)}")
            time.sleep(0.5)

    def healthy(self) -> bool | None:
        return self.call("/health") is True or None

    def ui_page(self) -> str:
        """Where ``/`` leads a browser (the default UI), checked to be the app's HTML."""
        req = urllib.request.Request(f"{self.base}/", headers={"Accept": "text/html"})
        with urllib.request.urlopen(req, timeout=10) as r:
            html = r.read().decode(errors="replace")
            if r.status != 200 or '<script type="module"' not in html:
                raise ValueError(f"/ answered {r.status} without the UI's script")
            return r.url

    def deployment_id(self) -> str | None:
        name = urllib.parse.quote(DEPLOYMENT)
        try:
            return self.call(f"/deployments/name/{name}")["id"]
        except urllib.error.HTTPError as err:
            if err.code == 404:
                return None  # not registered yet
            raise

    def flow_run_named(self, name: str) -> dict[str, Any] | None:
        runs = self.call("/flow_runs/filter", {"flow_runs": {"name": {"any_": [name]}}})
        return runs[0] if runs else None

    def finished(self, run_id: str) -> dict[str, Any] | None:
        flow_run = self.call(f"/flow_runs/{run_id}")
        final = ("COMPLETED", "FAILED", "CRASHED", "CANCELLED")
        return flow_run if flow_run["state_type"] in final else None


# -- the UI ------------------------------------------------------------------------------


def field(page: Page, label: str) -> str:
    """A CSS selector for the control of the form field whose label starts with
    ``label`` (its ``for`` attribute)."""
    control = page.evaluate(
        f"[...document.querySelectorAll('label')]"
        f".find((l) => l.innerText.trim().startsWith({json.dumps(label)}))?.htmlFor"
    )
    if not control:
        raise SystemExit(f"{page.url}: no form field labelled {label!r}")
    return f'[id="{control}"]'


def open_custom_run(page: Page, home: str) -> None:
    """From the UI's home page to the deployment's custom-run form, as the README says:
    Deployments, pipeline, Run > Custom run."""
    page.goto(home, UI)
    page.click("a", "Deployments", UI)
    page.click("a", DEPLOYMENT.split("/")[1], UI)
    page.click("button", "Run", UI)
    page.click("[role=menuitem]", "Custom run", UI)
    page.wait_for("label", "targets", UI)


def fill_form(page: Page, targets: list[str], force: bool, jobs: int) -> str:
    """Set the form's parameters (targets, force, jobs) by mouse and keyboard; the run's
    name as the form proposes it."""
    if targets:
        page.click("button[role=tab]", "list")  # targets: list[str] | None, "None" first
        for i, target in enumerate(targets):
            page.click("button", "Add item")
            mark = f"advinterp-target-{i}"  # the item just added: the last text area
            page.evaluate(
                "[...document.querySelectorAll('[role=tabpanel] textarea')]"
                f".at(-1).setAttribute('data-mark', {json.dumps(mark)})"
            )
            page.type_text(f'[data-mark="{mark}"]', target)
    switch = field(page, "force")
    if page.evaluate(f"document.querySelector('{switch}').getAttribute('aria-checked')") != (
        "true" if force else "false"
    ):
        page.click(switch)
    page.type_text(field(page, "jobs"), str(jobs))
    page.evaluate("document.activeElement.blur()")  # no caret or focus ring in the shot
    return str(page.evaluate(f"document.querySelector('{field(page, 'Run Name')}').value"))


def shoot_form(page: Page, path: Path) -> None:
    """The whole form, down to Submit: the viewport as tall as the page (at most
    ``MAX_HEIGHT``) for the shot, then back."""
    page.evaluate("scrollTo(0, 0)")
    height = int(page.evaluate("document.documentElement.scrollHeight"))
    page.set_viewport(WIDTH, max(HEIGHT, min(height, MAX_HEIGHT)))
    page.settle(1.0)
    page.wait_for("button", "Submit")
    page.screenshot(path)
    page.set_viewport(WIDTH, HEIGHT)


def submit(page: Page, api: Api, name: str, parameters: dict[str, Any], timeout: float) -> str:
    """Press Submit, find the run the form created, wait for it to finish; its id. It
    must have completed, with the parameters typed into the form."""
    form = page.url
    page.click("button", "Submit")
    deadline = time.monotonic() + UI
    while page.url == form:  # the UI moves on once the run is created
        if time.monotonic() > deadline:
            raise SystemExit(f"Submit created no run within {UI:.0f} s ({page.url})")
        page.settle(0.25)
    created = api.flow_run_named(name)
    if created is None:
        raise SystemExit(f"no flow run named {name!r} after Submit")
    log.info("flow run %s (%s): waiting for it to finish", name, created["id"])
    deadline = time.monotonic() + timeout
    while (done := api.finished(created["id"])) is None:
        if time.monotonic() > deadline:
            raise SystemExit(f"flow run {name} did not finish within {timeout:.0f} s")
        page.settle(1.0)  # keeps the browser's events drained meanwhile
    got = {k: done["parameters"].get(k) for k in parameters}
    if done["state_type"] != "COMPLETED" or got != parameters:
        raise SystemExit(f"flow run {name}: {done['state_type']}, parameters {got}")
    log.info("flow run %s: completed, parameters %s", name, got)
    return created["id"]


def outside(message: str) -> bool:
    """A console message about a request that left loopback (blocked on purpose: the
    UI's product analytics) or the missing favicon."""
    return "ERR_NAME_NOT_RESOLVED" in message or "favicon" in message


# -- main --------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(
        prog="scripts/prefect_ui_screenshot.py",
        description="Screenshots of the Prefect UI's custom-run form (and of a flow run) "
        "for the deployment advinterp/pipeline, from a real server on loopback.",
    )
    p.add_argument("--out-dir", type=Path, default=ROOT / "docs" / "figures")
    p.add_argument(
        "--repo",
        type=Path,
        help="serve this repository, read-only (no run submitted, the form only); "
        "default: a scratch copy of the pipeline with tiny params",
    )
    p.add_argument("--targets", nargs="*", default=["train"], help="typed into the form")
    p.add_argument("--force", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--jobs", type=int, default=1)
    p.add_argument(
        "--flow-run-targets",
        nargs="*",
        default=["accuracy@0"],
        help="the second run's targets, the one whose page is shot",
    )
    p.add_argument("--no-flow-run", action="store_true", help=f"no {FLOW_RUN_PNG}")
    p.add_argument("--run-timeout", type=float, default=600, help="seconds per flow run")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%X")
    if chromium_path() is None:
        p.error("no Chromium: apt-get install chromium, or set ADVINTERP_CHROMIUM")
    if args.repo is not None and not (args.repo / "dvc.yaml").is_file():
        p.error(f"no dvc.yaml in {args.repo}")
    log.info("bundled UI: %s", ", ".join(str(f.parent) for f in bundled_ui()))
    args.out_dir.mkdir(parents=True, exist_ok=True)
    shots: list[Path] = []

    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="prefect-ui-")))
        if args.repo is None:
            repo = scratch_repo(tmp / "advinterp")
            serve_cwd = repo  # the scratch copy's own flows/ and stages/
        else:
            repo, serve_cwd = args.repo.resolve(), ROOT
        port = free_port()
        api = Api(f"http://127.0.0.1:{port}")
        env = prefect_env(tmp / "prefect-home", f"{api.base}/api")

        server_log = tmp / "server.log"
        start = [sys.executable, "-m", "prefect", "server", "start"]
        start += ["--host", "127.0.0.1", "--port", str(port)]
        server = stack.enter_context(process(start, tmp, env, server_log, signal.SIGTERM))
        api.wait("prefect server start", api.healthy, server, server_log, 120)
        home = api.wait("the UI at /", api.ui_page, server, server_log, 60)
        log.info("prefect server on %s, UI at %s", api.base, home)

        serve_log = tmp / "serve.log"
        serve_cmd = [sys.executable, "-m", "flows.serve", "--repo", str(repo)]
        serve = stack.enter_context(process(serve_cmd, serve_cwd, env, serve_log, signal.SIGINT))
        api.wait(f"deployment {DEPLOYMENT}", api.deployment_id, serve, serve_log, 120)
        log.info("deployment %s served from %s", DEPLOYMENT, repo)

        page = stack.enter_context(open_page((WIDTH, HEIGHT), timeout=UI, loopback_only=True))
        open_custom_run(page, home)
        name = fill_form(page, args.targets, args.force, args.jobs)
        shots.append(args.out_dir / FORM_PNG)
        shoot_form(page, shots[-1])
        log.info("wrote %s", shots[-1])
        messages: list[str] = []

        if args.repo is None:
            wanted = {"targets": args.targets or None, "force": args.force, "jobs": args.jobs}
            submit(page, api, name, wanted, args.run_timeout)
            if not args.no_flow_run:
                open_custom_run(page, home)
                name = fill_form(page, args.flow_run_targets, False, 1)
                wanted = {"targets": args.flow_run_targets or None, "force": False, "jobs": 1}
                run_id = submit(page, api, name, wanted, args.run_timeout)
                ui_base = home.rstrip("/")
                report = screenshot_url(
                    f"{ui_base}/runs/flow-run/{run_id}",
                    args.out_dir / FLOW_RUN_PNG,
                    text="Completed",  # the state badge
                    prepare=lambda pg: pg.wait_for("canvas", timeout=UI),  # the run graph
                    viewport=(WIDTH, HEIGHT),
                    timeout=UI,
                    settle=5.0,  # the run graph lays itself out and animates
                )
                shots.append(args.out_dir / FLOW_RUN_PNG)
                messages += report.console_errors
                log.info("wrote %s", shots[-1])
        messages += page.messages()[0]

    for message in dict.fromkeys(m for m in messages if not outside(m)):
        log.warning("browser console: %s", message[:300])
    for shot in shots:
        size = shot.stat().st_size
        log.info("%s: %d kB%s", shot.name, size // 1000, "" if size <= MAX_BYTES else " (big!)")


if __name__ == "__main__":
    main()
