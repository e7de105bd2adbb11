"""Real routers in front of two tiny upstreams (`rollouts.upstream`) on loopback ports."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import pytest
import time_machine

from governance.models import Release
from rollouts import lifecycle
from rollouts.models import Rollout, TrafficSplit
from tests.rollouts.conftest import T0, approved, at, feed
from tests.servers import free_port, serving

__all__ = ["approved"]  # the fixture, for the engine tests here


def require(binary: str) -> str:
    """The router's binary; CI installs it, so there a missing one fails the test."""
    path = shutil.which(binary) or shutil.which(binary, path="/usr/sbin:/usr/local/sbin")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"{binary} is not installed (.ci/run installs it)")
        pytest.skip(f"{binary} is not installed: apt-get install -y {binary}")
    return path


@dataclass(frozen=True)
class Upstreams:
    stable_url: str
    canary_url: str
    stable_version: str
    canary_version: str


@pytest.fixture
def upstreams() -> Iterator[Upstreams]:
    """Two upstream processes answering with their version: stable v2.0.0, canary v2.1.0."""
    stable_port, canary_port = free_port(), free_port()
    with ExitStack() as stack:
        for port, version in ((stable_port, "v2.0.0"), (canary_port, "v2.1.0")):
            stack.enter_context(
                serving(
                    [
                        sys.executable,
                        "-m",
                        "rollouts.upstream",
                        "--port",
                        str(port),
                        "--service",
                        "backend",
                        "--version",
                        version,
                    ],
                    port,
                )
            )
        yield Upstreams(
            f"http://127.0.0.1:{stable_port}",
            f"http://127.0.0.1:{canary_port}",
            "v2.0.0",
            "v2.1.0",
        )


# --- Driving a rollout through the engine in front of a real router ---

STABLE, CANARY = "v2.0.0", "v2.1.0"


@pytest.fixture
def client_for(team: dict[str, Any], token_for: Callable[..., str], api: Callable[..., Any]) -> Any:
    return lambda name, *scopes: api(token_for(team[name], *scopes))


@pytest.fixture
def clock() -> Iterator[Any]:
    with time_machine.travel(T0, tick=False) as traveller:
        yield traveller


def started(approved: Callable[..., Release], team: dict[str, Any]) -> Rollout:
    """A rollout of `backend` v2.1.0 over v2.0.0, with healthy metrics for six hours."""
    rollout = lifecycle.rollout_start(release=approved(), actor=team["erin"], stable_version=STABLE)
    feed("backend", STABLE, "stable", at(-3600), 6 * 3600, requests=2000)
    feed("backend", CANARY, "canary", at(0), 6 * 3600, requests=200)
    return rollout


def recorded(rollout: Rollout) -> tuple[int, int, bool]:
    """The rollout's weight, the router's confirmed weight and whether its last call did."""
    rollout.refresh_from_db()
    split = TrafficSplit.objects.get(service="backend")
    return rollout.weight, split.weight, split.ok
