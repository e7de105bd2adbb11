"""A real HAProxy running the configuration the portal renders for a service, as the
current user, in the foreground (standard library and the adapter only, so `bench/`
can use it without pytest).

    with HAProxy(router, target, directory) as proxy:   # writes, checks, starts
        ...
        proxy.stop(); proxy.start()                     # a restart, same haproxy.cfg
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

from rollouts.traffic.haproxy import HAProxyRouter
from rollouts.traffic.haproxy_runtime import endpoint
from rollouts.traffic.router import Target


def haproxy_binary() -> str:
    path = shutil.which("haproxy") or shutil.which("haproxy", path="/usr/sbin:/usr/local/sbin")
    if path is None:
        raise RuntimeError("haproxy is not installed: apt-get install -y haproxy")
    return path


def socket_path() -> str:
    """A unix socket path short enough for the kernel (108 bytes), in a fresh directory."""
    return str(Path(tempfile.mkdtemp(prefix="haproxy-")) / "admin.sock")


def check(config: Path) -> str:
    """`haproxy -c`'s output; RuntimeError when it rejects the file."""
    checked = subprocess.run(
        [haproxy_binary(), "-c", "-f", str(config)], capture_output=True, text=True, check=False
    )
    if checked.returncode != 0:
        raise RuntimeError(f"haproxy -c rejected {config}:\n{checked.stdout}{checked.stderr}")
    return checked.stdout + checked.stderr


def _answers(address: str) -> bool:
    """Whether something accepts connections at HOST:PORT or a unix socket path."""
    family, where = endpoint(address)
    try:
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.settimeout(1)
            sock.connect(where)
            return True
    except OSError:
        return False


class HAProxy:
    """HAProxy for `router`'s service, started from `router.config(target)` written to
    `directory/haproxy.cfg` (checked with `haproxy -c` first)."""

    def __init__(self, router: HAProxyRouter, target: Target, directory: Path) -> None:
        self.router = router
        self.config = directory / "haproxy.cfg"
        self.config.write_text(router.config(target))
        self.check_output = check(self.config)
        self.log = directory / "haproxy.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def listen(self) -> tuple[str, int]:
        host, _, port = self.router.service.listen.rpartition(":")
        return host.strip("[]"), int(port)

    def start(self, timeout: float = 10) -> None:
        """Start, and return once both the frontend and the runtime API answer."""
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [haproxy_binary(), "-f", str(self.config), "-db"], stdout=log, stderr=log
            )
        deadline = time.monotonic() + timeout
        listen, runtime = self.router.service.listen, self.router.service.haproxy_socket
        while not (_answers(listen) and _answers(runtime)):
            if self.process.poll() is not None:
                raise RuntimeError(f"haproxy exited with {self.process.returncode}: {self.logs}")
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"haproxy did not answer within {timeout}s: {self.logs}")
            time.sleep(0.02)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        self.process = None

    @property
    def logs(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def __enter__(self) -> HAProxy:
        self.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
