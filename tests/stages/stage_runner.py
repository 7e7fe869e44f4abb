"""Run stage entry points as separate processes, fast: a fork server for the stage tests.

Starting ``python -m stages.<name>`` costs several seconds of imports (torch, zarr,
pydantic, matplotlib) on a loaded 2-core machine, which is most of a bad-input case.
This server imports all of that once, then forks one child process per request; the
child executes the stage module as ``__main__`` exactly as ``python -m`` does
(``runpy.run_module``) with its own argv, working directory, stdout and stderr, and
exits with the status the interpreter would give it: the ``SystemExit`` code, or 1
with a traceback on stderr for an uncaught exception.

Protocol: one JSON request per stdin line ``{"module", "argv", "cwd", "timeout"}``,
one JSON reply per stdout line ``{"code", "stdout", "stderr"}`` (``code`` is the
negative signal number when the child was killed, e.g. on timeout).

Use :class:`StageRunner` from tests; ``python -m tests.stages.stage_runner`` is the server.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _child(module: str, argv: list[str], cwd: str, out: str, err: str) -> None:
    import runpy
    import traceback

    code = 1
    try:
        os.chdir(cwd)
        fd_out = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        fd_err = os.open(err, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(fd_out, 1)
        os.dup2(fd_err, 2)
        sys.argv = [module, *argv]
        # The server imported the stage to warm its dependencies; run a fresh copy.
        sys.modules.pop(module, None)
        try:
            runpy.run_module(module, run_name="__main__", alter_sys=True)
            code = 0
        except SystemExit as exc:  # the interpreter's own mapping of SystemExit
            if exc.code is None:
                code = 0
            elif isinstance(exc.code, int):
                code = exc.code
            else:
                sys.stderr.write(f"{exc.code}\n")
                code = 1
        except BaseException:  # an uncaught exception: traceback, exit 1, like python -m
            traceback.print_exc()
            code = 1
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def _serve() -> None:
    os.environ.setdefault("MPLBACKEND", "Agg")
    # Import what the stages import, once, before forking (no torch ops run here, so no
    # thread pools exist to be inherited by the children).
    import importlib
    import pkgutil

    import stages

    for info in pkgutil.iter_modules(stages.__path__):
        # A stage that fails to import is under construction: its child reports the error.
        with contextlib.suppress(Exception):
            importlib.import_module(f"stages.{info.name}")
    scratch = Path(tempfile.mkdtemp(prefix="stage-runner-"))
    reply = sys.stdout
    for k, line in enumerate(sys.stdin):
        req = json.loads(line)
        out, err = scratch / f"{k}.out", scratch / f"{k}.err"
        pid = os.fork()
        if pid == 0:
            _child(req["module"], req["argv"], req["cwd"], str(out), str(err))
        deadline = time.monotonic() + float(req.get("timeout", 300))
        status = None
        while status is None:
            done, st = os.waitpid(pid, os.WNOHANG)
            if done:
                status = st
            elif time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                status = os.waitpid(pid, 0)[1]
            else:
                time.sleep(0.02)
        code = os.waitstatus_to_exitcode(status)
        result = {"code": code, "stdout": out.read_text(), "stderr": err.read_text()}
        out.unlink()
        err.unlink()
        reply.write(json.dumps(result) + "\n")
        reply.flush()


class StageRunner:
    """A running fork server; ``run(name, argv, cwd)`` returns (code, stdout, stderr)."""

    def __init__(self) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = str(ROOT)
        env["MPLBACKEND"] = "Agg"
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "tests.stages.stage_runner"],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def run(
        self, stage: str, argv: list[str], cwd: Path, timeout: float = 300
    ) -> tuple[int, str, str]:
        assert self._proc.stdin is not None and self._proc.stdout is not None
        req = {"module": f"stages.{stage}", "argv": argv, "cwd": str(cwd), "timeout": timeout}
        self._proc.stdin.write(json.dumps(req) + "\n")
        self._proc.stdin.flush()
        line = self._proc.stdout.readline()
        if not line:
            raise RuntimeError("the stage runner died")
        res = json.loads(line)
        return res["code"], res["stdout"], res["stderr"]

    def close(self) -> None:
        if self._proc.poll() is None:
            assert self._proc.stdin is not None
            self._proc.stdin.close()
            try:
                self._proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()


if __name__ == "__main__":
    _serve()
