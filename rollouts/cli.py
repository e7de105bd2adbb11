"""`canary`: the guide's deploy / monitor / promote / abort scripts, as one client of
the portal's API. Base URL and token from --url/--token or CANARY_URL/CANARY_TOKEN.

Exit codes: 0 ok, 1 refused by the portal (or unreachable; the message is printed),
2 usage error, 3 `monitor` saw the rollout rolled back or aborted.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from typing import Any, NoReturn

import httpx
from rich.console import Console
from rich.live import Live
from rich.progress import BarColumn, Progress, TextColumn
from rich.table import Table

OK, REFUSED, USAGE, ROLLED_BACK = 0, 1, 2, 3
TERMINAL = {"promoted": OK, "rolled_back": ROLLED_BACK, "aborted": ROLLED_BACK}
err = Console(stderr=True)
out = Console()


class Refusal(Exception):
    def __init__(self, message: str, blocking: list[str] | None = None) -> None:
        super().__init__(message)
        self.message, self.blocking = message, blocking or []


class Portal:
    def __init__(self, url: str, token: str, timeout: float = 15) -> None:
        self.http = httpx.Client(
            base_url=url.rstrip("/"), timeout=timeout, headers={"Authorization": f"Bearer {token}"}
        )

    def call(self, method: str, path: str, body: Any = None, ok: tuple[int, ...] = ()) -> Any:
        try:
            response = self.http.request(method, path, json=body)
        except httpx.HTTPError as exc:
            raise Refusal(f"Cannot reach the portal at {self.http.base_url}: {exc}") from None
        if response.status_code >= 400 and response.status_code not in ok:
            try:
                data = response.json()
            except ValueError:
                data = {"detail": response.text[:300]}
            raise Refusal(
                f"{response.status_code}: {data.get('detail', data)}", data.get("blocking")
            )
        return response.json() if response.content else None

    def rollout(self, version: str, service: str | None) -> dict[str, Any]:
        query = f"/api/v1/rollouts/?version={version}" + (f"&service={service}" if service else "")
        rollouts = self.call("GET", query)
        if not rollouts:
            raise Refusal(f"No rollout of version {version}.")
        return max(rollouts, key=lambda r: r["id"])


def _changed_paths(ref: str) -> list[str]:
    result = subprocess.run(
        ["git", "diff", "--name-only", f"{ref}...HEAD"],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise Refusal(f"git diff {ref}...HEAD failed: {result.stderr.strip()}")
    return [line for line in result.stdout.splitlines() if line]


def deploy(portal: Portal, args: argparse.Namespace) -> int:
    paths = _changed_paths(args.paths_from_git) if args.paths_from_git else []
    body = {
        "service": args.service,
        "version": args.version,
        "tier": args.tier,
        "changed_paths": paths,
        "change_types": args.change_type or [],
        "changelog": args.changelog,
        "rollback_plan": args.rollback_plan,
    }
    created = portal.call("POST", "/api/v1/releases/", body, ok=(409,))
    if "id" not in created:  # it exists already: deploy that one
        found = portal.call(
            "GET", f"/api/v1/releases/?service={args.service}&version={args.version}"
        )
        created = found[0]
    plan = {"plan": args.plan} if args.plan else {}
    rollout = portal.call("POST", f"/api/v1/releases/{created['id']}/deploy/", plan)
    out.print(
        f"Rollout {rollout['id']}: {rollout['service']} {rollout['version']} "
        f"{rollout['state']} at {rollout['weight']}% (plan {rollout['plan']})"
    )
    return OK


def _view(rollout: dict[str, Any]) -> Table:
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(bar_width=40),
        TextColumn("{task.completed:>3.0f}%"),
    )
    progress.add_task("canary weight", total=100, completed=rollout["weight"])
    analysis = rollout.get("last_analysis") or {}
    table = Table.grid(padding=(0, 2))
    table.add_row("rollout", f"{rollout['id']} {rollout['service']} {rollout['version']}")
    table.add_row("state", rollout["state"])
    table.add_row(
        "phase",
        f"{rollout['phase']['index'] + 1} of {len(rollout['phases'])} "
        f"(ends {rollout['phase']['ends_at'] or '-'})",
    )
    table.add_row("verdict", f"{analysis.get('verdict', '-')} {analysis.get('reason', '')}")
    table.add_row("", progress)
    return table


def monitor(portal: Portal, args: argparse.Namespace) -> int:
    deadline = time.monotonic() + args.timeout if args.timeout else None
    rollout = portal.rollout(args.version, args.service)
    with Live(
        _view(rollout), console=out, auto_refresh=False, transient=not out.is_terminal
    ) as live:
        while rollout["state"] not in TERMINAL:
            if deadline and time.monotonic() > deadline:
                raise Refusal(f"Still {rollout['state']} after {args.timeout:g}s.")
            time.sleep(args.interval)
            rollout = portal.call("GET", f"/api/v1/rollouts/{rollout['id']}/")
            live.update(_view(rollout), refresh=True)
    out.print(f"{rollout['service']} {rollout['version']}: {rollout['state']}")
    if rollout.get("rollback"):
        out.print(f"reason: {rollout['rollback']['reason']} ({rollout['rollback']['trigger']})")
    return TERMINAL[rollout["state"]]


def promote(portal: Portal, args: argparse.Namespace) -> int:
    """--auto: when validation passes; --manual: the next phase now; --manual --full (or
    --approver @x): straight to 100%, once a second member makes the same call (@x: only
    they may) within 15 minutes."""
    full = bool(args.full or args.approver)
    if args.auto and full:
        usage("--full and --approver are for a manual promotion (--manual)")
    rollout = portal.rollout(args.version, args.service)
    body: dict[str, Any] = {"mode": "auto" if args.auto else "manual", "confirmed": True}
    if full:
        body["full"] = True
        body["approver"] = args.approver or ""
    result = portal.call("POST", f"/api/v1/rollouts/{rollout['id']}/promote/", body)
    if result.get("awaiting"):
        who = result["approver"] or "a second member (council or steward)"
        out.print(
            f"{rollout['service']} {rollout['version']}: full promotion asked by "
            f"{result['requested_by']}, awaiting {who} until {result['expires_at']} "
            "(the same command confirms it)"
        )
        return OK
    where = f" at {result['weight']}%" if result["state"] != "promoted" else ""
    out.print(
        f"{result['service']} {result['version']}: {result['state']}{where}"
        + (" (promotes automatically when validation passes)" if args.auto else "")
    )
    return OK


def pause_or_resume(portal: Portal, args: argparse.Namespace) -> int:
    rollout = portal.rollout(args.version, args.service)
    body = {"reason": args.reason} if getattr(args, "reason", None) else {}
    result = portal.call("POST", f"/api/v1/rollouts/{rollout['id']}/{args.command}/", body)
    out.print(f"{result['service']} {result['version']}: {result['state']} at {result['weight']}%")
    return OK


def abort(portal: Portal, args: argparse.Namespace) -> int:
    body = {
        "version": args.version,
        "reason": args.reason,
        "confirmed": True,
        "operator": args.operator or os.environ.get("USER", ""),
    }
    if args.service:
        body["service"] = args.service
    result = portal.call("POST", "/ops/canary/abort", body)
    out.print(f"Rollout {result['rollout']}: {result['state']} (canary traffic is at 0)")
    return OK


COMMANDS = {
    "deploy": deploy,
    "monitor": monitor,
    "promote": promote,
    "pause": pause_or_resume,
    "resume": pause_or_resume,
    "abort": abort,
}


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="canary", description="Deploy, monitor, promote and abort canary releases."
    )
    root.add_argument("--url", default=os.environ.get("CANARY_URL", "http://127.0.0.1:8000"))
    root.add_argument("--token", default=os.environ.get("CANARY_TOKEN", ""))
    commands = root.add_subparsers(dest="command", required=True)

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text)
        sub.add_argument("--version", required=True)
        sub.add_argument("--service", default=None)
        return sub

    sub = command("deploy", "create (or reuse) the release and deploy it")
    sub.add_argument("--tier", required=True, choices=["low", "medium", "high"])
    sub.add_argument("--paths-from-git", metavar="REF")
    sub.add_argument("--change-type", action="append")
    sub.add_argument("--plan", choices=["standard", "high_risk"])
    sub.add_argument("--changelog", default="")
    sub.add_argument("--rollback-plan", default="")
    sub = command("monitor", "live view until the rollout ends")
    sub.add_argument("--interval", type=float, default=5)
    sub.add_argument("--timeout", type=float, default=0, help="give up after S seconds")
    sub = command(
        "promote",
        "the next phase now (--manual), 100%% with a second member (--full), or "
        "when validation passes (--auto)",
    )
    mode = sub.add_mutually_exclusive_group(required=True)
    mode.add_argument("--auto", action="store_true")
    mode.add_argument("--manual", action="store_true")
    sub.add_argument("--full", action="store_true", help="straight to 100%%: two members")
    sub.add_argument(
        "--approver",
        metavar="@NAME",
        help="the second member who must confirm a full promotion (implies --full)",
    )
    sub = command("pause", "hold the rollout at its current weight")
    sub.add_argument("--reason", default="")
    command("resume", "carry on where the rollout was paused")
    sub = command("abort", "the kill switch: all traffic back to stable now")
    sub.add_argument("--reason", required=True)
    sub.add_argument("--operator")
    return root


def usage(message: str) -> NoReturn:
    err.print(f"canary: {message}")
    sys.exit(USAGE)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)  # argparse exits 2 on usage errors
    if not args.token:
        usage("no token: pass --token or set CANARY_TOKEN")
    if args.command == "deploy" and args.service is None:
        args.service = os.environ.get("CANARY_SERVICE", "backend")
    portal = Portal(args.url, args.token)
    try:
        run = COMMANDS[args.command]
        return run(portal, args)
    except Refusal as refusal:
        err.print(f"refused: {refusal.message}")
        for reason in refusal.blocking:
            err.print(f"  - {reason}")
        return REFUSED
    except KeyboardInterrupt:
        return REFUSED


if __name__ == "__main__":
    sys.exit(main())
