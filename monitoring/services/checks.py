"""One small class per check kind. A check returns when the service answers as expected and raises otherwise.

Checks know nothing of the database tables of this app: the runner times them,
applies the timeout and records the outcome.
"""

from __future__ import annotations

import socket
import ssl
import urllib.error
import urllib.request
from urllib.parse import urlsplit

from django.utils.module_loading import import_string

from monitoring.models import Service

MAX_BODY_BYTES = 1024 * 1024


class CheckFailed(Exception):
    """The service answered, but not as expected."""


class CheckConfigError(ValueError):
    """The service's check settings cannot work."""


class Check:
    kind = ""

    def __init__(self, service):
        self.service = service
        self.target = (service.target or "").strip()
        self.timeout = float(service.timeout_seconds)

    def validate(self) -> None:
        """Raise CheckConfigError when the settings cannot work."""

    def run(self) -> None:
        raise NotImplementedError


class DatabaseCheck(Check):
    kind = Service.CheckKind.DATABASE

    def validate(self):
        from django.db import connections

        if self.alias not in connections:
            raise CheckConfigError(f"No database alias {self.alias!r}.")

    @property
    def alias(self) -> str:
        return self.target or "default"

    def run(self):
        from django.db import connections

        with connections[self.alias].cursor() as cursor:
            cursor.execute("SELECT 1")
            if cursor.fetchone()[0] != 1:
                raise CheckFailed("SELECT 1 did not return 1")


class CacheCheck(Check):
    """A ``redis://`` URL is PINGed; otherwise a Django cache alias is written and read back."""

    kind = Service.CheckKind.CACHE

    def validate(self):
        if self.is_redis_url:
            return
        from django.conf import settings

        if self.alias not in settings.CACHES:
            raise CheckConfigError(f"Give a redis:// URL or a cache alias; there is no cache {self.alias!r}.")

    @property
    def is_redis_url(self) -> bool:
        return self.target.split("://", 1)[0] in {"redis", "rediss", "unix"} and "://" in self.target

    @property
    def alias(self) -> str:
        return self.target or "default"

    def run(self):
        if self.is_redis_url:
            import redis

            client = redis.Redis.from_url(self.target, socket_timeout=self.timeout,
                                          socket_connect_timeout=self.timeout)
            try:
                if not client.ping():
                    raise CheckFailed("PING got no PONG")
            finally:
                client.close()
            return
        from django.core.cache import caches

        cache = caches[self.alias]
        key = f"monitoring:check:{self.service.pk}"
        cache.set(key, "ok", timeout=60)
        if cache.get(key) != "ok":
            raise CheckFailed(f"cache {self.alias!r} did not return the value just written")


def _celery_app(broker_url: str):
    from celery import Celery, current_app

    if broker_url:
        return Celery("monitoring-check", broker=broker_url, set_as_current=False)
    return current_app  # the project's app once Django is set up


class CeleryBrokerCheck(Check):
    kind = Service.CheckKind.CELERY_BROKER

    def run(self):
        app = _celery_app(self.target)
        with app.connection_for_read(connect_timeout=self.timeout) as connection:
            connection.ensure_connection(max_retries=0, timeout=self.timeout)


class CeleryWorkerCheck(Check):
    kind = Service.CheckKind.CELERY_WORKER

    def run(self):
        app = _celery_app(self.target)
        # Leave the runner some of the timeout to notice that nobody answered.
        replies = app.control.ping(timeout=max(0.1, self.timeout * 0.8), limit=1)
        if not replies:
            raise CheckFailed("no Celery worker answered the ping")


class HttpCheck(Check):
    kind = Service.CheckKind.HTTP

    def validate(self):
        parts = urlsplit(self.target)
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            raise CheckConfigError("Give an http:// or https:// URL.")

    def run(self):
        service = self.service
        data = b"" if service.http_method == "POST" else None
        request = urllib.request.Request(self.target, method=service.http_method, data=data,
                                         headers={"User-Agent": "toolweaver-monitoring/1"})
        context = ssl.create_default_context()
        try:
            response = urllib.request.urlopen(request, timeout=self.timeout, context=context)  # noqa: S310
        except urllib.error.HTTPError as error:  # a non-2xx answer is still an answer
            response = error
        except urllib.error.URLError as error:
            raise CheckFailed(f"no answer: {error.reason}") from None
        with response:
            status = response.status if hasattr(response, "status") else response.code
            if status != service.expected_status:
                raise CheckFailed(f"HTTP {status}, expected {service.expected_status}")
            if service.body_keyword:
                body = response.read(MAX_BODY_BYTES).decode(errors="replace")
                if service.body_keyword not in body:
                    raise CheckFailed(f"the body does not contain {service.body_keyword!r}")


class TcpCheck(Check):
    kind = Service.CheckKind.TCP

    def validate(self):
        self.address()

    def address(self) -> tuple[str, int]:
        host, colon, port = self.target.rpartition(":")
        if not colon or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise CheckConfigError("Give host:port.")
        return host.strip("[]"), int(port)

    def run(self):
        try:
            with socket.create_connection(self.address(), timeout=self.timeout):
                pass
        except OSError as error:
            raise CheckFailed(f"cannot connect: {error.strerror or error}") from None


class CustomCheck(Check):
    """Calls the function at the dotted path with the service: it fails by raising or by returning False."""

    kind = Service.CheckKind.CUSTOM

    def validate(self):
        self.function()

    def function(self):
        try:
            return import_string(self.target)
        except ImportError as error:
            raise CheckConfigError(f"Cannot import {self.target!r}: {error}") from None

    def run(self):
        if self.function()(self.service) is False:
            raise CheckFailed("the check function returned False")


CHECKS = {check.kind: check for check in (DatabaseCheck, CacheCheck, CeleryBrokerCheck, CeleryWorkerCheck,
                                          HttpCheck, TcpCheck, CustomCheck)}


def check_for(service) -> Check:
    return CHECKS[service.check_kind](service)
