"""Fixtures of the stage tests: one tiny world of valid stage inputs per test session."""

from __future__ import annotations

import pytest

from tests.stages.stage_world import World, make_world


@pytest.fixture(scope="session")
def tiny_world(tmp_path_factory) -> World:
    """Every declared stage run once, in DAG order, on the tiny params
    (tests/stages/stage_world.py). A stage that fails to build fails the tests that
    need the world, with its stderr."""
    with make_world(tmp_path_factory.mktemp("tiny_world")) as world:
        yield world
