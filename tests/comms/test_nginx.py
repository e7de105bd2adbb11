"""The shipped nginx config: the status page from the snapshot directory (even with the
application stopped), everything else proxied to the portal."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from comms.snapshot import publish
from tests.conftest import ROOT, free_port, gunicorn, wait_for_port

pytestmark = pytest.mark.django_db(transaction=True)


def shipped_config(tmp: Path, listen: int, upstream: int, snapshot: str) -> Path:
    """deploy/nginx.conf with this machine's ports and paths."""
    text = (ROOT / "deploy" / "nginx.conf").read_text()
    text = text.replace("listen 80;", f"listen 127.0.0.1:{listen};")
    text = text.replace("server 127.0.0.1:8000;", f"server 127.0.0.1:{upstream};")
    text = text.replace("/srv/canary-portal/var/status", snapshot)
    text = text.replace("pid /run/canary-portal-nginx.pid;", f"pid {tmp}/nginx.pid;")
    text = text.replace("error_log stderr warn;", f"error_log {tmp}/error.log info;")
    text = text.replace(
        "http {",
        f"http {{\n    client_body_temp_path {tmp}/body;\n"
        f"    proxy_temp_path {tmp}/proxy;\n    fastcgi_temp_path {tmp}/f;\n"
        f"    uwsgi_temp_path {tmp}/u;\n    scgi_temp_path {tmp}/s;",
    )
    path = tmp / "nginx.conf"
    path.write_text(text)
    return path


@pytest.fixture
def front(tmp_path: Path, settings: Any) -> Iterator[tuple[str, subprocess.Popen]]:
    if not shutil.which("nginx"):
        pytest.fail("nginx is not installed: apt-get install -y nginx")
    # nginx's workers run as an unprivileged user: the snapshot must be readable by it.
    snapshot = Path(tempfile.mkdtemp(prefix="status-", dir="/tmp"))
    snapshot.chmod(0o755)
    settings.STATUS_SNAPSHOT_DIR = str(snapshot)
    listen = free_port()
    try:
        with gunicorn(STATUS_SNAPSHOT_DIR=str(snapshot)) as (upstream_url, app):
            upstream = int(upstream_url.rsplit(":", 1)[1])
            config = shipped_config(tmp_path, listen, upstream, str(snapshot))
            checked = subprocess.run(
                ["nginx", "-t", "-c", str(config)], capture_output=True, text=True, check=False
            )
            assert checked.returncode == 0, checked.stderr
            web = subprocess.Popen(
                ["nginx", "-c", str(config), "-g", "daemon off;"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            try:
                wait_for_port(listen, web)
                yield f"http://127.0.0.1:{listen}", app
            finally:
                web.terminate()
                web.wait(timeout=10)
    finally:
        shutil.rmtree(snapshot, ignore_errors=True)


def test_nginx_serves_the_snapshot_and_proxies_the_rest(
    front: tuple[str, subprocess.Popen],
) -> None:
    base, app = front
    publish()
    summary = httpx.get(f"{base}/api/v2/summary.json", timeout=10)
    assert summary.status_code == 200
    assert summary.headers["content-type"].startswith("application/json")
    assert "stale-if-error" in summary.headers["cache-control"]
    assert summary.headers["etag"]
    assert (
        httpx.get(
            f"{base}/api/v2/summary.json",
            timeout=10,
            headers={"If-None-Match": summary.headers["etag"]},
        ).status_code
        == 304
    )
    assert "All Systems Operational" in httpx.get(f"{base}/status/", timeout=10).text
    assert httpx.get(f"{base}/health/live", timeout=10).json()["status"] == "ok"

    app.terminate()
    app.wait(timeout=10)
    assert httpx.get(f"{base}/api/v2/status.json", timeout=10).status_code == 200
    assert httpx.get(f"{base}/health/live", timeout=10).status_code == 502
