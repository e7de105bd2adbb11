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
from tests.conftest import gunicorn
from tests.servers import free_port, nginx, shipped_config

pytestmark = pytest.mark.django_db(transaction=True)


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
            with nginx(shipped_config(tmp_path, listen, upstream, str(snapshot)), listen):
                yield f"http://127.0.0.1:{listen}", app
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
