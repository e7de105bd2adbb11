"""Real routers in front of two tiny upstreams (`rollouts.upstream`) on loopback ports."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass

import pytest

from tests.servers import free_port, serving


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
