"""The benchmarks' HTTP side: the platform under gunicorn, and requests timed as a client sees them.

Used by bench.metrics (beside the in-process figures and the raw SQL) and runnable alone for the request
overhead on SQLite, ``make run``'s database:

    python -m bench.http [--requests 2000] [--no-write]
"""

from __future__ import annotations

import http.client
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

WORKERS = 2
# Throttling stays on (its cost is part of every request), at a rate no benchmark reaches.
THROTTLE_RATE = "100000000/min"


@contextmanager
def platform_server(database_url: str | None, sqlite_path: str | None = None, workers: int = WORKERS) -> Iterator[str]:
    """gunicorn (``workers`` processes of 2 threads) serving the platform on the given database, with the
    settings a deployment runs (DEBUG off, request tracking on); yields its base URL and stops it by pid."""
    from tests.servers import start_web_server

    base = Path(tempfile.mkdtemp(prefix="tw-bench-web-"))
    env = {**os.environ, "TOOLWEAVER_DATA_DIR": str(base), "DJANGO_DEBUG": "false",
           "DJANGO_SECRET_KEY": "bench-" + "k" * 40, "DJANGO_SECURE_SSL": "false", "ANALYTICS_LOG_LEVEL": "WARNING",
           "ANALYTICS_REQUEST_TRACKING": "true", "API_THROTTLE_RATE": THROTTLE_RATE,
           "DATABASE_URL": database_url or "", "ANALYTICS_DB_URL": ""}
    if sqlite_path:
        env["ANALYTICS_DB_PATH"] = sqlite_path
    server = start_web_server(env, base, cwd=ROOT, workers=workers)
    try:
        yield server.url
    finally:
        server.stop()


class Client:
    """One keep-alive connection (gunicorn's threaded workers keep it open), as an HTTP client library's
    session would use."""

    def __init__(self, base_url: str, token: str):
        host, port = base_url.removeprefix("http://").split(":")
        self.connection = http.client.HTTPConnection(host, int(port), timeout=120)
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    def request(self, method: str, path: str, body: bytes | None = None, expect: int = 200) -> bytes:
        self.connection.request(method, path, body=body, headers=self.headers)
        response = self.connection.getresponse()
        content = response.read()
        if response.status != expect:
            raise AssertionError(f"{method} {path}: {response.status} {content[:300]!r}")
        return content

    def get_json(self, path: str, **params) -> dict:
        return json.loads(self.request("GET", f"{path}?{urlencode(params, doseq=True)}" if params else path))

    def close(self) -> None:
        self.connection.close()


def percentile(timings: list[float], q: float) -> float:
    ordered = sorted(timings)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def timed_get(client: Client, path: str, repeats: int, **params) -> tuple[float, dict]:
    """Median milliseconds of ``repeats`` GETs after one warm-up, and the last answer."""
    answer = client.get_json(path, **params)
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        answer = client.get_json(path, **params)
        timings.append((time.perf_counter() - started) * 1000)
    return statistics.median(timings), answer


def single_events(client: Client, requests: int, prefix: str) -> dict:
    """``requests`` POSTs of one event each to metrics/record, one after another (after 100 warm-ups)."""

    def body(index: int) -> bytes:
        return json.dumps({"metric_name": "bench.single", "value": 12.5 + index % 7, "metric_type": "timer",
                           "unit": "ms", "tags": {"endpoint": "/api/items", "method": "GET"},
                           "event_id": f"{prefix}-{index}"}).encode()

    for index in range(100):
        client.request("POST", "/api/v1/analytics/metrics/record", body(-1 - index), expect=201)
    timings = []
    for index in range(requests):
        payload = body(index)
        started = time.perf_counter()
        client.request("POST", "/api/v1/analytics/metrics/record", payload, expect=201)
        timings.append((time.perf_counter() - started) * 1000)
    return {"requests": requests, "p50_ms": percentile(timings, 0.5), "p99_ms": percentile(timings, 0.99)}


def batch_ingest(base_url: str, token: str, *, clients: int, batches: int, batch: int, prefix: str) -> dict:
    """``clients`` concurrent connections each POSTing ``batches`` batches of ``batch`` events (distinct event
    ids) to metrics/batch; the bodies are encoded before the clock starts."""
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())

    def body(c: int, b: int) -> bytes:
        return json.dumps([{"metric_name": "bench.ingest", "value": float((b * batch + i) % 997),
                            "metric_type": "timer", "unit": "ms", "tags": {"endpoint": f"/e{i % 5}", "method": "GET"},
                            "timestamp": now, "event_id": f"{prefix}-{c}-{b}-{i}"} for i in range(batch)]).encode()

    bodies = [[body(c, b) for b in range(batches)] for c in range(clients)]
    errors: list[BaseException] = []

    def send(own: list[bytes]) -> None:
        client = Client(base_url, token)
        try:
            for payload in own:
                client.request("POST", "/api/v1/analytics/metrics/batch", payload, expect=201)
        except BaseException as error:  # reported by the caller
            errors.append(error)
        finally:
            client.close()

    threads = [threading.Thread(target=send, args=(own,)) for own in bodies]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started
    if errors:
        raise errors[0]
    events = clients * batches * batch
    return {"events": events, "seconds": seconds, "events_per_s": events / seconds, "clients": clients,
            "batch": batch}


def overhead_on_sqlite(requests: int) -> dict:
    """``GET analytics/me`` (authentication and nothing else), ``/healthz`` and single events on SQLite."""
    from bench.setup import setup_django

    data_dir = tempfile.mkdtemp(prefix="tw-bench-http-")
    database = str(Path(data_dir) / "bench.db")
    setup_django(data_dir, None)
    from analytics.models import ApiToken, Organization

    _, token = ApiToken.issue(Organization.objects.create(slug="bench", name="Bench"), name="bench")
    with platform_server(None, sqlite_path=database) as url:
        client = Client(url, token)
        me = [timed_request(client, "/api/v1/analytics/me") for _ in range(requests)]
        healthz = [timed_request(client, "/healthz") for _ in range(requests)]
        single = single_events(client, requests, "sqlite")
        client.close()
    return {"me_p50_ms": percentile(me, 0.5), "me_p99_ms": percentile(me, 0.99),
            "healthz_p50_ms": percentile(healthz, 0.5), "single": single, "requests": requests}


def timed_request(client: Client, path: str) -> float:
    started = time.perf_counter()
    client.request("GET", path)
    return (time.perf_counter() - started) * 1000


def overhead_section(results: dict) -> str:
    from bench.metrics import machine

    single = results["single"]
    met = "met" if single["p99_ms"] <= 10 else "**not met**"
    return "\n".join([
        "## Request overhead on SQLite",
        "",
        f"`python -m bench.http` (part of `make bench`) on {time.strftime('%Y-%m-%d')}: {machine()}. The platform "
        f"under gunicorn ({WORKERS} workers × 2 threads) on SQLite as `make run` uses it, request tracking on, one "
        f"client on a keep-alive connection, {results['requests']:,} requests each (after warm-ups).",
        "",
        "| request | p50 | p99 | target |",
        "|---|---|---|---|",
        f"| `GET /healthz` (no authentication, no database) | {results['healthz_p50_ms']:.2f} ms | — | — |",
        f"| `GET analytics/me` (token authentication and nothing else) | {results['me_p50_ms']:.2f} ms | "
        f"{results['me_p99_ms']:.2f} ms | — |",
        f"| `POST metrics/record`, one event | {single['p50_ms']:.2f} ms | {single['p99_ms']:.2f} ms | "
        f"p99 ≤ 10 ms: {met} |",
        "",
    ])


def main(argv=None) -> int:
    import argparse

    from bench.report import replace_section

    parser = argparse.ArgumentParser(description="Request overhead through HTTP on SQLite.")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--no-write", action="store_true", help="Print the section, leave docs/ alone.")
    args = parser.parse_args(argv)
    section = overhead_section(overhead_on_sqlite(args.requests))
    print(section)
    if not args.no_write:
        print(f"written to {replace_section('## Request overhead on SQLite', section)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
