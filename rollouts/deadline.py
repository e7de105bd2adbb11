"""Enforced timeouts for calls to the outside world: a command's whole process group is
killed at its deadline; any other call runs in a thread of its own and is abandoned at
its deadline (it holds no lock, and its result is ignored)."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def with_deadline(call: Callable[[], T], timeout: float) -> T:
    """`call()` in a thread of its own; TimeoutError if it has not returned in time (the
    thread is abandoned: it holds no lock and its result is ignored)."""
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = call()
        except BaseException as exc:  # handed to the caller
            box["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise TimeoutError(f"no answer within {timeout:g}s")
    if "error" in box:
        raise box["error"]
    return box["value"]  # type: ignore[no-any-return]


def run_command(command: str, timeout: float, key: str) -> str:
    """The command in a process group of its own, killed whole at the deadline."""
    process = subprocess.Popen(  # an operator-configured command, no shell
        shlex.split(command),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        env={**os.environ, "CANARY_IDEMPOTENCY_KEY": key},
    )
    try:
        _out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        raise
    if process.returncode != 0:
        raise RuntimeError(f"exit {process.returncode}: {err.strip()[:500]}")
    return f"ran {command!r}"
