"""The service catalogue: seeded services, `service_set`, `router_config`, the API."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from typing import Any

import pytest
import time_machine
from django.core.management import CommandError, call_command

from governance.models import Service
from rollouts.models import TrafficSplit
from tests.conftest import run_manage
from tests.rollouts.conftest import at
from tests.servers import closed_port

pytestmark = pytest.mark.django_db
URL = "/api/v1/services/"


def service_set(*args: str) -> dict[str, Any]:
    out = io.StringIO()
    call_command("service_set", *args, stdout=out)
    return json.loads(out.getvalue())


def refused(*args: str) -> str:
    with pytest.raises(CommandError) as raised:
        call_command("service_set", *args, stdout=io.StringIO())
    assert raised.value.returncode == 2
    return str(raised.value)


def test_the_guides_services_are_seeded() -> None:
    frontend = Service.objects.get(name="frontend")
    backend = Service.objects.get(name="backend")
    assert frontend.stable_url == "http://127.0.0.1:3000"
    assert backend.stable_url == "http://127.0.0.1:8001"
    assert frontend.modules == [
        "frontend/pages/**",
        "frontend/components/**",
        "frontend/api/**",
        "**/migrations/**",
    ]
    assert "src/backend/payments/**" in backend.modules
    assert "**/migrations/**" in backend.modules
    assert (frontend.router, frontend.metrics) == ("embedded", "push")


def test_service_set_creates_then_changes_only_the_options_given() -> None:
    created = service_set(
        "billing", "--module", "src/billing/**", "--stable", "http://127.0.0.1:9001/"
    )
    assert created["modules"] == ["src/billing/**"]
    assert (created["stable_url"], created["canary_url"]) == ("http://127.0.0.1:9001/", "")
    changed = service_set("billing", "--canary", "http://127.0.0.1:9002/")
    assert (changed["stable_url"], changed["canary_url"]) == (
        "http://127.0.0.1:9001/",
        "http://127.0.0.1:9002/",
    )
    assert changed["modules"] == ["src/billing/**"]
    replaced = service_set("billing", "--module", "a/**", "--module", "b/**")
    assert replaced["modules"] == ["a/**", "b/**"]
    assert service_set("billing", "--module", "a/**", "--module", "b/**") == replaced
    assert (
        service_set("billing", "--router", "embedded", "--metrics", "push")["router"] == "embedded"
    )
    assert Service.objects.filter(name="billing").count() == 1


@pytest.mark.parametrize(
    "args",
    [
        ["--smoke-url", "/healthz"],
        ["--webhook", "pre-rollout=http://127.0.0.1:1/"],
        ["--staging", "frontend"],
    ],
)
def test_what_this_version_cannot_do_is_refused_and_nothing_changes(args: list[str]) -> None:
    before = Service.objects.get(name="backend")
    message = refused("backend", "--stable", "http://changed:1/", *args)
    assert "not available yet in this version" in message
    after = Service.objects.get(name="backend")
    assert (after.stable_url, after.router, after.metrics) == (
        before.stable_url,
        before.router,
        before.metrics,
    )
    assert not Service.objects.filter(name="nobody").exists()
    refused("nobody", *args)
    assert not Service.objects.filter(name="nobody").exists()


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (["--router", "nginx"], "--router nginx needs --listen"),
        (["--router", "haproxy", "--listen", "127.0.0.1:8080"], "needs --haproxy-socket"),
        (["--listen", "nowhere"], "--listen 'nowhere': give HOST:PORT"),
        (["--listen", "127.0.0.1:70000"], "give HOST:PORT"),
        (["--haproxy-socket", "relative.sock"], "an absolute socket path or HOST:PORT"),
        (["--nginx-dir", "/no/such/dir"], "/no/such/dir: no such directory"),
        (["--reload-command", "no-such-binary -s reload"], "no-such-binary is not an executable"),
        (["--reload-command", "nginx 'unclosed"], "--reload-command: No closing quotation"),
    ],
)
def test_router_settings_are_checked_and_a_bad_one_changes_nothing(
    args: list[str], problem: str
) -> None:
    before = Service.objects.get(name="backend")
    assert problem in refused("backend", "--stable", "http://changed:1/", *args)
    after = Service.objects.get(name="backend")
    assert (after.stable_url, after.router, after.listen) == (
        before.stable_url,
        before.router,
        before.listen,
    )


def test_a_bad_value_exits_2_and_changes_nothing() -> None:
    assert "stable_url" in refused("backend", "--module", "x/**", "--stable", "not a url")
    assert Service.objects.get(name="backend").modules[0] == "src/backend/api/**"
    refused("backend", "--module", " ")
    assert Service.objects.get(name="backend").modules[0] == "src/backend/api/**"


@pytest.mark.django_db(transaction=True)
def test_the_command_line_exits_2_on_a_refused_router() -> None:
    done = run_manage("service_set", "backend", "--router", "nginx")
    assert done.returncode == 2, done.stderr
    assert "--router nginx needs --listen" in done.stderr
    assert Service.objects.get(name="backend").router == "embedded"
    done = run_manage("router_config", "nobody")
    assert done.returncode == 2 and "unknown service: nobody" in done.stderr


def test_router_config_says_where_the_embedded_split_lives() -> None:
    TrafficSplit.objects.create(
        service="backend", stable_version="v2.0.3", canary_version="v2.1.0", weight=5
    )
    out, err = io.StringIO(), io.StringIO()
    call_command("router_config", "backend", stdout=out, stderr=err)
    assert "the split lives in the portal" in err.getvalue()
    split = json.loads(out.getvalue())
    assert (split["router"], split["weight"], split["canary_version"]) == ("embedded", 5, "v2.1.0")
    with pytest.raises(CommandError) as raised:
        call_command("router_config", "nobody", stdout=out, stderr=err)
    assert raised.value.returncode == 2


def test_the_api_lists_services_with_the_router_state(
    api: Callable[..., Any], token_for: Callable[..., str], engineer: Any
) -> None:
    with time_machine.travel("2026-03-01T10:00:00Z", tick=False):
        TrafficSplit.objects.create(service="backend", canary_version="v2.1.0", weight=20)
    body = api(token_for(engineer, "read")).get(URL).json()
    by_name = {service["name"]: service for service in body}
    assert set(by_name) >= {"backend", "frontend", "checkout", "search"}
    backend = by_name["backend"]
    assert set(backend) == {
        "name",
        "modules",
        "stable_url",
        "canary_url",
        "router",
        "metrics",
        "router_state",
    }
    assert backend["router_state"] == {
        "weight": 20,
        "applied_at": "2026-03-01T10:00:00Z",
        "ok": True,
    }
    assert by_name["frontend"]["router_state"]["weight"] == 0


def test_the_api_refuses_without_token_wrong_scope_and_writes(
    api: Callable[..., Any], token_for: Callable[..., str], engineer: Any
) -> None:
    for response, code in (
        (api().get(URL), 401),
        (api(token_for(engineer, "releases:write")).get(URL), 403),
        (api(token_for(engineer, "read")).post(URL, {"name": "x"}, format="json"), 405),
    ):
        assert response.status_code == code and response.json()["detail"]
    assert not Service.objects.filter(name="x").exists()


def test_the_admin_edits_modules_and_urls_but_never_the_router(team: dict[str, Any]) -> None:
    from tests.conftest import logged_in

    backend = Service.objects.get(name="backend")
    url = f"/admin/governance/service/{backend.pk}/change/"
    form = {
        "name": "backend",
        "modules": '["src/backend/**"]',
        "stable_url": "http://127.0.0.1:8001",
        "canary_url": "http://127.0.0.1:8011",
        "router": "nginx",
        "metrics": "prometheus",
    }
    assert logged_in(team["erin"]).post(url, form).status_code == 403
    assert logged_in(team["oscar"]).post(url, {**form, "modules": '["", 3]'}).status_code == 200
    assert Service.objects.get(name="backend").modules == backend.modules
    assert logged_in(team["oscar"]).post(url, form).status_code == 302
    changed = Service.objects.get(name="backend")
    assert (changed.modules, changed.canary_url) == (["src/backend/**"], "http://127.0.0.1:8011")
    assert (changed.router, changed.metrics) == ("embedded", "push")
    assert changed.history.latest().canary_url == "http://127.0.0.1:8011"


def test_a_superuser_sets_the_router_in_the_admin_and_a_bad_setting_is_refused(
    tmp_path: Any,
) -> None:
    from django.contrib.auth import get_user_model

    from tests.conftest import logged_in

    root = get_user_model().objects.create_superuser("root", "root@example.com", "pw-root-1")
    backend = Service.objects.get(name="backend")
    url = f"/admin/governance/service/{backend.pk}/change/"
    form = {
        "name": "backend",
        "modules": '["src/backend/**"]',
        "stable_url": "http://127.0.0.1:8001",
        "canary_url": "http://127.0.0.1:8011",
        "router": "nginx",
        "listen": "",
        "nginx_dir": str(tmp_path),
        "reload_command": "true",
        "haproxy_socket": "",
        "metrics": "push",
        "prometheus_url": "",
    }
    refused = logged_in(root).post(url, form)
    assert refused.status_code == 200
    assert "router nginx needs listen" in refused.content.decode()
    assert Service.objects.get(name="backend").router == "embedded"

    saved = logged_in(root).post(url, {**form, "listen": "127.0.0.1:18081"}, follow=True)
    assert saved.status_code == 200
    changed = Service.objects.get(name="backend")
    assert (changed.router, changed.listen, changed.reload_command) == (
        "nginx",
        "127.0.0.1:18081",
        "true",
    )
    assert changed.history.latest().history_user == root
    # Saved, then served: the portal wrote the include (all to stable: no rollout yet).
    text = (tmp_path / "backend.conf").read_text()
    assert "listen 127.0.0.1:18081;" in text and "split_clients" not in text
    assert "exit status only" in saved.content.decode()  # no nginx listens here
    assert TrafficSplit.objects.get(service="backend").ok


def test_a_router_that_did_not_confirm_shows_in_the_api_the_admin_and_the_dashboard(
    api: Callable[..., Any],
    token_for: Callable[..., str],
    team: dict[str, Any],
    approved: Callable[..., Any],
) -> None:
    from rollouts import lifecycle
    from tests.conftest import logged_in

    rollout = lifecycle.rollout_start(release=approved(), actor=team["erin"])
    TrafficSplit.objects.filter(service="backend").update(
        ok=False,
        error="RouterError: HAProxy runtime API at /run/haproxy.sock unreachable",
        pending={"weight": 5, "canary_version": "v2.1.0"},
        attempts=2,
        next_attempt_at=at(3),
    )
    state = {s["name"]: s for s in api(token_for(team["erin"], "read")).get(URL).json()}["backend"][
        "router_state"
    ]
    assert (state["ok"], state["weight"], state["pending_weight"]) == (False, 1, 5)
    assert "unreachable" in state["error"] and state["next_attempt_at"]
    listing = logged_in(team["oscar"]).get("/admin/governance/service/").content.decode()
    assert "NOT CONFIRMED: 5% waits" in listing
    page = logged_in(team["oscar"]).get(f"/rollouts/{rollout.pk}/dashboard/").content.decode()
    assert "not confirmed" in page and "unreachable" in page


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (["--metrics", "prometheus"], "--metrics prometheus needs --prometheus-url"),
        (["--prometheus-url", "prometheus:9090"], "give http(s)://HOST[:PORT][/PATH]"),
        (["--prometheus-url", "ftp://prometheus:9090"], "give http(s)://HOST[:PORT][/PATH]"),
        (["--prometheus-url", "http://prometheus:99999"], "give http(s)://HOST[:PORT][/PATH]"),
        (["--prometheus-url", "http://prometheus:9090/?q=up"], "with no query"),
    ],
)
def test_a_prometheus_source_needs_a_good_url_and_a_bad_one_changes_nothing(
    args: list[str], problem: str
) -> None:
    assert problem in refused("backend", "--stable", "http://changed:1/", *args)
    after = Service.objects.get(name="backend")
    assert (after.stable_url, after.metrics, after.prometheus_url) == (
        "http://127.0.0.1:8001",
        "push",
        "",
    )


def test_service_set_reads_a_service_from_its_prometheus_and_back_from_push() -> None:
    url = f"http://127.0.0.1:{closed_port()}/monitoring"  # behind a path prefix
    out, err = io.StringIO(), io.StringIO()
    call_command(
        "service_set",
        "backend",
        "--metrics=prometheus",
        f"--prometheus-url={url}",
        stdout=out,
        stderr=err,
    )
    shown = json.loads(out.getvalue())
    assert (shown["metrics"], shown["prometheus_url"]) == ("prometheus", url)
    assert "Prometheus does not answer yet" in err.getvalue()  # saved all the same
    backend = Service.objects.get(name="backend")
    assert (backend.metrics, backend.prometheus_url) == ("prometheus", url)
    assert backend.history.latest().prometheus_url == url
    back = service_set("backend", "--metrics", "push")
    assert (back["metrics"], back["prometheus_url"]) == ("push", url)


def test_a_superuser_sets_the_metrics_source_in_the_admin(team: dict[str, Any]) -> None:
    from django.contrib.auth import get_user_model

    from tests.conftest import logged_in

    root = get_user_model().objects.create_superuser("root", "root@example.com", "pw-root-1")
    backend = Service.objects.get(name="backend")
    url = f"/admin/governance/service/{backend.pk}/change/"
    form = {
        **{"name": "backend", "modules": '["src/backend/**"]', "router": "embedded"},
        **{"stable_url": "http://127.0.0.1:8001", "canary_url": ""},
        **{"listen": "", "nginx_dir": "", "reload_command": "", "haproxy_socket": ""},
        **{"metrics": "prometheus", "prometheus_url": ""},
    }
    page = logged_in(root).post(url, form)
    assert page.status_code == 200
    assert "metrics prometheus needs prometheus url" in page.content.decode()
    prometheus = "http://prometheus:9090"
    assert logged_in(root).post(url, {**form, "prometheus_url": prometheus}).status_code == 302
    backend.refresh_from_db()
    assert (backend.metrics, backend.prometheus_url) == ("prometheus", prometheus)
    # Stewards and ops edit the catalogue, never the metrics source.
    ops = {**form, "metrics": "push", "prometheus_url": "http://elsewhere:9090"}
    assert logged_in(team["oscar"]).post(url, ops).status_code == 302
    backend.refresh_from_db()
    assert (backend.metrics, backend.prometheus_url) == ("prometheus", prometheus)
