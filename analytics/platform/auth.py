"""Token authentication: ``Authorization: Bearer <token>``, or Basic with the token as the password."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from rest_framework import authentication, exceptions

from analytics.platform.tenancy import ApiToken, Organization


@dataclass(frozen=True)
class TokenPrincipal:
    """``request.user`` for a request made with an API token: it acts for one org."""

    token: ApiToken

    is_authenticated = True
    is_anonymous = False
    is_staff = False
    is_superuser = False
    is_active = True
    pk = None

    @property
    def org(self) -> Organization:
        return self.token.org

    @property
    def read_only(self) -> bool:
        return self.token.read_only

    def __str__(self) -> str:
        return f"token:{self.token.prefix}"


def _authenticated(request, raw: str) -> tuple[TokenPrincipal, ApiToken]:
    token = ApiToken.find_active(raw)
    if token is None:
        raise exceptions.AuthenticationFailed("Invalid or revoked token.")
    token.touch()
    # Request tracking (a Django middleware) files the request under the token's org.
    request._request.analytics_token = token
    return TokenPrincipal(token), token


class BearerTokenAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.lower().encode():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Authorization header must be 'Bearer <token>'.")
        try:
            raw = header[1].decode("ascii")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed("Invalid token.") from None
        return _authenticated(request, raw)

    def authenticate_header(self, request):
        return self.keyword


class BasicTokenAuthentication(authentication.BaseAuthentication):
    """``Authorization: Basic base64(anything:<token>)``: what Grafana-style OTLP exporters send (the user
    name is ignored; the password is the token). Only the OTLP receiver accepts it."""

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != b"basic":
            return None
        try:
            user_and_password = base64.b64decode(header[1], validate=True).decode("ascii") if len(header) == 2 else ""
        except (binascii.Error, UnicodeDecodeError):
            user_and_password = ""
        _, colon, raw = user_and_password.partition(":")
        if not colon or not raw:
            raise exceptions.AuthenticationFailed("Authorization header must be 'Basic base64(user:<token>)'.")
        return _authenticated(request, raw)

    def authenticate_header(self, request):
        return 'Basic realm="toolweaver"'
