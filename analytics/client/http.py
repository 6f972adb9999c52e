"""The ``http`` backend: the client sends to a platform's API over HTTP (``ANALYTICS_API_URL``, with the org's
token ``ANALYTICS_API_TOKEN``), from a bounded buffer, retrying with backoff (docs/client.md, "http").

A write is validated, given an ``event_id`` (a UUID) and put in the buffer; it returns at once. A sender thread
posts what the buffer holds, a batch per kind (``skills/executions``, ``skills/ratings``, ``skills/installs``),
oldest first. A batch that gets no answer, a 5xx (a 503 while the platform's database is down), or a 429 stays
at the head of the buffer and is sent again after a backoff: exponential with jitter from ``BACKOFF_START`` to
``BACKOFF_MAX`` seconds, or the ``Retry-After`` the platform asked for. Since every item keeps its
``event_id``, the platform stores a batch that is sent twice (its first answer was lost) once. Any other 4xx
means the batch itself is wrong: it is dropped, with one ERROR log line naming the status and the field.

The buffer holds ``ANALYTICS_BUFFER_SIZE`` items (default 10,000). When it is full, a write raises
``BufferFull`` naming the size and the platform's last answer: the caller decides (wait, drop, spill to disk);
nothing is dropped silently. The org is the token's: ``org_id`` arguments are not sent.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import deque
from dataclasses import asdict

from django.conf import settings

from analytics.client.base import AnalyticsClient
from analytics.client.config import MASK
from analytics.services import skills

logger = logging.getLogger(__name__)

PATHS = {"execution": "skills/executions", "rating": "skills/ratings", "install": "skills/installs"}
BATCH_SIZE = 1000
BACKOFF_START, BACKOFF_MAX = 0.5, 30.0
REQUEST_TIMEOUT = 30.0
RETRIED_STATUSES = {429} | set(range(500, 600))


class BufferFull(RuntimeError):
    """The client's buffer holds ANALYTICS_BUFFER_SIZE items the platform has not taken yet."""


class HttpBackend(AnalyticsClient):
    name = "http"

    def __init__(self, url: str | None = None, token: str | None = None, buffer_size: int | None = None):
        self.url = (url or settings.ANALYTICS_API_URL).rstrip("/") + "/"
        self.token = token if token is not None else settings.ANALYTICS_API_TOKEN
        if not self.url.startswith(("http://", "https://")):
            raise ValueError("ANALYTICS_API_URL: must be the platform's API URL, e.g. "
                             "http://localhost:8000/api/v1/analytics/")
        self.buffer_size = buffer_size or settings.ANALYTICS_BUFFER_SIZE
        self._buffer: deque[tuple[str, dict]] = deque()
        self._lock = threading.Condition()
        self._closed = False
        self._sending = False
        self.last_problem = ""  # the platform's last refusal or silence, for BufferFull and health_check
        self.dropped = 0  # items of batches the platform refused as invalid
        self._sender = threading.Thread(target=self._send_forever, name="analytics-http-sender", daemon=True)
        self._sender.start()

    # --- Writes ---------------------------------------------------------------------------------

    def _record_execution(self, org_slug, item: skills.ExecutionItem) -> None:
        self._enqueue("execution", item)

    def _record_rating(self, org_slug, item: skills.RatingItem) -> None:
        self._enqueue("rating", item)

    def _record_install(self, org_slug, item: skills.InstallItem) -> None:
        self._enqueue("install", item)

    def _record_health_score(self, org_slug, skill_id, score) -> None:
        raise self._unsupported("update_health_score")

    def _enqueue(self, kind: str, item) -> None:
        body = {key: value for key, value in asdict(item).items() if value not in (None, "") and key != "org_id"}
        body["timestamp"] = item.timestamp.isoformat()
        body["event_id"] = item.event_id or str(uuid.uuid4())
        with self._lock:
            if self._closed:
                raise RuntimeError("The http analytics client is closed.")
            if len(self._buffer) >= self.buffer_size:
                problem = f" (the platform's last answer: {self.last_problem})" if self.last_problem else ""
                raise BufferFull(f"The analytics buffer is full: {self.buffer_size} items are waiting for "
                                 f"{self.url}{problem}. Raise ANALYTICS_BUFFER_SIZE or retry later.")
            self._buffer.append((kind, body))
            self._lock.notify_all()

    # --- Sending ----------------------------------------------------------------------------------

    def _next_batch(self) -> tuple[str, list[dict]]:
        """The oldest items of one kind (they stay in the buffer until the platform took them)."""
        kind = self._buffer[0][0]
        batch: list[dict] = []
        for item_kind, body in self._buffer:
            if item_kind != kind or len(batch) == BATCH_SIZE:
                break
            batch.append(body)
        return kind, batch

    def _send_forever(self) -> None:
        backoff = BACKOFF_START
        while True:
            with self._lock:
                while not self._buffer and not self._closed:
                    self._lock.wait()
                if not self._buffer:
                    return
                kind, batch = self._next_batch()
                self._sending = True
            delay = self._post(kind, batch)
            with self._lock:
                self._sending = False
                if delay is None:  # taken, or refused for good: off the buffer either way
                    for _ in batch:
                        self._buffer.popleft()
                    backoff = BACKOFF_START
                self._lock.notify_all()
            if delay is not None:
                time.sleep(min(BACKOFF_MAX, delay if delay > 0 else backoff * random.uniform(0.5, 1.5)))
                backoff = min(BACKOFF_MAX, backoff * 2)

    def _post(self, kind: str, batch: list[dict]) -> float | None:
        """None when the batch is done with; else the seconds to wait (0: the client's own backoff)."""
        request = urllib.request.Request(
            self.url + PATHS[kind], data=json.dumps(batch).encode(), method="POST",
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {self.token}"})
        try:
            with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT) as response:
                response.read()
            self.last_problem = ""
            return None
        except urllib.error.HTTPError as error:
            detail = error.read()[:300].decode(errors="replace")
            error.close()
            if error.code in RETRIED_STATUSES:
                self.last_problem = f"HTTP {error.code}"
                retry_after = error.headers.get("Retry-After", "")
                return float(retry_after) if retry_after.isdigit() else 0
            self.dropped += len(batch)
            self.last_problem = f"HTTP {error.code}"
            logger.error("analytics http client: %s of %d %s(s) refused with HTTP %d, dropped: %s",
                         PATHS[kind], len(batch), kind, error.code, detail)
            return None
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            self.last_problem = f"no answer ({type(reason).__name__})"
            return 0

    # --- Operations -------------------------------------------------------------------------------

    def pending(self) -> int:
        with self._lock:
            return len(self._buffer)

    def push(self, timeout: float = 60.0) -> bool:
        """Wait until the platform took every buffered item; False when ``timeout`` passed first."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._buffer or self._sending:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._lock.wait(left)
        return True

    def close(self, timeout: float = 10.0) -> None:
        self.push(timeout)
        with self._lock:
            self._closed = True
            self._lock.notify_all()

    def health_check(self) -> dict:
        pending = self.pending()
        healthy = not self.last_problem
        detail = f"{pending} item(s) buffered" + (f"; last answer: {self.last_problem}" if self.last_problem else "")
        return {"backend": self.name, "healthy": healthy, "detail": detail}

    def get_config_summary(self) -> dict:
        summary = super().get_config_summary()
        summary.update(api_url=self.url, api_token=MASK if self.token else None, buffer_size=self.buffer_size)
        return summary
