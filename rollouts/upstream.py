"""A tiny HTTP service that answers with its version: the demo's stable and canary
behind a real router, and the upstreams of the router tests and benchmarks.

`python -m rollouts.upstream --port 9001 --service backend --version v2.0.0`
answers every GET with its version (body and `X-Served-By`), and `/metrics` with
what it served in the usual instrumentation (`http_requests_total{service, version,
code}` and `http_request_duration_seconds` as a histogram), for Prometheus to scrape.
`--error-rate` makes that share of answers a 500, `--latency-ms` adds a delay.
"""

from __future__ import annotations

import argparse
import random
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST


def make_handler(
    service: str, version: str, error_rate: float, latency_ms: float
) -> type[BaseHTTPRequestHandler]:
    registry = CollectorRegistry()
    requests = Counter(
        "http_requests",
        "Requests served.",
        ["service", "version", "code"],
        registry=registry,
    )
    duration = Histogram(
        "http_request_duration_seconds",
        "Time to answer a request.",
        ["service", "version"],
        registry=registry,
    )

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            if self.path == "/metrics":
                self._answer(200, generate_latest(registry), CONTENT_TYPE_LATEST)
                return
            started = time.perf_counter()
            if latency_ms:
                time.sleep(latency_ms / 1000)
            code = 500 if random.random() < error_rate else 200  # noqa: S311 - a demo fault
            self._answer(code, f"{version}\n".encode(), "text/plain")
            requests.labels(service, version, str(code)).inc()
            duration.labels(service, version).observe(time.perf_counter() - started)

        def _answer(self, code: int, body: bytes, content_type: str) -> None:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("X-Served-By", version)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            return

    return Handler


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--service", default="demo")
    parser.add_argument("--version", required=True)
    parser.add_argument("--error-rate", type=float, default=0.0)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    args = parser.parse_args(argv)
    handler = make_handler(args.service, args.version, args.error_rate, args.latency_ms)
    handler.disable_nagle_algorithm = True  # headers and body leave at once on keep-alive
    ThreadingHTTPServer.request_queue_size = 1024  # a burst of connects is not refused
    server = ThreadingHTTPServer((args.host, args.port), handler)
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
