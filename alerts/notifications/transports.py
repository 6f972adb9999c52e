"""How a notification is sent: one small transport per channel kind (email, Slack, webhook).

Each transport turns a :class:`NotificationMessage` into its channel's format and sends it, or raises
:class:`DeliveryError` — ``permanent`` when retrying cannot help (HTTP 4xx other than 429, an SMTP 5xx refusal,
a bad configuration), temporary otherwise (timeouts, connection errors, HTTP 429 and 5xx, SMTP 4xx). Error
messages never carry a channel's secrets: a Slack webhook URL is a secret and is called "Slack webhook"; a
webhook is shown by its scheme and host only; the HMAC secret is never shown. See docs/notifications.md.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import smtplib
import time
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar
from urllib.parse import urlsplit

import requests
from django.conf import settings
from django.core.mail import BadHeaderError, EmailMultiAlternatives, get_connection
from django.utils.html import escape

from alerts.notifications.messages import DeliveryError, NotificationMessage
from alerts.notifications.url_safety import UnsafeUrl, check_destination

USER_AGENT = "ToolWeaver-Analytics"
WEBHOOK_BODY_VERSION = 1
SIGNATURE_HEADER = "X-ToolWeaver-Signature"
TIMESTAMP_HEADER = "X-ToolWeaver-Timestamp"

KIND_EMOJI = {"firing": "\N{FIRE}", "repeat": "\N{FIRE}", "resolved": "\N{WHITE HEAVY CHECK MARK}",
              "test": "\N{BELL}"}
KIND_WORDS = {"firing": "Firing", "repeat": "Still firing", "resolved": "Resolved", "test": "Test notification"}


class Transport:
    """Sends one message to one channel; raises :class:`DeliveryError` when it cannot."""

    kind: ClassVar[str] = ""

    def send(self, config: dict, secret: str, message: NotificationMessage, *, timeout: float) -> None:
        raise NotImplementedError


# --- Shared helpers ----------------------------------------------------------------------------------


def _number(value: float | None) -> float | None:
    """JSON has no NaN or infinity: those become null."""
    if value is None or not math.isfinite(value):
        return None
    return float(value)


def _figure(value: float | None) -> str:
    return "no data" if value is None else f"{value:g}"


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _labels(message: NotificationMessage) -> str:
    return ", ".join(f"{key}={value}" for key, value in sorted(message.group.items()))


def _config_url(config: Any, what: str) -> str:
    url = config.get("url") if isinstance(config, dict) else None
    if not isinstance(url, str) or urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).hostname:
        raise DeliveryError(f'{what}: the channel needs {{"url": "https://..."}}', permanent=True)
    return url


def origin(url: str) -> str:
    """``scheme://host[:port]`` of a URL: what an error message may show of a webhook's address."""
    parts = urlsplit(url)
    host = parts.hostname or "?"
    if ":" in host:  # IPv6
        host = f"[{host}]"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}"


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """A ``Retry-After`` header in seconds: delta-seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(when.timestamp() - (time.time() if now is None else now), 0.0)


def _scrub(text: str, *secrets: str) -> str:
    for secret in sorted(secrets, key=len, reverse=True):
        if len(secret) > 3:  # a path of "/" is no secret
            text = text.replace(secret, "***")
    return text


def post_json(url: str, body: bytes, headers: dict[str, str], *, timeout: float, what: str,
              secrets: tuple[str, ...] = ()) -> requests.Response:
    """POST ``body`` and classify the outcome; ``what`` names the receiver in errors (never the full URL).

    A host that is (or resolves to) a non-public address not in ``NOTIFICATION_URL_ALLOWLIST`` is refused
    before any request (url_safety.check_destination): permanent. 2xx: sent. 429 and 5xx: temporary (with the
    ``Retry-After`` it asked for). Any other status — 4xx, and 3xx, since redirects are not followed — is
    permanent. Timeouts, connection errors and a host that does not resolve are temporary.
    """
    hidden = (url, urlsplit(url).path, urlsplit(url).query, *secrets)
    try:
        check_destination(url)
    except UnsafeUrl as unsafe:  # the host and its address may be shown; the path and query, secret, are not
        raise DeliveryError(f"{what}: refused: {unsafe}", permanent=True) from None
    except OSError as failure:  # the host does not resolve (now): DNS may answer later
        raise DeliveryError(f"{what}: the host does not resolve ({type(failure).__name__})") from None
    try:
        response = requests.post(url, data=body, headers={"User-Agent": USER_AGENT, **headers},
                                 timeout=timeout, allow_redirects=False)
    except requests.Timeout:
        raise DeliveryError(f"{what}: no answer within {timeout:g} s") from None
    except requests.ConnectionError as failure:
        # The exception's text carries the URL: only its type is shown.
        raise DeliveryError(f"{what}: connection failed ({type(failure).__name__})") from None
    except requests.RequestException as failure:  # an invalid URL and the like: retrying cannot help
        raise DeliveryError(f"{what}: request failed ({type(failure).__name__})", permanent=True) from None
    status = response.status_code
    if 200 <= status < 300:
        return response
    detail = _scrub(" ".join(response.text[:200].split()), *hidden)
    reason = f"{what} answered HTTP {status}" + (f": {detail}" if detail else "")
    if status == 429 or status >= 500:
        raise DeliveryError(reason, retry_after=parse_retry_after(response.headers.get("Retry-After")))
    if 300 <= status < 400:
        reason += " (redirects are not followed)"
    raise DeliveryError(reason, permanent=True)


# --- Email -------------------------------------------------------------------------------------------


def email_text(message: NotificationMessage) -> str:
    lines = [message.title, "", message.summary, ""]
    lines += [f"Rule: {message.rule_name}", f"Severity: {message.severity}", f"Status: {message.status}",
              f"Condition: {message.condition}", f"Value: {_figure(message.value)}",
              f"Threshold: {message.threshold:g}"]
    if message.group:
        lines.append(f"Group: {_labels(message)}")
    if message.org:
        lines.append(f"Org: {message.org}")
    if message.triggered_at:
        lines.append(f"Triggered at: {message.triggered_at.isoformat()}")
    if message.resolved_at:
        lines.append(f"Resolved at: {message.resolved_at.isoformat()}")
    if message.incident_url:
        lines += ["", f"Incident: {message.incident_url}"]
    lines += ["", "--", "ToolWeaver Analytics" + (f" (notification {message.notification_id})"
                                                   if message.notification_id else "")]
    return "\n".join(lines) + "\n"


def email_html(message: NotificationMessage) -> str:
    rows = [("Severity", message.severity), ("Status", message.status), ("Condition", message.condition),
            ("Value", _figure(message.value)), ("Threshold", f"{message.threshold:g}")]
    if message.group:
        rows.append(("Group", _labels(message)))
    if message.org:
        rows.append(("Org", message.org))
    if message.triggered_at:
        rows.append(("Triggered at", message.triggered_at.isoformat()))
    if message.resolved_at:
        rows.append(("Resolved at", message.resolved_at.isoformat()))
    colour = "#1a7f37" if message.kind == "resolved" else "#cf222e"
    table = "".join(f'<tr><th align="left" style="padding:2px 12px 2px 0">{escape(name)}</th>'
                    f"<td>{escape(value)}</td></tr>" for name, value in rows)
    link = (f'<p><a href="{escape(message.incident_url)}">Open the incident</a></p>'
            if message.incident_url else "")
    return (f'<html><body style="font-family:sans-serif">'
            f'<h2 style="color:{colour}">{escape(message.title)}</h2>'
            f"<p>{escape(message.summary)}</p><table>{table}</table>{link}"
            f'<p style="color:#57606a;font-size:small">ToolWeaver Analytics</p></body></html>')


def _smtp_code(code: int, text: bytes | str) -> str:
    said = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
    return f"{code} {' '.join(said.split())}".strip()


class EmailTransport(Transport):
    """Django's mail backend (SMTP in production): config ``{"to": ["ops@example.com", ...]}``."""

    kind = "email"

    def send(self, config: dict, secret: str, message: NotificationMessage, *, timeout: float) -> None:
        recipients = config.get("to") if isinstance(config, dict) else None
        if isinstance(recipients, str):
            recipients = [recipients]
        if not recipients or not all(isinstance(address, str) and address for address in recipients):
            raise DeliveryError('email: the channel needs {"to": ["address", ...]}', permanent=True)
        subject = " ".join(message.title.split())  # a header: no line breaks
        try:
            connection = get_connection(timeout=timeout)
            email = EmailMultiAlternatives(subject, email_text(message), settings.DEFAULT_FROM_EMAIL,
                                           list(recipients), connection=connection,
                                           headers={"Auto-Submitted": "auto-generated"})
            email.attach_alternative(email_html(message), "text/html")
            email.send()
        except smtplib.SMTPRecipientsRefused as refused:
            codes = [code for code, _ in refused.recipients.values()]
            said = "; ".join(f"{address}: {_smtp_code(code, text)}"
                             for address, (code, text) in refused.recipients.items())
            raise DeliveryError(f"email: recipients refused ({said})",
                                permanent=bool(codes) and all(500 <= code < 600 for code in codes)) from None
        except (smtplib.SMTPSenderRefused, smtplib.SMTPDataError) as refusal:
            what = "sender refused" if isinstance(refusal, smtplib.SMTPSenderRefused) else "message refused"
            raise DeliveryError(f"email: {what} ({_smtp_code(refusal.smtp_code, refusal.smtp_error)})",
                                permanent=500 <= refusal.smtp_code < 600) from None
        except smtplib.SMTPResponseException as failure:  # e.g. authentication: the settings may be fixed
            raise DeliveryError(f"email: SMTP error ({_smtp_code(failure.smtp_code, failure.smtp_error)})") from None
        except (smtplib.SMTPException, OSError) as failure:  # disconnects, refused connections, timeouts, TLS
            raise DeliveryError(f"email: could not reach the mail server ({type(failure).__name__}: "
                                f"{' '.join(str(failure).split())[:200]})") from None
        except (BadHeaderError, ValueError) as failure:  # a malformed address or header
            raise DeliveryError(f"email: {failure}", permanent=True) from None


# --- Slack -------------------------------------------------------------------------------------------


def _mrkdwn(text: str) -> str:
    """Slack's escaping of text in mrkdwn: only &, < and >."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _absolute(url: str) -> bool:
    return urlsplit(url).scheme in ("http", "https") and bool(urlsplit(url).hostname)


def slack_payload(message: NotificationMessage) -> dict[str, Any]:
    """The incoming webhook's JSON: ``text`` (the fallback of notifications) and Block Kit ``blocks``."""
    emoji = KIND_EMOJI.get(message.kind, "")
    words = KIND_WORDS.get(message.kind, message.kind)
    text = f"{emoji} {_mrkdwn(message.title)}\n{_mrkdwn(message.summary)}"
    if _absolute(message.incident_url):
        text += f"\n<{message.incident_url}|Open the incident>"
    fields = [("Severity", message.severity), ("Status", message.status), ("Value", _figure(message.value)),
              ("Threshold", f"{message.threshold:g}"), ("Condition", message.condition)]
    fields += [(key, value) for key, value in sorted(message.group.items())]
    field_blocks = [{"type": "mrkdwn", "text": f"*{_mrkdwn(name)}*\n{_mrkdwn(str(value))[:1900]}"}
                    for name, value in fields]
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": f"{emoji} {message.title}"[:150], "emoji": True}},
        {"type": "section", "text": {"type": "mrkdwn", "text": f"*{words}*: {_mrkdwn(message.summary)}"}},
    ]
    # Slack allows at most 10 fields in one section.
    blocks += [{"type": "section", "fields": field_blocks[start:start + 10]}
               for start in range(0, len(field_blocks), 10)]
    context = []
    if message.org:
        context.append(f"org {message.org}")
    if message.triggered_at:
        context.append(f"triggered {message.triggered_at.isoformat()}")
    if message.resolved_at:
        context.append(f"resolved {message.resolved_at.isoformat()}")
    if message.incident_url and not _absolute(message.incident_url):
        context.append(f"incident {message.incident_url} (set SITE_URL for a link)")
    if context:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": _mrkdwn(" · ".join(context))}]})
    if _absolute(message.incident_url):  # a button needs an absolute URL, or Slack refuses the whole message
        blocks.append({"type": "actions", "elements": [{
            "type": "button", "text": {"type": "plain_text", "text": "Open the incident"},
            "url": message.incident_url, **({"style": "danger"} if message.kind in ("firing", "repeat") else {}),
        }]})
    return {"text": text, "blocks": blocks}


class SlackTransport(Transport):
    """A Slack incoming webhook: config ``{"url": "https://hooks.slack.com/services/..."}`` (a secret)."""

    kind = "slack"

    def send(self, config: dict, secret: str, message: NotificationMessage, *, timeout: float) -> None:
        url = _config_url(config, "Slack webhook")
        body = json.dumps(slack_payload(message), ensure_ascii=False).encode("utf-8")
        post_json(url, body, {"Content-Type": "application/json"}, timeout=timeout, what="Slack webhook")


# --- Webhook -----------------------------------------------------------------------------------------


def webhook_body(message: NotificationMessage, sent_at: datetime | None = None) -> dict[str, Any]:
    """The JSON a webhook receives (docs/notifications.md, "Webhook body")."""
    return {
        "version": WEBHOOK_BODY_VERSION,
        "kind": message.kind,
        "title": message.title,
        "summary": message.summary,
        "rule": message.rule_name,
        "severity": message.severity,
        "status": message.status,
        "condition": message.condition,
        "threshold": _number(message.threshold),
        "value": _number(message.value),
        "group": dict(message.group),
        "incident": {"id": message.incident_id, "url": message.incident_url or None,
                     "triggered_at": _iso(message.triggered_at), "resolved_at": _iso(message.resolved_at)},
        "org": message.org or None,
        "notification_id": message.notification_id,
        # The other incidents of the rule told in this one message (fired within the group wait).
        "grouped": [{"incident_id": other.incident_id, "notification_id": other.notification_id,
                     "group": dict(other.group), "value": _number(other.value), "url": other.incident_url or None}
                    for other in message.also],
        "sent_at": (sent_at or datetime.now(UTC)).isoformat(),
    }


def sign(secret: str, timestamp: int | str, body: bytes) -> str:
    """``sha256=<hex>``: HMAC-SHA256, keyed by the channel's secret, of ``b"<timestamp>." + body``."""
    digest = hmac.new(secret.encode("utf-8"), f"{timestamp}.".encode("ascii") + body, hashlib.sha256)
    return f"sha256={digest.hexdigest()}"


class WebhookTransport(Transport):
    """A generic webhook: config ``{"url": "https://..."}``; signed when the channel has a secret."""

    kind = "webhook"

    def send(self, config: dict, secret: str, message: NotificationMessage, *, timeout: float) -> None:
        url = _config_url(config, "webhook")
        what = f"webhook {origin(url)}"
        timestamp = int(time.time())
        sent_at = datetime.fromtimestamp(timestamp, UTC)
        body = json.dumps(webhook_body(message, sent_at), ensure_ascii=False, allow_nan=False).encode("utf-8")
        headers = {"Content-Type": "application/json", TIMESTAMP_HEADER: str(timestamp)}
        if secret:
            headers[SIGNATURE_HEADER] = sign(secret, timestamp, body)
        post_json(url, body, headers, timeout=timeout, what=what, secrets=(secret,))


# --- Registry ----------------------------------------------------------------------------------------

TRANSPORTS: dict[str, Transport] = {t.kind: t for t in (EmailTransport(), SlackTransport(), WebhookTransport())}


def transport_for(kind: str) -> Transport:
    """The transport of a channel kind; an unknown kind is a permanent delivery error."""
    try:
        return TRANSPORTS[kind]
    except KeyError:
        raise DeliveryError(f"no transport for channel kind {kind!r}", permanent=True) from None
