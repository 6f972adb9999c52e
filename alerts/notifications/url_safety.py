"""Where Slack and webhook channels may send: public http(s) addresses only (docs/security.md, "URL safety").

A channel's URL is chosen by whoever may edit channels — any writing token of an org. Without a check, a
token could make the server POST to its own loopback services, the cloud's metadata address (169.254.169.254)
or the private network behind it. So a URL must be ``http`` or ``https`` with a host, and every address the
host stands for must be a public (globally routed, not multicast) one, unless ``NOTIFICATION_URL_ALLOWLIST``
names it: a comma-separated list of host names (matched exactly, case-insensitively) and IP addresses or
networks in CIDR form (``127.0.0.1``, ``10.20.0.0/16``, ``::1``).

Two checks: :func:`check_saved_url` when a channel is saved (no DNS: a literal address and ``localhost`` names
are judged, other names are accepted), and :func:`check_destination` just before each send, which resolves
the host and judges every address it resolves to. Redirects are never followed (see ``transports.post_json``),
so a public receiver cannot bounce a notification to a private address either.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from django.conf import settings

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
SCHEMES = ("http", "https")
ALLOWLIST_SETTING = "NOTIFICATION_URL_ALLOWLIST"


class UnsafeUrl(ValueError):
    """The URL may not be sent to; the message says why and names the setting that would allow it."""


def _allowlist() -> tuple[set[str], list[Network]]:
    """(host names, networks) of ``NOTIFICATION_URL_ALLOWLIST``, read at each call (tests override it)."""
    names: set[str] = set()
    networks: list[Network] = []
    for entry in getattr(settings, ALLOWLIST_SETTING, []):
        entry = entry.strip().strip("[]")
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            names.add(entry.lower().rstrip("."))
    return names, networks


def _public(address: Address) -> bool:
    """A globally routed unicast address: not loopback, private, link-local, reserved, shared or multicast."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
    return address.is_global and not address.is_multicast


def _judge(host: str, address: Address, networks: list[Network]) -> None:
    if _public(address) or any(address in network for network in networks):
        return
    shown = host if host == str(address) else f"{host} ({address})"
    raise UnsafeUrl(f"{shown} is a loopback, private, link-local or otherwise non-public address; "
                    f"add it to {ALLOWLIST_SETTING} to allow it")


def _host(url: str) -> str:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number or out of range
    except ValueError:
        raise UnsafeUrl("not a valid URL") from None
    if parts.scheme.lower() not in SCHEMES or not parts.hostname:
        raise UnsafeUrl("must be an http or https URL with a host")
    return parts.hostname.lower().rstrip(".")


def _literal(host: str) -> Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def check_saved_url(url: str) -> None:
    """When a channel is saved: the scheme, and the host if it is a literal address or a ``localhost`` name."""
    host = _host(url)
    names, networks = _allowlist()
    if host in names:
        return
    address = _literal(host)
    if address is not None:
        _judge(host, address, networks)
    elif host == "localhost" or host.endswith(".localhost"):
        raise UnsafeUrl(f"{host} is the server itself; add it to {ALLOWLIST_SETTING} to allow it")


def check_destination(url: str) -> None:
    """Before a send: every address the URL's host resolves to must be public or allowlisted.

    Raises :class:`UnsafeUrl` for a refused address and ``OSError`` (``socket.gaierror``) when the host does
    not resolve. The connection that follows resolves the name again; a name whose answers change between the
    two (DNS rebinding) is a known limit, documented in docs/security.md.
    """
    host = _host(url)
    names, networks = _allowlist()
    if host in names:
        return
    literal = _literal(host)
    if literal is not None:
        _judge(host, literal, networks)
        return
    port = urlsplit(url).port or (443 if url.lower().startswith("https") else 80)
    for *_, sockaddr in socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP):
        _judge(host, ipaddress.ip_address(str(sockaddr[0]).split("%")[0]), networks)
