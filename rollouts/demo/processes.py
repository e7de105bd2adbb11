"""The demo's processes: an unprivileged nginx in the demo directory and the tiny upstreams
(`rollouts.upstream`) behind it, children of `demo_traffic`.

The directory holds nginx's main configuration (pid, error log and temporary paths inside
it, `include <dir>/canary/*.conf` where the nginx router writes one file per service),
the children's pid files and logs, and a marker: a directory with the marker is the
demo's own, cleaned at start (children a previous run left behind are stopped first,
each by its recorded pid, once its command line shows it is ours); any other non-empty
directory is refused. Children get SIGTERM when `demo_traffic` dies (Linux), and are
stopped when it exits.
"""

from __future__ import annotations

import contextlib
import ctypes
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psutil

MARKER = ".canary-demo"
NGINX_SEARCH_PATH = "/usr/sbin:/usr/local/sbin"
START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 5.0

MAIN = """# The demo's nginx, run by demo_traffic (rewritten at every start).
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log notice;
events {{
    worker_connections 1024;
}}
http {{
    access_log off;
    client_body_temp_path {dir}/tmp/body;
    proxy_temp_path {dir}/tmp/proxy;
    fastcgi_temp_path {dir}/tmp/fastcgi;
    uwsgi_temp_path {dir}/tmp/uwsgi;
    scgi_temp_path {dir}/tmp/scgi;
    include {dir}/canary/*.conf;
}}
"""


class DemoError(RuntimeError):
    """The real demo cannot run here (the command says why and simulates instead)."""


def find_nginx() -> str | None:
    """nginx on PATH or in /usr/sbin (where it is installed, often off a user's PATH)."""
    return shutil.which("nginx") or shutil.which("nginx", path=NGINX_SEARCH_PATH)


_prctl: Callable[..., int] | None
try:
    _prctl = ctypes.CDLL(None).prctl  # loaded here: a forked child only calls it
except (OSError, AttributeError):  # not Linux
    _prctl = None
PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when the parent dies (Linux)."""
    if _prctl is not None:
        _prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def port_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]
    port: int = 0
    version: str = ""

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@dataclass
class Children:
    """The demo directory and the processes started in it."""

    directory: Path
    nginx_binary: str
    children: dict[str, Child] = field(default_factory=dict)

    @property
    def conf(self) -> Path:
        return self.directory / "nginx.conf"

    @property
    def include_dir(self) -> Path:
        return self.directory / "canary"

    @property
    def reload_command(self) -> str:
        log = self.directory / "error.log"
        return shlex.join([self.nginx_binary, "-c", str(self.conf), "-e", str(log), "-s", "reload"])

    def prepare(self) -> None:
        """A clean demo directory: what a previous run left is stopped and removed."""
        directory = self.directory
        if directory.exists():
            if not (directory / MARKER).exists() and any(directory.iterdir()):
                raise DemoError(f"{directory} is not empty and not a demo directory")
            for pid_file in (directory / "pids").glob("*"):
                _stop_stale(pid_file, directory)
            shutil.rmtree(directory)
        for sub in (directory / "canary", directory / "tmp", directory / "pids"):
            sub.mkdir(parents=True)
        (directory / MARKER).write_text("The demo's directory: demo_traffic removes it at start.\n")
        self.conf.write_text(MAIN.format(dir=directory))

    def start_nginx(self) -> Child:
        log = self.directory / "error.log"
        command = [self.nginx_binary, "-c", str(self.conf), "-e", str(log), "-g", "daemon off;"]
        child = self._spawn("nginx", command)
        pid_file = self.directory / "nginx.pid"

        def up() -> bool:
            return pid_file.exists() and pid_file.read_text().strip() == str(child.process.pid)

        self._wait(child, up, f"see {log}")
        return child

    def start_upstream(
        self, name: str, port: int, service: str, version: str, error_rate: float = 0.0
    ) -> Child:
        """`rollouts.upstream` answering `version` on `port` (restarted if it runs)."""
        if name in self.children:
            self.children.pop(name).stop()
        command = [sys.executable, "-m", "rollouts.upstream", "--port", str(port)]
        command += ["--service", service, "--version", version, "--error-rate", str(error_rate)]
        child = self._spawn(name, command, port=port, version=version)
        self._wait(child, lambda: listening(port), f"see {self.directory / name}.log")
        return child

    def stop(self) -> None:
        """Stop every child (nginx last, so no request meets a stopped upstream)."""
        for name in sorted(self.children, key=lambda name: name == "nginx"):
            self.children[name].stop()
            (self.directory / "pids" / name).unlink(missing_ok=True)
        self.children.clear()

    def _spawn(self, name: str, command: list[str], port: int = 0, version: str = "") -> Child:
        with open(self.directory / f"{name}.log", "ab") as log:
            process = subprocess.Popen(  # our own children, no shell
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent,
                start_new_session=True,
            )
        (self.directory / "pids" / name).write_text(f"{process.pid}\n")
        child = Child(name, process, port, version)
        self.children[name] = child
        return child

    def _wait(self, child: Child, ready: Callable[[], bool], hint: str) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not ready():
            if child.process.poll() is not None:
                self.stop()
                raise DemoError(f"{child.name} exited with {child.process.returncode}: {hint}")
            if time.monotonic() >= deadline:
                self.stop()
                raise DemoError(f"{child.name} did not start within {START_TIMEOUT_S:g}s: {hint}")
            time.sleep(0.02)


def _stop_stale(pid_file: Path, directory: Path) -> None:
    """A process a previous run recorded, if it still runs and is one of ours."""
    try:
        process = psutil.Process(int(pid_file.read_text().strip()))
        command = " ".join(process.cmdline())
    except (OSError, ValueError, psutil.Error):
        return
    if "rollouts.upstream" not in command and str(directory) not in command:
        return  # the pid is someone else's by now
    with contextlib.suppress(psutil.Error):
        process.terminate()
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while time.monotonic() < deadline:
        try:
            if process.status() == psutil.STATUS_ZOMBIE:
                return
        except psutil.NoSuchProcess:
            return
        time.sleep(0.05)
