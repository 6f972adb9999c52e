"""Request rate limits of the API: one budget per API token, per staff user, or per address (docs/security.md).

``API_THROTTLE_RATE`` (``<requests>/<period>``, period ``s``, ``min``, ``h`` or ``day``; default ``6000/min``,
``off`` for none) is each caller's budget. A caller over it gets HTTP 429 ``{"detail": "..."}`` with a
``Retry-After`` header in seconds (DRF's ``Throttled``).

The count is a fixed window: one cache counter per caller and window, created with ``add`` and raised with
``incr``, which are atomic in the cache backends Django ships — unlike DRF's ``SimpleRateThrottle``, which reads,
extends and rewrites a list of every request's time (6,000 floats per ingest token at the default rate). A
fixed window lets a caller send up to twice the budget across the boundary of two windows; a budget, not a
precise meter.

The counters live in Django's ``default`` cache (``CACHE_URL``). The default local-memory cache is per process:
with several gunicorn workers each keeps its own count, so a caller may get the budget once per worker; point
``CACHE_URL`` at Redis for one count across the workers.
"""

from __future__ import annotations

import math
import time

from django.conf import settings
from django.core.cache import cache
from rest_framework.throttling import BaseThrottle

from analytics.platform.auth import TokenPrincipal

PERIOD_SECONDS = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60, "h": 3600, "hour": 3600,
                  "d": 86400, "day": 86400}
DISABLED = "off"


def parse_rate(rate: str) -> tuple[int, int] | None:
    """``"6000/min"`` → ``(6000, 60)``; ``"off"`` → None. Raises ValueError for anything else."""
    if rate.strip().lower() == DISABLED:
        return None
    count, slash, period = rate.strip().partition("/")
    if not slash or not count.isdigit() or int(count) < 1 or period.lower() not in PERIOD_SECONDS:
        raise ValueError(f"{rate!r} is not <requests>/<period> (period s, min, h or day) or {DISABLED!r}")
    return int(count), PERIOD_SECONDS[period.lower()]


def caller_key(request) -> str:
    """Whose budget a request spends: its token's, its (staff) user's, or its client address's.

    A token is named by its hash, which is unique for ever, rather than by its id, which a database may give
    again to a later token.
    """
    user = request.user
    if isinstance(user, TokenPrincipal):
        return f"token:{user.token.key_hash}"
    if user is not None and user.is_authenticated:
        return f"user:{user.pk}"
    return f"address:{BaseThrottle().get_ident(request)}"


class ApiRateThrottle(BaseThrottle):
    """``API_THROTTLE_RATE`` requests per caller and period (see the module's docstring)."""

    def __init__(self) -> None:
        self.retry_after: float | None = None

    def allow_request(self, request, view) -> bool:
        rate = parse_rate(settings.API_THROTTLE_RATE)
        if rate is None:
            return True
        limit, period = rate
        now = time.time()
        window = int(now // period)
        key = f"throttle:{caller_key(request)}:{period}:{window}"
        # Kept a little longer than the window, so that a slow request cannot find its counter gone.
        cache.add(key, 0, timeout=period + 5)
        try:
            count = cache.incr(key)
        except ValueError:  # evicted between add and incr: this request opens the count again
            cache.add(key, 1, timeout=period + 5)
            count = 1
        if count <= limit:
            return True
        self.retry_after = max((window + 1) * period - now, 1.0)
        return False

    def wait(self) -> float | None:
        """Seconds until the next window, rounded up (DRF writes it as ``Retry-After``)."""
        return None if self.retry_after is None else float(math.ceil(self.retry_after))
