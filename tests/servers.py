"""Starting real servers on loopback ports, for the tests and the benchmarks (standard
library only, so `bench/` can use it without pytest)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent


def reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=3):
            return True
    except OSError:
        return False


def database_url(name: str) -> str:
    """DATABASE_URL naming database `name` on the same server, for a subprocess."""
    return urlunsplit(urlsplit(os.environ["DATABASE_URL"])._replace(path="/" + name))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def closed_port() -> int:
    """A port nothing listens on (bound, then released)."""
    return free_port()


def wait_for_port(port: int, proc: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process exited early with {proc.returncode}")
        if reachable("127.0.0.1", port):
            return
        time.sleep(0.1)
    raise TimeoutError(f"nothing listened on {port} within {timeout}s")


def gunicorn_command(port: int, workers: int) -> list[str]:
    """The portal under gunicorn on a loopback port (the environment names its database)."""
    return [
        *(sys.executable, "-m", "gunicorn", "portal.wsgi", "-b", f"127.0.0.1:{port}"),
        *("--workers", str(workers), "--access-logfile", "/dev/null"),
    ]


def _local(text: str, tmp: Path) -> str:
    """An nginx config made runnable by an unprivileged user in `tmp`."""
    text = text.replace("pid /run/canary-portal-nginx.pid;", f"pid {tmp}/nginx.pid;")
    text = text.replace("error_log stderr warn;", f"error_log {tmp}/error.log info;")
    return text.replace(
        "http {",
        f"http {{\n    client_body_temp_path {tmp}/body;\n"
        f"    proxy_temp_path {tmp}/proxy;\n    fastcgi_temp_path {tmp}/f;\n"
        f"    uwsgi_temp_path {tmp}/u;\n    scgi_temp_path {tmp}/s;",
    )


def shipped_config(tmp: Path, listen: int, upstream: int, snapshot: str) -> Path:
    """deploy/nginx.conf with this machine's ports and paths."""
    text = (ROOT / "deploy" / "nginx.conf").read_text()
    text = text.replace("listen 80;", f"listen 127.0.0.1:{listen};")
    text = text.replace("server 127.0.0.1:8000;", f"server 127.0.0.1:{upstream};")
    text = text.replace("/srv/canary-portal/var/status", snapshot)
    path = tmp / "nginx.conf"
    path.write_text(_local(text, tmp))
    return path


def static_config(tmp: Path, listen: int, root: str) -> Path:
    """The baseline: nginx serving a directory as plain static files, tuned as the shipped
    config is (workers, sendfile, keep-alive), with nothing else."""
    text = f"""worker_processes auto;
pid /run/canary-portal-nginx.pid;
error_log stderr warn;
events {{
    worker_connections 4096;
}}
http {{
    include /etc/nginx/mime.types;
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_timeout 30;
    server {{
        listen 127.0.0.1:{listen};
        root {root};
    }}
}}
"""
    path = tmp / "static.conf"
    path.write_text(_local(text, tmp))
    return path


@contextmanager
def nginx(config: Path, listen: int) -> Iterator[subprocess.Popen]:
    """nginx in the foreground with `config` (checked first), stopped afterwards."""
    if not shutil.which("nginx"):
        raise RuntimeError("nginx is not installed: apt-get install -y nginx")
    checked = subprocess.run(
        ["nginx", "-t", "-c", str(config)], capture_output=True, text=True, check=False
    )
    if checked.returncode != 0:
        raise RuntimeError(checked.stderr)
    with serving(
        ["nginx", "-c", str(config), "-g", "daemon off;"],
        listen,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    ) as proc:
        yield proc


@contextmanager
def serving(command: list[str], port: int, **popen: Any) -> Iterator[subprocess.Popen]:
    """A server process, once it listens on `port`; terminated afterwards."""
    proc = subprocess.Popen(command, **popen)
    try:
        wait_for_port(port, proc)
        yield proc
    finally:
        proc.terminate()
        proc.wait(timeout=10)
