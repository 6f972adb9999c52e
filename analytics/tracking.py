"""Built-in tracking: API requests, contract executions and orchestrations as metric events.

Requests are buffered in memory and written in bulk by a background thread every
ANALYTICS_TRACKING_FLUSH_EVENTS events or ANALYTICS_TRACKING_FLUSH_SECONDS seconds,
whichever comes first, and at process exit: the request path never writes to the
database. A failed flush is logged and never reaches a request.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from collections import defaultdict

from django.conf import settings
from django.db import close_old_connections, connections
from django.utils import timezone

from analytics.models import MetricType, Organization
from analytics.platform.scope import PLATFORM, ScopeLike
from analytics.services.metrics_ingest import MetricItem, ingest_metric_items, record_metric
from analytics.services.performance import RESPONSE_TIME_METRIC

logger = logging.getLogger(__name__)

MAX_BUFFERED = 100_000  # past this, a stuck database costs events rather than memory


class MetricBuffer:
    """Events waiting to be written, per org id (None: the platform scope)."""

    def __init__(self):
        self._lock = threading.Lock()
        # Held for a whole flush: a flush returns only when everything added before it is written, also
        # when the background thread was writing it at that moment.
        self._flushing = threading.Lock()
        self._pending: list[tuple[int | None, MetricItem]] = []
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid = None
        self.dropped = 0

    def add(self, org_id: int | None, item: MetricItem) -> None:
        with self._lock:
            if len(self._pending) >= MAX_BUFFERED:
                self.dropped += 1
                return
            self._pending.append((org_id, item))
            full = len(self._pending) >= settings.ANALYTICS_TRACKING_FLUSH_EVENTS
        self._ensure_thread()
        if full:
            self._wake.set()

    def _ensure_thread(self) -> None:
        # After a fork (gunicorn workers) the parent's thread is gone: start one per process.
        if self._thread is None or self._pid != os.getpid() or not self._thread.is_alive():
            with self._lock:
                if self._thread is None or self._pid != os.getpid() or not self._thread.is_alive():
                    self._pid = os.getpid()
                    self._thread = threading.Thread(target=self._run, name="metric-buffer", daemon=True)
                    self._thread.start()

    def _run(self) -> None:
        while True:
            self._wake.wait(settings.ANALYTICS_TRACKING_FLUSH_SECONDS)
            self._wake.clear()
            self.flush()

    def flush(self) -> int:
        with self._flushing:
            return self._write_pending()

    def _write_pending(self) -> int:
        with self._lock:
            pending, self._pending = self._pending, []
        if not pending:
            return 0
        by_org: dict[int | None, list[MetricItem]] = defaultdict(list)
        for org_id, item in pending:
            by_org[org_id].append(item)
        written = 0
        try:
            close_old_connections()
            for org_id, items in by_org.items():
                org = PLATFORM if org_id is None else Organization.objects.filter(pk=org_id).first()
                if org is None:
                    continue  # the org was deleted meanwhile
                written += ingest_metric_items(org, items).accepted
        except Exception:
            logger.exception("request tracking: could not write %d buffered events", len(pending))
        finally:
            if threading.current_thread() is not threading.main_thread():
                connections.close_all()
        return written


buffer = MetricBuffer()
atexit.register(buffer.flush)


class RequestTrackingMiddleware:
    """Records every API request as ``api.response_time`` (timer, ms; tags endpoint, method, status)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not settings.ANALYTICS_REQUEST_TRACKING or not request.path.startswith("/api/"):
            return self.get_response(request)
        started = time.perf_counter()
        response = self.get_response(request)
        elapsed_ms = (time.perf_counter() - started) * 1000
        try:
            match = getattr(request, "resolver_match", None)
            endpoint = (match.view_name if match else None) or "unmatched"
            buffer.add(
                _org_id_of(request),
                MetricItem(
                    metric_name=RESPONSE_TIME_METRIC, value=elapsed_ms, metric_type=MetricType.TIMER, unit="ms",
                    tags={"endpoint": endpoint, "method": request.method, "status": str(response.status_code)},
                    timestamp=timezone.now(),
                ),
            )
        except Exception:
            logger.exception("request tracking failed")
        return response


def _org_id_of(request) -> int | None:
    # DRF authenticates inside the view; it leaves the token on the Django request as `auth`.
    token = getattr(request, "analytics_token", None)
    return token.org_id if token is not None else None


def track_contract_execution(agent_id: str, execution_time_ms: float, success: bool, *,
                             org: ScopeLike = PLATFORM, contract_id: str | None = None) -> None:
    """Seed 003's contract execution metric: ``contract.execution_time`` (timer, ms)."""
    tags = {"agent_id": str(agent_id), "success": "true" if success else "false"}
    record_metric("contract.execution_time", execution_time_ms, org=org, metric_type="timer", unit="ms",
                  tags=tags, event_id=contract_id)


def track_orchestration(pattern: str, agent_count: int, total_time_ms: float, *, success: bool = True,
                        org: ScopeLike = PLATFORM, orchestration_id: str | None = None) -> None:
    """Seed 003's orchestration metric: ``orchestration.duration`` (timer, ms), tagged by pattern and size."""
    tags = {"pattern": pattern, "agent_count": str(agent_count), "success": "true" if success else "false"}
    record_metric("orchestration.duration", total_time_ms, org=org, metric_type="timer", unit="ms",
                  tags=tags, event_id=orchestration_id)
