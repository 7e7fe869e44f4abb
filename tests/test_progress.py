"""Progress lines when stderr is not a terminal (the Prefect/DVC case)."""

from __future__ import annotations

import logging

from advinterp.progress import track


def test_track_yields_everything_and_logs_rate_and_eta(caplog):
    with caplog.at_level(logging.INFO, logger="advinterp.progress"):
        assert list(track(range(5), total=5, desc="shards", unit="shard", log_every=0.0)) == list(
            range(5)
        )
    lines = [r.getMessage() for r in caplog.records if r.name == "advinterp.progress"]
    assert len(lines) == 5, lines  # one per item with log_every=0, final not repeated
    assert lines[-1].startswith("shards: 5/5 shard (100%)")
    assert "shard/s" in lines[-1] and "ETA" in lines[-1]


def test_track_logs_final_line_once_without_total(caplog):
    with caplog.at_level(logging.INFO, logger="advinterp.progress"):
        list(track(iter(range(3)), desc="items", log_every=3600))
    lines = [r.getMessage() for r in caplog.records if r.name == "advinterp.progress"]
    assert len(lines) == 1 and lines[0].startswith("items: 3 it")
