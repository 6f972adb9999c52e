"""Slack and webhook URLs: http(s) to public addresses only, unless NOTIFICATION_URL_ALLOWLIST names them
(docs/security.md, "URL safety").

Checked when a channel is saved (the API answers 400 naming ``config``; the admin form shows the error) and
again before each send, after resolving the host; redirects are never followed. The sends go to a real HTTP
receiver on loopback (tests/receivers.py): refused, it receives nothing; allowlisted, it receives the message.
The suite allowlists its loopback receivers (tests/conftest.py); these tests set the allowlist themselves.
"""

from __future__ import annotations

import socket

import pytest
from django.contrib.auth import get_user_model
from django.test import override_settings

from alerts.notifications import outbox
from alerts.notifications.models import Notification, NotificationChannel
from alerts.notifications.url_safety import UnsafeUrl, check_destination, check_saved_url
from tests.receivers import Reply, start_http_receiver

NOTHING_ALLOWED = override_settings(NOTIFICATION_URL_ALLOWLIST=[])

REFUSED_ON_SAVE = [
    "http://127.0.0.1:8080/hook",  # loopback
    "http://127.8.9.10/hook",  # all of 127/8 is loopback
    "http://localhost:9000/alerts",  # the server itself, by name
    "https://10.0.0.5/hook",  # private
    "https://192.168.1.20/x",
    "http://172.16.0.1/x",
    "http://169.254.169.254/latest/meta-data",  # link-local: the cloud's metadata service
    "http://100.64.0.1/x",  # shared address space (carrier-grade NAT)
    "http://0.0.0.0:8000/x",  # unspecified: the local host on Linux
    "http://224.0.0.1/x",  # multicast
    "http://240.0.0.1/x",  # reserved
]


def webhook(url: str, **fields) -> dict:
    return {"name": "hook", "kind": "webhook", "config": {"url": url}, **fields}


# --- On save: the API -----------------------------------------------------------------------------------------


@NOTHING_ALLOWED
@pytest.mark.parametrize("url", REFUSED_ON_SAVE)
def test_the_api_refuses_a_channel_url_to_a_non_public_address(personas, url):
    response = personas.member.post("alerts/channels", webhook(url))
    assert response.status_code == 400, response.content
    [message] = response.json()["errors"]["config"]
    assert "NOTIFICATION_URL_ALLOWLIST" in message
    assert not NotificationChannel.objects.exists()


@NOTHING_ALLOWED
@pytest.mark.parametrize("url", ["ftp://hooks.example.com/x", "file:///etc/passwd", "gopher://hooks.example.com/"])
def test_the_api_refuses_a_scheme_other_than_http_and_https(personas, url):
    response = personas.member.post("alerts/channels", {"name": "s", "kind": "slack", "config": {"url": url}})
    assert response.status_code == 400 and "config" in response.json()["errors"]
    assert not NotificationChannel.objects.exists()


@NOTHING_ALLOWED
def test_a_public_host_name_is_accepted_without_an_allowlist(personas):
    response = personas.member.post("alerts/channels", webhook("https://hooks.example.com/services/T1/B2"))
    assert response.status_code == 201, response.content


@pytest.mark.parametrize(("allowlist", "url"), [
    (["127.0.0.1"], "http://127.0.0.1:8080/hook"),
    (["10.0.0.0/8"], "https://10.0.0.5/hook"),
    (["localhost"], "http://localhost:9000/alerts"),
    (["LocalHost."], "http://localhost:9000/alerts"),  # names match case-insensitively, a final dot ignored
])
def test_an_allowlisted_internal_receiver_is_accepted(personas, allowlist, url):
    with override_settings(NOTIFICATION_URL_ALLOWLIST=allowlist):
        response = personas.member.post("alerts/channels", webhook(url))
    assert response.status_code == 201, response.content


@NOTHING_ALLOWED
def test_a_patch_to_a_private_url_is_refused_and_keeps_the_old_one(personas):
    created = personas.member.post("alerts/channels", webhook("https://hooks.example.com/a")).json()
    response = personas.member.patch(f"alerts/channels/{created['id']}",
                                     {"kind": "webhook", "config": {"url": "http://169.254.169.254/x"}})
    assert response.status_code == 400 and "config" in response.json()["errors"]
    assert NotificationChannel.objects.get(pk=created["id"]).config["url"] == "https://hooks.example.com/a"


# --- On save: the admin ---------------------------------------------------------------------------------------


@NOTHING_ALLOWED
def test_the_admin_form_shows_the_refusal_and_saves_nothing(db, client):
    admin = get_user_model().objects.create_superuser("root", "root@example.com", "pw")
    client.force_login(admin)
    response = client.post("/admin/alerts/notificationchannel/add/", {
        "name": "internal", "kind": "webhook", "config": '{"url": "http://169.254.169.254/latest"}',
        "secret": "", "default_for": "[]", "repeat_interval_seconds": "3600", "group_wait_seconds": "30",
        "timeout_seconds": "10", "enabled": "on"})
    assert response.status_code == 200  # the form again, with its errors
    assert "NOTIFICATION_URL_ALLOWLIST" in response.content.decode()
    assert response.context["adminform"].form.errors["config"]
    assert not NotificationChannel.objects.exists()


# --- At send time -----------------------------------------------------------------------------------------------


def _channel(url: str) -> NotificationChannel:
    """A channel saved without its checks: one stored before them, or whose host's address changed since."""
    return NotificationChannel.objects.create(name="hook", kind="webhook", config={"url": url}, secret="k3y")


@pytest.fixture
def receiver():
    server = start_http_receiver()
    yield server
    server.stop()


def test_a_send_to_a_loopback_receiver_is_refused_unless_allowlisted(db, receiver):
    channel = _channel(receiver.url)
    with NOTHING_ALLOWED:
        refused = outbox.send_test(channel)
    assert refused.status == Notification.Status.FAILED  # permanent: no retries
    assert "refused" in refused.last_error and "NOTIFICATION_URL_ALLOWLIST" in refused.last_error
    assert "/hook" not in refused.last_error  # the path of a URL may be its secret
    assert receiver.requests == []

    with override_settings(NOTIFICATION_URL_ALLOWLIST=["127.0.0.0/8"]):
        sent = outbox.send_test(channel)
    assert sent.status == Notification.Status.SENT, sent.last_error
    assert len(receiver.wait_for(1)) == 1


def _resolves_to_non_public(host: str) -> bool:
    import ipaddress

    addresses = {info[4][0] for info in socket.getaddrinfo(host, 80, proto=socket.IPPROTO_TCP)}
    return bool(addresses) and not any(ipaddress.ip_address(address).is_global for address in addresses)


def test_a_host_name_is_judged_by_the_addresses_it_resolves_to(db, receiver):
    """The machine's own name passes the save check (no DNS there) but resolves to a loopback or private
    address: the send resolves it and refuses; allowlisting the name lets it through."""
    host = socket.gethostname().lower()
    assert _resolves_to_non_public(host), f"this test needs the machine's name ({host}) to resolve to itself"
    port = receiver.server.server_address[1]
    url = f"http://{host}:{port}/hook"
    with NOTHING_ALLOWED:
        check_saved_url(url)  # a name, not judged on save
        with pytest.raises(UnsafeUrl, match=host):
            check_destination(url)
        refused = outbox.send_test(_channel(url))
    assert refused.status == Notification.Status.FAILED and "refused" in refused.last_error
    assert receiver.requests == []
    with override_settings(NOTIFICATION_URL_ALLOWLIST=[host]):
        check_destination(url)


@pytest.mark.parametrize("url", [
    "http://[::1]:8080/x",
    "http://[::ffff:127.0.0.1]/x",  # IPv4 in IPv6 clothing
    "http://[fe80::1]/x",
    "http://[fc00::1]/x",
    "http://[ff02::1]/x",
    "http://127.1/x",  # what resolvers read as 127.0.0.1
    "http://2130706433/x",  # 127.0.0.1 as one number
])
def test_addresses_in_other_spellings_are_refused_at_send_time(url):
    with NOTHING_ALLOWED, pytest.raises(UnsafeUrl):
        check_destination(url)


def test_a_redirect_is_not_followed_even_to_an_allowed_address(db, receiver):
    bouncer = start_http_receiver(statuses=[Reply(302, headers={"Location": receiver.url})])
    try:
        with override_settings(NOTIFICATION_URL_ALLOWLIST=["127.0.0.1"]):
            row = outbox.send_test(_channel(bouncer.url))
    finally:
        bouncer.stop()
    assert row.status == Notification.Status.FAILED
    assert "HTTP 302" in row.last_error and "redirects are not followed" in row.last_error
    assert len(bouncer.requests) == 1 and receiver.requests == []
