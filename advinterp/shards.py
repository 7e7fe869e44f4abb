"""Run a stage's shard work in this process or fanned out on a Dask cluster.

Stages that map over samples (features, attack, ...) fill zarr outputs one storage
shard at a time (:func:`advinterp.store.fill_shards`). :func:`run_shards` runs the
pending shards either here (``scale.executor: local``) or as one Prefect task per
shard on Dask through prefect-dask (``scale.executor: dask``): a temporary
``distributed.LocalCluster`` of ``scale.workers`` processes, or the running cluster at
``scale.address``. Each worker writes whole shards straight into the output being
built, so parallel workers never write the same file, then marks its shard complete
(the markers make a killed run resumable, see :func:`advinterp.store.resumable_output`).

Shard work must cross process boundaries, so it is described by a :class:`ShardJob`:
a module-level *setup* function and plain, picklable arguments. Every process calls
the setup once (cached) to get its ``compute(slice) -> {output name: array}``, e.g.
loading the model, then calls ``compute`` for each shard it is given. The same
``compute`` runs in both executors, on the same shard boundaries, so the results are
identical.

``scale`` changes how a stage runs, never what it computes: it is deliberately not a
DVC param of any stage, so a Dask run and a local run are cache hits for each other.

Test hook: ``ADVINTERP_TEST_SHARD_DELAY=<seconds>`` sleeps before each shard, so the
kill-and-resume tests can SIGKILL a run midway. Never set it outside tests.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import logging
import os
import pickle
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from advinterp.config.core import ScaleConfig
from advinterp.progress import track
from advinterp.store import (
    ShardMarkers,
    fill_shards,
    fingerprint,
    shard_slices,
    store_dir,
    write_shard,
)

log = logging.getLogger(__name__)

Compute = Callable[[slice], Mapping[str, np.ndarray]]
DELAY_ENV = "ADVINTERP_TEST_SHARD_DELAY"
_CACHE: dict[str, Compute] = {}
_CACHE_SIZE = 2  # a stage fills at most a couple of outputs with one model at a time


def _import_path(fn: Callable[..., Any]) -> str:
    module = fn.__module__
    if module == "__main__":  # ``python -m stages.x``: workers import it by its real name
        spec = getattr(sys.modules["__main__"], "__spec__", None)
        if spec is None:
            raise ValueError(f"{fn.__qualname__}: define shard setups in an importable module")
        module = spec.name
    if "<" in fn.__qualname__:
        raise ValueError(f"{fn.__qualname__}: shard setups must be module-level functions")
    return f"{module}:{fn.__qualname__}"


@dataclass(frozen=True)
class ShardJob:
    """Shard work any process can rebuild: ``setup(*args) -> compute``.

    Attributes:
        setup: ``"package.module:function"`` of a module-level setup function.
        args: its picklable arguments (absolute paths as strings, numbers, numpy
            arrays): workers on other machines rebuild the computation from them.
    """

    setup: str
    args: tuple[Any, ...]

    @classmethod
    def of(cls, setup: Callable[..., Compute], *args: Any) -> ShardJob:
        return cls(_import_path(setup), args)

    @property
    def token(self) -> str:
        return hashlib.sha256(pickle.dumps((self.setup, self.args))).hexdigest()

    def compute(self) -> Compute:
        """This process's compute function (the setup runs once per process)."""
        key = self.token
        if key not in _CACHE:
            while len(_CACHE) >= _CACHE_SIZE:
                _CACHE.pop(next(iter(_CACHE)))
            module, name = self.setup.split(":")
            _CACHE[key] = getattr(importlib.import_module(module), name)(*self.args)
        return _CACHE[key]


@dataclass(frozen=True)
class ShardSpec:
    """Everything a worker needs for one shard: what to compute and where to write it."""

    job: ShardJob
    targets: tuple[tuple[str, str, str], ...]  # (output name, store root, array path)
    n: int
    chunk_size: int
    markers: ShardMarkers | None
    threads: int


def _delayed(compute: Compute) -> Compute:
    delay = float(os.environ.get(DELAY_ENV, "0") or 0)
    if delay <= 0:
        return compute

    def slow(sl: slice) -> Mapping[str, np.ndarray]:
        time.sleep(delay)
        return compute(sl)

    return slow


def run_one_shard(spec: ShardSpec, k: int) -> dict[str, Any]:
    """Compute shard ``k``, write it into the output store, then mark it complete."""
    import torch  # local: only the workers need it here

    start = time.perf_counter()
    torch.set_num_threads(spec.threads)
    sl = shard_slices(spec.n, spec.chunk_size)[k]
    result = _delayed(spec.job.compute())(sl)
    outputs = {
        name: zarr.open_array(store=root, path=path, mode="r+") for name, root, path in spec.targets
    }
    write_shard(outputs, result, sl)
    if spec.markers is not None:
        spec.markers.mark(k)
    return {"shard": k, "pid": os.getpid(), "seconds": time.perf_counter() - start}


def run_shards(
    outputs: Mapping[str, zarr.Array],
    job: ShardJob,
    n: int,
    chunk_size: int,
    *,
    scale: ScaleConfig,
    markers: ShardMarkers | None = None,
    desc: str = "shards",
) -> None:
    """Fill ``outputs`` shard by shard with ``job``, skipping shards already marked.

    Args:
        outputs: output name -> zarr array in a local directory store (what ``compute``
            returns for each shard is written there).
        scale: the ``scale`` params section (executor, workers, address).
        markers: completion markers of this group of shards (``Partial.markers(key)``).
    """
    if scale.executor == "local":
        fill_shards(outputs, _delayed(job.compute()), n, chunk_size, desc=desc, markers=markers)
        return
    todo = list(range(len(shard_slices(n, chunk_size))))
    if markers is not None:
        todo = markers.pending(todo, desc)
    if not todo:
        return
    # Absolute paths: workers of a real cluster do not share this process's cwd.
    targets = tuple(
        (name, str(store_dir(arr).resolve()), arr.path) for name, arr in outputs.items()
    )
    if markers is not None:
        markers = ShardMarkers(markers.root.resolve())
    spec = ShardSpec(job, targets, n, chunk_size, markers, scale.threads_per_worker)
    run_dask(spec, todo, scale, desc)


@contextlib.contextmanager
def _environ(**values: str) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@contextlib.contextmanager
def _prefect_api() -> Iterator[str]:
    """Make the Dask workers report to the same Prefect API as this process.

    With no ``PREFECT_API_URL`` configured, every worker process would start its own
    temporary Prefect server (slow, and left running when a worker is killed), so one
    temporary server is started here and its address handed to the workers through
    the environment they inherit.
    """
    from prefect.settings import PREFECT_API_URL, temporary_settings

    url = PREFECT_API_URL.value()
    server = None
    if not url:
        from prefect.server.api.server import SubprocessASGIServer

        server = SubprocessASGIServer()
        server.start(timeout=180)
        url = server.api_url
    try:
        with _environ(PREFECT_API_URL=url), temporary_settings({PREFECT_API_URL: url}):
            yield url
    finally:
        if server is not None:
            from prefect.logging.handlers import APILogWorker

            APILogWorker.drain_all(timeout=5)  # send the run's last logs before stopping
            server.stop()


_SESSION: dict[str, str] = {}
_TRIM_KEY = "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_"


@contextlib.contextmanager
def dask_session(scale: ScaleConfig) -> Iterator[None]:
    """One Prefect API and one Dask cluster for every :func:`run_shards` call inside.

    A stage that fills several outputs (one per model, say) wraps them in this so the
    cluster starts once and the workers keep their per-process setup caches. Without
    it each ``run_shards`` call on Dask opens its own session. No-op for ``local``.
    """
    if scale.executor != "dask" or _SESSION:
        yield
        return
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per Prefect API call
    with contextlib.ExitStack() as stack:
        stack.enter_context(_prefect_api())
        if scale.address:
            address = scale.address
            log.info("shards go to the Dask cluster at %s", address)
        else:
            import dask
            from distributed import LocalCluster

            # Workers inherit the Prefect API address and this thread budget at spawn.
            stack.enter_context(_environ(OMP_NUM_THREADS=str(scale.threads_per_worker)))
            # Dask's nannies set MALLOC_TRIM_THRESHOLD_=65536, which turns off glibc's
            # adaptive mmap threshold: every large torch tensor is then mmap'ed and
            # page-faulted afresh, measured 1.75x slower IFGSM here. Keep glibc's default.
            stack.enter_context(dask.config.set({_TRIM_KEY: None}))
            cluster = stack.enter_context(
                LocalCluster(
                    n_workers=scale.workers,
                    threads_per_worker=1,
                    processes=True,
                    dashboard_address=":0",
                )
            )
            address = cluster.scheduler_address
            log.info(
                "Dask LocalCluster of %d workers x %d torch threads, dashboard %s",
                scale.workers,
                scale.threads_per_worker,
                cluster.dashboard_link,
            )
        _SESSION["address"] = address
        try:
            yield
        finally:
            _SESSION.clear()


def run_dask(spec: ShardSpec, shards: list[int], scale: ScaleConfig, desc: str) -> None:
    """Run ``shards`` of ``spec`` as one Prefect flow of shard tasks on Dask (prefect-dask)."""
    from prefect import flow, task, unmapped
    from prefect.cache_policies import NO_CACHE
    from prefect.futures import as_completed
    from prefect_dask import DaskTaskRunner

    shard_task = task(
        name="shard",
        task_run_name=f"{desc}-{{k}}",
        cache_policy=NO_CACHE,
        persist_result=False,
    )(run_one_shard)

    def fan_out(spec: ShardSpec, shards: list[int]) -> list[dict[str, Any]]:
        futures = shard_task.map(unmapped(spec), shards)
        done = []
        for future in track(as_completed(futures), total=len(shards), desc=desc, unit="shard"):
            done.append(future.result())
        return done

    shard_flow = flow(name="shards", flow_run_name=desc, persist_result=False)(fan_out)
    with dask_session(scale):
        log.info("%s: %d shards on Dask", desc, len(shards))
        runner = DaskTaskRunner(address=_SESSION["address"])
        # prefect-dask subclasses bare TaskRunner (futures typed PrefectConcurrentFuture),
        # which the invariant TaskRunner[PrefectFuture] of with_options does not accept.
        flow_on_dask = shard_flow.with_options(task_runner=runner)  # type: ignore[arg-type]
        results = flow_on_dask(spec, shards)
    pids = {r["pid"] for r in results}
    log.info(
        "%s: %d shards done by %d worker processes (%.1f s of shard work in total)",
        desc,
        len(results),
        len(pids),
        sum(r["seconds"] for r in results),
    )


def stage_fingerprint(inputs: list[Path | str], params: Any) -> str:
    """Fingerprint of a resumable stage output: its inputs, params and the code.

    The code is every ``*.py`` of the ``advinterp`` and ``stages`` packages, so a code
    change never resumes onto shards written by the old code.
    """
    import advinterp
    import stages

    code = [Path(advinterp.__file__).parent, Path(stages.__file__).parent]
    return fingerprint(inputs, params, code)
