"""A real nginx run by the current user in a temporary directory, with the portal's include
directory, for the router tests and the benchmarks (standard library only).

The main configuration is what an operator has: an `http` block that includes
`<dir>/canary/*.conf`, where the nginx router writes one file per service.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

MAIN = """worker_processes 2;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log info;
events {{
    worker_connections 1024;
}}
http {{
    access_log off;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    include {include_dir}/*.conf;
}}
"""


@dataclass(frozen=True)
class Nginx:
    conf: Path
    include_dir: Path
    process: subprocess.Popen[bytes]

    @property
    def reload_command(self) -> str:
        return f"nginx -c {self.conf} -e {self.conf.parent}/error.log -s reload"


def nginx_test(conf: Path) -> subprocess.CompletedProcess[str]:
    """`nginx -t` of a main configuration with what its include directory holds."""
    return subprocess.run(
        ["nginx", "-t", "-c", str(conf), "-e", f"{conf.parent}/error.log"],
        capture_output=True,
        text=True,
        check=False,
    )


def main_config(tmp: Path) -> Path:
    """`tmp/nginx.conf` including `tmp/canary/*.conf` (created empty)."""
    include_dir = tmp / "canary"
    include_dir.mkdir(parents=True, exist_ok=True)
    conf = tmp / "nginx.conf"
    conf.write_text(MAIN.format(tmp=tmp, include_dir=include_dir))
    return conf


@contextmanager
def running_nginx(tmp: Path, timeout: float = 10) -> Iterator[Nginx]:
    """nginx in the foreground with `main_config(tmp)`, once its master is up (it listens
    on nothing until a service's file is there); stopped afterwards."""
    if not shutil.which("nginx"):
        raise RuntimeError("nginx is not installed: apt-get install -y nginx")
    conf = main_config(tmp)
    pid_file = tmp / "nginx.pid"
    process = subprocess.Popen(
        ["nginx", "-c", str(conf), "-e", f"{tmp}/error.log", "-g", "daemon off;"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + timeout
        while not (pid_file.exists() and pid_file.read_text().strip() == str(process.pid)):
            if process.poll() is not None:
                raise RuntimeError(f"nginx exited with {process.returncode}: see {tmp}/error.log")
            if time.monotonic() >= deadline:
                raise TimeoutError(f"nginx did not start within {timeout}s")
            time.sleep(0.01)
        yield Nginx(conf, tmp / "canary", process)
    finally:
        process.terminate()
        process.wait(timeout=10)
