"""Real receivers on loopback for the notification tests: an HTTP endpoint and an SMTP server.

``start_http_receiver(statuses=[500, 500, 500, 200])`` answers each request with the next scripted reply (an
int status or a :class:`Reply` with headers, body and a delay), then with ``default``; it records every
request. ``start_smtp_receiver()`` is aiosmtpd on a free port, recording every message it accepts, optionally
refusing recipients or data with a scripted SMTP reply. Both are stopped with ``.stop()``.
"""

from __future__ import annotations

import email
import email.policy
import json
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.servers import free_port


@dataclass(frozen=True)
class Reply:
    """One scripted answer: a status, optional headers and body, after an optional delay in seconds."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b"ok"
    delay: float = 0.0


@dataclass
class ReceivedRequest:
    method: str
    path: str
    headers: dict[str, str]  # names in lower case
    body: bytes
    status: int  # what the receiver answered (or was about to, for a delayed reply)

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class HttpReceiver:
    server: ThreadingHTTPServer
    script: list[Reply]
    default: Reply
    requests: list[ReceivedRequest] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    stopping: threading.Event = field(default_factory=threading.Event)

    @property
    def base_url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def url(self) -> str:
        return self.base_url + "/hook"

    def next_reply(self) -> Reply:
        with self.lock:
            return self.script.pop(0) if self.script else self.default

    def wait_for(self, count: int, timeout: float = 5.0) -> list[ReceivedRequest]:
        deadline = time.monotonic() + timeout
        while len(self.requests) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        return list(self.requests)

    def deliveries_by(self, key: str = "notification_id") -> dict[Any, int]:
        """How many requests carried each value of a JSON body's ``key``: a receiver that deduplicates on that
        idempotency key acts once per entry, however many times it was sent."""
        with self.lock:
            keys = [request.json().get(key) for request in self.requests]
        return {value: keys.count(value) for value in dict.fromkeys(keys)}

    def stop(self) -> None:
        self.stopping.set()  # wakes delayed replies
        self.server.shutdown()
        self.server.server_close()


def _reply(value: int | Reply) -> Reply:
    return value if isinstance(value, Reply) else Reply(status=value)


def start_http_receiver(statuses: Iterable[int | Reply] = (), default: int | Reply = 200) -> HttpReceiver:
    """An HTTP server on a loopback port, in a thread, answering ``statuses`` in order, then ``default``."""
    receiver: HttpReceiver | None = None

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def handle_any(self) -> None:
            assert receiver is not None
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            reply = receiver.next_reply()
            with receiver.lock:
                receiver.requests.append(ReceivedRequest(
                    self.command, self.path, {key.lower(): value for key, value in self.headers.items()}, body,
                    reply.status))
            if reply.delay and receiver.stopping.wait(reply.delay):
                return
            try:
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)
            except OSError:  # the client gave up (a timeout test)
                pass

        do_POST = do_GET = do_PUT = handle_any

        def log_message(self, format, *args):  # noqa: A002 - quiet test output
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    receiver = HttpReceiver(server, [_reply(status) for status in statuses], _reply(default))
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="http-receiver",
                     daemon=True).start()
    return receiver


# --- SMTP --------------------------------------------------------------------------------------------


@dataclass
class ReceivedMail:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage

    @property
    def subject(self) -> str:
        return str(self.message["Subject"])

    def text(self) -> str:
        part = self.message.get_body(preferencelist=("plain",))
        return part.get_content() if part is not None else ""

    def html(self) -> str:
        part = self.message.get_body(preferencelist=("html",))
        return part.get_content() if part is not None else ""


@dataclass
class SmtpReceiver:
    controller: Any
    host: str
    port: int
    messages: list[ReceivedMail] = field(default_factory=list)

    def stop(self) -> None:
        self.controller.stop()


def start_smtp_receiver(refuse_rcpt: str | None = None, refuse_data: str | None = None) -> SmtpReceiver:
    """aiosmtpd on a loopback port. ``refuse_rcpt``/``refuse_data``: an SMTP reply such as
    ``"550 5.1.1 no such user"`` given to every RCPT TO / DATA instead of accepting it."""
    from aiosmtpd.controller import Controller

    host, port = "127.0.0.1", free_port()
    receiver: SmtpReceiver | None = None

    class Handler:
        async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
            if refuse_rcpt:
                return refuse_rcpt
            envelope.rcpt_tos.append(address)
            return "250 OK"

        async def handle_DATA(self, server, session, envelope):  # noqa: N802
            if refuse_data:
                return refuse_data
            assert receiver is not None
            parsed = email.message_from_bytes(envelope.original_content or envelope.content,
                                              policy=email.policy.default)
            receiver.messages.append(ReceivedMail(envelope.mail_from, list(envelope.rcpt_tos), parsed))
            return "250 Message accepted for delivery"

    controller = Controller(Handler(), hostname=host, port=port)
    receiver = SmtpReceiver(controller, host, port)
    controller.start()
    return receiver
