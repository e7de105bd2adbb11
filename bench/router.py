"""The kill switch behind a real router, and what the portal's router config costs.

For each router (nginx, HAProxy) in front of the `backend` service, configured as an
operator would (`service_set`), with the portal under gunicorn:

1. Kill switch to zero: in each of `--trials` trials (after `--warmup` uncounted ones,
   the first calls in fresh gunicorn workers) a fresh version is approved and started
   through the product's services (1% of new clients, everyone sending its
   `X-Canary-Version`, holders of its cookie); four prober threads send such requests
   (two with the header, two with a canary cookie), each every `--probe-ms`, and the kill
   switch `POST /ops/canary/abort` is called over HTTP. The time to zero runs from the
   moment the call was sent to the send time of the earliest request after which no
   request sent later reached the canary. Printed per router: its p50/p95/max, how long
   the call took, how long the rollback's route-to-stable step took inside it, any
   request sent after the 202 that still reached the canary (there must be none), and
   the host's TCP sockets (the nginx router's listener check reads the whole socket
   table). Target: p95 < 500 ms.
2. Throughput: requests/s (wrk) through the config the portal writes at `--weight`%
   beside the same router running a hand-written static split of the same weight (nginx:
   `split_clients` and two upstreams; HAProxy: a two-server weighted backend), same
   upstreams, runs alternating. Twice: with the demo upstreams (`rollouts.upstream`,
   Python, as in step 1) and with upstreams that nginx answers from memory, so that
   the router, not a Python upstream, is what limits the rate. Target: ratio >= 0.9.

Traffic goes to 127.0.0.1 only; every process started here is stopped at the end. Runs
in a scratch database (created and dropped here) on DATABASE_URL's server; the portal
counts its rate limits in REDIS_URL, as in production.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/canary_portal \\
    REDIS_URL=redis://127.0.0.1:6379/14 \\
        .venv/bin/python bench/router.py [--trials 20] [--probe-ms 20] [--rounds 6]
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import io
import json
import logging
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common import scratch_database
from django.conf import settings
from django.core.management import call_command
from django.db import connection

from governance.choices import ItemStatus
from governance.members import member_set_roles
from governance.models import Release, Service
from governance.services import checklist_sign, release_create, vote_cast
from governance.tokens import token_issue
from rollouts import engine, lifecycle
from rollouts.choices import StepName
from rollouts.traffic.haproxy import DEFAULTS, HAProxyRouter
from rollouts.traffic.router import Target
from rollouts.traffic.truth import route
from tests.routers.haproxy_process import HAProxy, haproxy_binary, socket_path
from tests.routers.http_load import Answer, fresh, get_many, steady, with_cookie
from tests.routers.nginx_process import running_nginx
from tests.servers import ROOT, database_url, free_port, gunicorn_command, serving

KILL = "/ops/canary/abort"
SERVICE = "backend"
STABLE, CANARY = "v2.0.0", "canary"  # what each upstream answers in X-Served-By
SIGNERS = {
    "engineer": "erin",
    "steward": "sam",
    "ops": "oscar",
    "finance": "fiona",
    "security": "sid",
    "compliance": "cora",
}


def p95(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=20, method="inclusive")[-1]


# -- the upstreams -------------------------------------------------------------------


@dataclass(frozen=True)
class Pair:
    """A stable and a canary upstream, and the port of the static split in front of them."""

    name: str
    stable_url: str
    canary_url: str
    static_port: int

    def server(self, url: str) -> str:
        return url.removeprefix("http://")


def python_upstreams(stack: ExitStack) -> Pair:
    """The demo upstreams: `python -m rollouts.upstream`, one process each."""
    urls = []
    for version in (STABLE, CANARY):
        port = free_port()
        command = [sys.executable, "-m", "rollouts.upstream", "--port", str(port)]
        command += ["--service", SERVICE, "--version", version]
        quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
        stack.enter_context(serving(command, port, cwd=ROOT, **quiet))
        urls.append(f"http://127.0.0.1:{port}")
    return Pair("python", urls[0], urls[1], free_port())


FAST = """worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
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
    default_type text/plain;
    server {{
        listen 127.0.0.1:{stable};
        location / {{
            add_header X-Served-By {stable_version};
            return 200 "{stable_version}\\n";
        }}
    }}
    server {{
        listen 127.0.0.1:{canary};
        location / {{
            add_header X-Served-By {canary_version};
            return 200 "{canary_version}\\n";
        }}
    }}
}}
"""


def fast_upstreams(stack: ExitStack, tmp: Path) -> Pair:
    """Upstreams that answer as the demo's do (the version, `X-Served-By`), from nginx's
    memory: one nginx worker for both."""
    tmp.mkdir()
    stable, canary = free_port(), free_port()
    conf = tmp / "nginx.conf"
    conf.write_text(
        FAST.format(
            tmp=tmp, stable=stable, canary=canary, stable_version=STABLE, canary_version=CANARY
        )
    )
    command = ["nginx", "-c", str(conf), "-e", f"{tmp}/error.log", "-g", "daemon off;"]
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    stack.enter_context(serving(command, stable, **quiet))
    return Pair("nginx", f"http://127.0.0.1:{stable}", f"http://127.0.0.1:{canary}", free_port())


# -- the hand-written static splits ----------------------------------------------------

NGINX_STATIC = """# A hand-written canary split: {weight}% of requests to the canary, no stickiness.
upstream static_{name}_stable {{
    server {stable};
}}
upstream static_{name}_canary {{
    server {canary};
}}
split_clients "$request_id" $static_{name}_upstream {{
    {weight}% static_{name}_canary;
    * static_{name}_stable;
}}
server {{
    listen 127.0.0.1:{port};
    location / {{
        proxy_pass http://$static_{name}_upstream;
        proxy_set_header Host $host;
        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        proxy_set_header X-Forwarded-Proto $scheme;
    }}
}}
"""

# A hand-written canary split: a two-server weighted backend, on the portal's defaults
# (the same timeouts and options), so that only the split differs.
HAPROXY_STATIC = (
    "# A hand-written canary split: a two-server weighted backend.\n"
    "global\n"
    "    log stderr format short local0 notice\n\n" + DEFAULTS
)

HAPROXY_STATIC_PAIR = """
frontend fe_static_{name}
    bind 127.0.0.1:{port}
    default_backend be_static_{name}

backend be_static_{name}
    balance roundrobin
    server stable {stable} weight {stable_weight}
    server canary {canary} weight {weight}
"""


def nginx_static(pairs: list[Pair], weight: int) -> str:
    return "\n".join(
        NGINX_STATIC.format(
            name=pair.name,
            stable=pair.server(pair.stable_url),
            canary=pair.server(pair.canary_url),
            weight=weight,
            port=pair.static_port,
        )
        for pair in pairs
    )


def haproxy_static(pairs: list[Pair], weight: int) -> str:
    return HAPROXY_STATIC + "".join(
        HAPROXY_STATIC_PAIR.format(
            name=pair.name,
            port=pair.static_port,
            stable=pair.server(pair.stable_url),
            canary=pair.server(pair.canary_url),
            stable_weight=100 - weight,
            weight=weight,
        )
        for pair in pairs
    )


# -- the portal, its members and releases ------------------------------------------------


@contextmanager
def portal(workers: int, files: Path) -> Iterator[str]:
    """gunicorn with the portal on the scratch database, DEBUG off, logs discarded; no
    Celery worker (the bench carries each rollback on itself, as the engine's tick does)."""
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url(connection.settings_dict["NAME"]),
        "DEBUG": "",
        "SECURE_SSL_REDIRECT": "0",  # plain HTTP on loopback, as behind TLS
        "CELERY_BROKER_URL": "memory://",  # nothing left queued for a worker that never runs
        "ROUTER_FILES_DIR": str(files / "routers"),
        "STATUS_SNAPSHOT_DIR": str(files / "status"),
        "AUDIT_ANCHOR_PATH": str(files / "audit-anchor"),
    }
    env.setdefault("SECRET_KEY", "bench-" + "x" * 50)
    env.setdefault("ALLOWED_HOSTS", "127.0.0.1,localhost")
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    with serving(gunicorn_command(port, workers), port, env=env, cwd=ROOT, **quiet):
        yield f"127.0.0.1:{port}"


def make_team() -> dict[str, Any]:
    """The personas of the tests: an engineer, two council members, one signer per role."""
    roles = {"carol": "council", "dave": "council", **{v: k for k, v in SIGNERS.items()}}
    return {name: member_set_roles(username=name, roles=[r]).user for name, r in roles.items()}


def approved_release(team: dict[str, Any], version: str) -> Release:
    """A release of `backend` whose gate is open: every required item signed by a holder
    of its role, and the council's votes when it needs them."""
    release = release_create(
        author=team["erin"],
        service=SERVICE,
        version=version,
        tier="medium",
        change_types=["bug_fix"],
        rollback_plan=f"Redeploy {STABLE}",
    )
    for item in release.items.filter(required=True):
        signer = team[SIGNERS[item.signer_roles[0]]]
        checklist_sign(release=release, key=item.key, user=signer, status=ItemStatus.PASSED)
    if release.approvals_required:
        for voter in ("carol", "dave"):
            vote_cast(release=release, voter=team[voter], decision="approve", comment="ok")
    return release


def service_set(*options: str) -> None:
    """`manage.py service_set backend ...`, as an operator configures the router; exits
    unless the router confirmed what the portal holds for the service."""
    said = io.StringIO()
    call_command("service_set", SERVICE, *options, stdout=io.StringIO(), stderr=said)
    if "did not confirm" in said.getvalue():
        sys.exit(said.getvalue())


# -- kill switch to zero --------------------------------------------------------------


@dataclass(frozen=True)
class Trial:
    """One kill-switch call and what the probers saw around it."""

    to_zero_s: float  # from sending the call to the first request after the canary's last
    call_s: float  # from sending the call to its answer
    router_s: float  # the rollback's route-to-stable step, as the portal timed it
    late: int  # requests sent after the 202 that still reached the canary
    probes: int
    cut: int  # no whole answer: a reload closed the connection, HAProxy cut the session
    failed: int  # answers other than 200
    sockets: int  # TCP sockets on the host after the trial


def kill_switch(portal_address: str, token: str, version: str) -> tuple[float, float, int, str]:
    """The kill switch over HTTP: when it was sent and answered (monotonic), its status."""
    body = json.dumps(
        {
            "version": version,
            "service": SERVICE,
            "reason": "Error rate above the threshold",
            "confirmed": True,
            "operator": "@oncall",
        }
    )
    host, _, port = portal_address.partition(":")
    call = http.client.HTTPConnection(host, int(port), timeout=60)
    call.connect()
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    sent = time.monotonic()
    call.request("POST", KILL, body=body, headers=headers)
    response = call.getresponse()
    text = response.read().decode(errors="replace")
    answered = time.monotonic()
    call.close()
    return sent, answered, response.status, text


def to_zero(answers: list[Answer], sent: float) -> float:
    """Seconds from `sent` to the send time of the earliest request after which no request
    sent later reached the canary (0 when none reached it after `sent`)."""
    last = max((a.sent_at for a in answers if a.served_by == CANARY), default=float("-inf"))
    after = [a.sent_at for a in answers if a.sent_at > last]
    if not after:
        sys.exit("the probers stopped before the canary stopped answering")
    return max(0.0, min(after) - sent)


def probe(connection: http.client.HTTPConnection, headers: dict[str, str]) -> Answer:
    """One GET / on a keep-alive connection. Status 0 when no whole answer came (a reload
    closed the connection, or HAProxy shut the canary's sessions): who served it is still
    known once its headers arrived, and it counts as having reached that server."""
    sent, status, served_by = time.monotonic(), 0, ""
    try:
        connection.request("GET", "/", headers=headers)
        response = connection.getresponse()
        served_by = response.getheader("X-Served-By") or ""
        response.read()
        status = response.status
    except (http.client.HTTPException, OSError):
        connection.close()  # the next request opens a new connection
    return Answer(status, served_by, "", sent)


@contextmanager
def probing(port: int, requests: list[dict[str, str]], interval: float) -> Iterator[list[Answer]]:
    """A thread per item of `requests`, each sending it on a keep-alive connection every
    `interval` seconds (or as soon as answered, when slower) for as long as the block runs;
    the answers, with their send times, are in the yielded list."""
    answers: list[Answer] = []
    stop = threading.Event()
    lock = threading.Lock()

    def work(headers: dict[str, str]) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            while not stop.is_set():
                answer = probe(connection, headers)
                with lock:
                    answers.append(answer)
                stop.wait(answer.sent_at + interval - time.monotonic())
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(headers,)) for headers in requests]
    for thread in threads:
        thread.start()
    try:
        yield answers
    finally:
        stop.set()
        for thread in threads:
            thread.join()


def tcp_sockets() -> int:
    """How many TCP sockets the host has (TIME_WAIT included): what a reader of the whole
    socket table, such as the nginx router's listener check, goes through."""
    total = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(table, "rb") as lines:
            total += sum(1 for _ in lines) - 1
    return total


def wait_for_canary(answers: list[Answer], count: int, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while sum(a.served_by == CANARY for a in list(answers)) < count:
        if time.monotonic() > deadline:
            sys.exit("the probers did not reach the canary: is the rollout's weight applied?")
        time.sleep(0.01)


@dataclass(frozen=True)
class Caller:
    """Who calls the kill switch, where, and how the calls are probed."""

    portal: str  # HOST:PORT of gunicorn
    token: str  # an ops member's, scope canary:abort
    team: dict[str, Any]
    interval: float  # each prober sends a request this often, s
    after: float  # how long the probers carry on after the 202, s


def trial(
    caller: Caller,
    router_port: int,
    version: str,
    holders: Callable[[int], list[dict[str, str]]],
) -> Trial:
    """One rollout of `version` started, probed, killed over HTTP and rolled back."""
    team = caller.team
    rollout = lifecycle.rollout_start(
        release=approved_release(team, version), actor=team["erin"], stable_version=STABLE
    )
    if rollout.weight == 0:
        sys.exit(f"the router did not confirm the first phase of {version}")
    header, cookies = {"X-Canary-Version": version}, holders(router_port)
    if any(answer.served_by != CANARY for answer in get_many(router_port, cookies)):
        sys.exit(f"a canary cookie holder did not reach the canary of {version}")
    requests = [header, cookies[0], header, cookies[1]]  # a thread each
    with probing(router_port, requests, caller.interval) as answers:
        wait_for_canary(answers, 100)
        sent, answered, status, text = kill_switch(caller.portal, caller.token, version)
        time.sleep(caller.after)  # the probers carry on: nothing may reach the canary now
    sockets = tcp_sockets()
    if status != 202:
        sys.exit(f"the kill switch answered {status}: {text[:500]}")
    step = rollout.rollback.steps.get(name=StepName.ROUTE_TO_STABLE)
    outcome = engine.rollback_continue(rollout.pk)
    if outcome != "rolled_back":
        sys.exit(f"the rollback of {version} ended {outcome!r}")
    return Trial(
        to_zero_s=to_zero(answers, sent),
        call_s=answered - sent,
        router_s=(step.duration_ms or 0) / 1000,
        late=sum(a.served_by == CANARY and a.sent_at > answered for a in answers),
        probes=len(answers),
        cut=sum(a.status == 0 for a in answers),
        failed=sum(a.status not in (0, 200) for a in answers),
        sockets=sockets,
    )


def nginx_holders(port: int) -> list[dict[str, str]]:
    """Two clients holding an nginx sticky id in the canary's range: ids nginx itself
    handed out with a canary answer."""
    ids: list[str] = []
    for _ in range(50):
        answers = get_many(port, fresh(400))
        ids += [a.set_cookie for a in answers if a.served_by == CANARY and a.set_cookie]
        if len(ids) >= 2:
            return with_cookie(ids[:2])
    sys.exit("nginx sent no new client to the canary")


def haproxy_holders(port: int) -> list[dict[str, str]]:
    """Two clients holding HAProxy's canary cookie (the server's cookie value)."""
    return [{"Cookie": f"theme=dark; codex-canary-id={CANARY}"}] * 2


# -- throughput -----------------------------------------------------------------------

WRK_RATE = re.compile(r"Requests/sec:\s+([\d.]+)")
WRK_ERRORS = re.compile(r"(Non-2xx or 3xx responses: \d+|Socket errors: [^\n]+)")


def load(port: int, seconds: float, connections: int) -> tuple[float, str]:
    """Requests/s of GET / at `port` (no cookie: every request a new client), and any
    errors; wrk when installed, else Python keep-alive clients."""
    if shutil.which("wrk"):
        command = ["wrk", "-t", "2", "-c", str(connections), "-d", f"{seconds:g}s"]
        out = subprocess.run(
            [*command, f"http://127.0.0.1:{port}/"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        match = WRK_RATE.search(out)
        if match is None:
            sys.exit(f"wrk printed no rate:\n{out}")
        return float(match.group(1)), "; ".join(WRK_ERRORS.findall(out))
    with steady(port, fresh(connections), threads=connections) as answers:
        time.sleep(seconds)
    errors = sum(answer.status != 200 for answer in answers)
    return len(answers) / seconds, f"{errors} non-200" if errors else ""


def canary_share(port: int, clients: int = 2000) -> float:
    answers = get_many(port, fresh(clients))
    return 100 * sum(answer.served_by == CANARY for answer in answers) / len(answers)


@dataclass(frozen=True)
class Throughput:
    """Requests/s of each config, run after run (run n of one beside run n of the other)."""

    upstreams: str
    static: list[float]
    managed: list[float]
    static_share: float  # % of new clients the canary got, measured after the runs
    managed_share: float
    errors: list[str]

    @property
    def ratios(self) -> list[float]:
        """Managed / static of each pair of neighbouring runs: whatever else the machine
        was doing then weighed on both alike."""
        return [m / s for m, s in zip(self.managed, self.static, strict=True)]

    @property
    def ratio(self) -> float:
        return statistics.median(self.ratios)


def throughput(
    pair: Pair, managed_port: int, weight: int, rounds: int, seconds: float, connections: int
) -> Throughput:
    """The portal's config (routed to `pair` at `weight`%, as a phase does) and the static
    split of `pair`, measured in turn, alternating which goes first."""
    service_set(f"--stable={pair.stable_url}", f"--canary={pair.canary_url}")
    route(SERVICE, weight, canary_version="v9.9.9", stable_version=STABLE, salt="0123456789abcdef")
    rates: dict[str, list[float]] = {"static": [], "managed": []}
    errors = []
    ports = {"static": pair.static_port, "managed": managed_port}
    for n in range(rounds):
        for which in ("static", "managed") if n % 2 == 0 else ("managed", "static"):
            rate, error = load(ports[which], seconds, connections)
            rates[which].append(rate)
            print(f"  {pair.name} upstreams, {which}: {rate:,.0f} req/s", file=sys.stderr)
            if error:
                errors.append(f"{which}: {error}")
    return Throughput(
        pair.name,
        rates["static"],
        rates["managed"],
        canary_share(pair.static_port),
        canary_share(managed_port),
        errors,
    )


# -- the two routers ------------------------------------------------------------------


@contextmanager
def nginx_router(tmp: Path, pairs: list[Pair], weight: int) -> Iterator[int]:
    """nginx with the portal's include directory (and the static splits beside it),
    `backend` set to it on the first pair; the port `backend` listens on."""
    upstream = pairs[0]
    tmp.mkdir()
    (tmp / "canary").mkdir()
    (tmp / "canary" / "static-split.conf").write_text(nginx_static(pairs, weight))
    with running_nginx(tmp) as nginx:
        port = free_port()
        service_set(
            "--router=nginx",
            f"--listen=127.0.0.1:{port}",
            f"--nginx-dir={nginx.include_dir}",
            f"--reload-command={nginx.reload_command}",
            f"--stable={upstream.stable_url}",
            f"--canary={upstream.canary_url}",
        )
        yield port


@contextmanager
def haproxy_router(tmp: Path, pairs: list[Pair], weight: int) -> Iterator[int]:
    """HAProxy started from the config the portal renders for `backend`, `backend` set to
    it on the first pair; and a second HAProxy with the static splits. The port `backend`
    listens on."""
    upstream = pairs[0]
    tmp.mkdir()
    port, admin = free_port(), socket_path()
    service = Service.objects.get(name=SERVICE)
    service.router, service.listen, service.haproxy_socket = "haproxy", f"127.0.0.1:{port}", admin
    service.stable_url, service.canary_url = upstream.stable_url, upstream.canary_url
    first = Target(weight=0, stable_url=upstream.stable_url)
    static_cfg = tmp / "static.cfg"
    static_cfg.write_text(haproxy_static(pairs, weight))
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    try:
        with (
            HAProxy(HAProxyRouter(service), first, tmp),
            serving(
                [haproxy_binary(), "-f", str(static_cfg), "-db"], pairs[0].static_port, **quiet
            ),
        ):
            service_set(
                "--router=haproxy",
                f"--listen={service.listen}",
                f"--haproxy-socket={admin}",
                f"--stable={upstream.stable_url}",
                f"--canary={upstream.canary_url}",
            )
            yield port
    finally:
        shutil.rmtree(Path(admin).parent, ignore_errors=True)


# How each router is started, and its clients that hold a canary cookie.
ROUTERS = {"nginx": (nginx_router, nginx_holders), "haproxy": (haproxy_router, haproxy_holders)}


# -- the run --------------------------------------------------------------------------


Trials = dict[str, list[Trial]]  # by router


def measure(
    args: argparse.Namespace, files: Path
) -> tuple[Trials, Trials, dict[str, list[Throughput]]]:
    """Per router: the warm-up trials, the measured trials, the throughput rows."""
    warmups: Trials = {}
    kills: Trials = {}
    rates: dict[str, list[Throughput]] = {}
    with scratch_database(), ExitStack() as stack:
        team = make_team()
        _, token = token_issue(user=team["oscar"], scopes=["canary:abort"])
        demo = python_upstreams(stack)
        pairs = [demo, fast_upstreams(stack, files / "upstreams")]
        address = stack.enter_context(portal(args.workers, files))
        caller = Caller(address, token, team, args.probe_ms / 1000, args.after)
        for number, name in enumerate(args.routers.split(",")):
            start, holders = ROUTERS[name]
            with start(files / name, pairs, args.weight) as port:
                warmups[name], kills[name] = [], []
                for n in range(args.warmup + args.trials):
                    version = f"v2.{number + 1}.{n + 1}"
                    outcome = trial(caller, port, version, holders)
                    (warmups if n < args.warmup else kills)[name].append(outcome)
                    print(
                        f"{name} {version}: zero in {outcome.to_zero_s * 1000:.0f} ms, call "
                        f"{outcome.call_s * 1000:.0f} ms, router {outcome.router_s * 1000:.0f} ms"
                        f" ({outcome.sockets:,} TCP sockets)",
                        file=sys.stderr,
                    )
                rates[name] = [
                    throughput(
                        pair, port, args.weight, args.rounds, args.duration, args.connections
                    )
                    for pair in pairs
                ]
                # Back to the demo upstreams with no canary, for the next router.
                route(SERVICE, 0, canary_version="")
                service_set(f"--stable={demo.stable_url}", f"--canary={demo.canary_url}")
    return warmups, kills, rates


def ms(seconds: list[float]) -> str:
    """p50 / p95 / max in milliseconds."""
    samples = [s * 1000 for s in seconds]
    return f"{statistics.median(samples):.0f} / {p95(samples):.0f} / {max(samples):.0f}"


def report_kills(args: argparse.Namespace, warmups: Trials, kills: Trials) -> None:
    print(
        f"kill switch to zero: gunicorn --workers {args.workers}; {args.trials} trials per "
        f"router after {args.warmup} warm-up trials, each a fresh version at 1% probed by 4 "
        "threads (2 sending its X-Canary-Version, 2 holding a canary cookie), each every "
        f"{args.probe_ms:g} ms"
    )
    print(
        f"{'router':<9}{'to zero p50/p95/max':>22}{'call p50/p95/max':>22}"
        f"{'router step':>22}{'late':>6}{'cut':>5}{'failed':>8}{'probes':>8}{'sockets':>9}"
    )
    for name, trials in kills.items():
        print(
            f"{name:<9}{ms([t.to_zero_s for t in trials]):>22}{ms([t.call_s for t in trials]):>22}"
            f"{ms([t.router_s for t in trials]):>22}{sum(t.late for t in trials):>6}"
            f"{sum(t.cut for t in trials):>5}{sum(t.failed for t in trials):>8}"
            f"{sum(t.probes for t in trials):>8}"
            f"{statistics.median(t.sockets for t in trials):>9,.0f}"
        )
    for name, trials in warmups.items():
        if trials:
            listed = ", ".join(f"{t.to_zero_s * 1000:.0f}" for t in trials)
            print(f"  {name} warm-up trials (not counted): to zero {listed} ms")
    worst = max(p95([t.to_zero_s for t in trials]) for trials in kills.values()) * 1000
    late = sum(t.late for trials in kills.values() for t in trials)
    verdict = "met" if worst < 500 and late == 0 else "MISSED"
    print(f"target: to zero p95 < 500 ms, nothing late: {verdict} (worst p95 {worst:.0f} ms)")


def report_throughput(args: argparse.Namespace, rates: dict[str, list[Throughput]]) -> None:
    tool = "wrk -t 2" if shutil.which("wrk") else "Python keep-alive clients (wrk not installed)"
    print(
        f"\nthroughput at {args.weight}%: {tool} with {args.connections} connections, "
        f"{args.rounds} rounds of a {args.duration:g} s run each, in alternating order; no "
        "cookie (every request a new client); medians of the runs, ratio the median of "
        "each round's"
    )
    print(
        f"{'router':<9}{'upstreams':<11}{'static req/s':>14}{'managed req/s':>15}{'ratio':>7}"
        f"{'per round':>12}{'canary % static/managed':>26}"
    )
    for name, rows in rates.items():
        for row in rows:
            spread = f"{min(row.ratios):.2f}-{max(row.ratios):.2f}"
            print(
                f"{name:<9}{row.upstreams:<11}{statistics.median(row.static):>14,.0f}"
                f"{statistics.median(row.managed):>15,.0f}{row.ratio:>7.2f}{spread:>12}"
                f"{row.static_share:>17.1f} / {row.managed_share:.1f}"
            )
            for error in row.errors:
                print(f"  {name} {row.upstreams} errors: {error}")
    # With the Python upstreams the upstream sets the rate (a fraction of what the same
    # router moves with nginx-served ones): the target is judged where the router does.
    bound = [row.ratio for rows in rates.values() for row in rows if row.upstreams == "nginx"]
    verdict = "met" if min(bound) >= 0.9 else "MISSED"
    print(
        f"target: managed / static >= 0.9 with nginx-served upstreams: {verdict} "
        f"(lowest {min(bound):.2f})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=20, help="kill-switch trials per router")
    parser.add_argument("--warmup", type=int, default=2, help="uncounted trials first")
    parser.add_argument("--probe-ms", type=float, default=20, help="each prober's interval")
    parser.add_argument("--after", type=float, default=0.5, help="probing after the 202, s")
    parser.add_argument("--weight", type=int, default=20, help="canary weight for throughput")
    parser.add_argument("--duration", type=float, default=3, help="seconds per load run")
    parser.add_argument("--rounds", type=int, default=6, help="runs of each config")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--routers", default="nginx,haproxy", help="which routers, in order")
    args = parser.parse_args()
    if not set(args.routers.split(",")) <= ROUTERS.keys():
        parser.error(f"--routers: a comma-separated list of {', '.join(ROUTERS)}")
    logging.disable(logging.INFO)  # the portal's own log lines, in this process
    if not os.environ.get("REDIS_URL"):
        sys.exit("Set REDIS_URL: the portal counts its rate limits in Redis, as in production.")
    for binary in ("nginx", "haproxy"):
        if not (shutil.which(binary) or shutil.which(binary, path="/usr/sbin")):
            sys.exit(f"{binary} is not installed: apt-get install -y nginx haproxy")

    files = Path(tempfile.mkdtemp(prefix="bench-router-"))
    settings.ROUTER_FILES_DIR = str(files / "routers")
    settings.STATUS_SNAPSHOT_DIR = str(files / "status")
    settings.AUDIT_ANCHOR_PATH = str(files / "audit-anchor")
    load_before = os.getloadavg()[0]
    try:
        warmups, kills, rates = measure(args, files)
    finally:
        shutil.rmtree(files, ignore_errors=True)
    print(
        f"{os.cpu_count()} CPUs; load average (1 min) {load_before:.1f} before the run, "
        f"{os.getloadavg()[0]:.1f} after it"
    )
    report_kills(args, warmups, kills)
    report_throughput(args, rates)


if __name__ == "__main__":
    main()
