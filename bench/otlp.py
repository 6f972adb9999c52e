"""OTLP intake: tool-execution spans per second through ``POST /otlp/v1/traces``, beside the JSON batch API.

``python -m bench.otlp`` (SQLite) or ``python -m bench.otlp --postgres``: requests of 10,000 ``execute_tool``
spans (protobuf, as the SDKs send them) against ``POST skills/executions`` with the same 10,000 executions as
JSON; each through Django's test client, the median of the rounds. Writes its row to docs/benchmarks.md.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.setup import bench_arguments, bench_database, database_section, publish  # noqa: E402

HEADING = "## OTLP intake"
SKILLS = [f"tool_{index}" for index in range(20)]


def trace_request(spans: int, round_index: int, now: datetime):
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
    from opentelemetry.proto.trace.v1.trace_pb2 import Status

    request = ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    resource_spans.resource.attributes.append(KeyValue(key="service.version", value=AnyValue(string_value="1.0")))
    scope = resource_spans.scope_spans.add()
    end = int(now.timestamp() * 1e9)
    for index in range(spans):
        skill = SKILLS[index % len(SKILLS)]
        span = scope.spans.add(
            trace_id=(round_index * spans + index + 1).to_bytes(16, "big"), span_id=(index + 1).to_bytes(8, "big"),
            name=f"execute_tool {skill}", start_time_unix_nano=end - (5 + index % 200) * 1_000_000,
            end_time_unix_nano=end)
        span.attributes.extend([KeyValue(key="gen_ai.operation.name", value=AnyValue(string_value="execute_tool")),
                                KeyValue(key="gen_ai.tool.name", value=AnyValue(string_value=skill)),
                                KeyValue(key="user.id", value=AnyValue(string_value=f"user_{index % 50}"))])
        if index % 10 == 0:
            span.status.code = Status.STATUS_CODE_ERROR
    return request.SerializeToString()


def json_batch(items: int, round_index: int, now: datetime) -> str:
    return json.dumps([
        {"skill_id": SKILLS[index % len(SKILLS)], "success": index % 10 != 0, "latency_ms": 5 + index % 200,
         "user_id": f"user_{index % 50}", "timestamp": now.isoformat(), "skill_version": "1.0",
         "event_id": f"json-{round_index}-{index}"}
        for index in range(items)
    ])


def measure(spans: int, rounds: int) -> dict:
    from django.test import Client

    from analytics.models import ApiToken, Organization, SkillExecution

    org = Organization.objects.create(slug="bench-otlp", name="Bench OTLP")
    _, raw = ApiToken.issue(org, name="bench")
    client = Client(HTTP_AUTHORIZATION=f"Bearer {raw}", HTTP_HOST="localhost")
    now = datetime.now(UTC) - timedelta(minutes=1)
    otlp, api = [], []
    for round_index in range(rounds):
        body = trace_request(spans, round_index, now)
        started = time.perf_counter()
        response = client.post("/otlp/v1/traces", body, content_type="application/x-protobuf")
        otlp.append(time.perf_counter() - started)
        assert response.status_code == 200, response.content[:300]
        body = json_batch(spans, round_index, now)
        started = time.perf_counter()
        response = client.post("/api/v1/analytics/skills/executions", body, content_type="application/json")
        api.append(time.perf_counter() - started)
        assert response.status_code == 201, response.content[:300]
    stored = SkillExecution.objects.filter(org=org).count()
    assert stored == 2 * spans * rounds, stored
    return {"spans": spans, "rounds": rounds, "otlp_per_s": spans / statistics.median(otlp),
            "api_per_s": spans / statistics.median(api)}


def report_row(database: str, result: dict) -> str:
    ratio = result["otlp_per_s"] / result["api_per_s"]
    return (f"| {database} | {result['spans']:,} × {result['rounds']} | **{result['otlp_per_s']:,.0f} spans/s** | "
            f"{result['api_per_s']:,.0f} items/s | {ratio:.2f}× |")


def section(rows: dict[str, str]) -> str:
    return database_section(HEADING, [
        "`python -m bench.otlp` (SQLite) and `python -m bench.otlp --postgres`: requests of `execute_tool` spans",
        "(protobuf, as the OpenTelemetry SDKs send them) through `POST /otlp/v1/traces`, beside the same",
        "executions as JSON through `POST skills/executions`; both store skill executions and their metric",
        "events. Median of the rounds, in-process (Django's test client).",
    ], ["database", "spans per request × rounds", "OTLP traces", "JSON batch API", "OTLP / JSON"], rows)


def main(argv=None) -> int:
    parser = bench_arguments(__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    os.environ.setdefault("ANALYTICS_DB_RETENTION_DAYS", "90")
    with bench_database(args.postgres, "tw-bench-otlp-") as database:
        result = measure(args.spans, args.rounds)
    row = report_row(database, result)
    publish(HEADING, section, database, row, write=not args.no_write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
