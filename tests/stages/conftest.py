"""Fixtures of the stage tests: one tiny world of valid stage inputs per test session."""

from __future__ import annotations

import pytest

from tests.stages.stage_world import World, make_world


@pytest.fixture(scope="session")
def tiny_world(tmp_path_factory) -> World:
    """dataset -> train -> ... -> sje (and the other stages' inputs) on the tiny params,
    built once by running the stages (tests/stages/stage_world.py)."""
    with make_world(tmp_path_factory.mktemp("tiny_world")) as world:
        yield world
