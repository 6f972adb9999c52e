"""Reading configuration from the environment, loudly.

Every setting of the project comes from an environment variable read through
these helpers. Junk (a boolean that is not a boolean, a number that is not a
number, a database URL we cannot use) stops start-up with one line naming the
variable: ``ConfigError`` is a ``SystemExit``, so no traceback is printed.
Values are never echoed back when they may hold a secret.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import overload
from urllib.parse import parse_qsl, unquote, urlsplit

TRUE_WORDS = {"1", "true", "yes", "on"}
FALSE_WORDS = {"0", "false", "no", "off"}


class ConfigError(SystemExit):
    """A configuration variable holds something we cannot use."""

    def __init__(self, variable: str, problem: str):
        self.variable = variable
        super().__init__(f"Configuration error: {variable} {problem}")


@overload
def env_str(name: str, default: str, *, environ: Mapping[str, str] = ...) -> str: ...
@overload
def env_str(name: str, default: None = None, *, environ: Mapping[str, str] = ...) -> str | None: ...
def env_str(name: str, default: str | None = None, *, environ: Mapping[str, str] = os.environ) -> str | None:
    value = environ.get(name)
    if value is None or value.strip() == "":
        return default
    return value.strip()


def env_bool(name: str, default: bool, *, environ=os.environ) -> bool:
    value = env_str(name, environ=environ)
    if value is None:
        return default
    word = value.lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ConfigError(name, f"must be a boolean (true/false, 1/0, yes/no, on/off), got {value!r}")


def env_int(name: str, default: int, *, minimum: int | None = None, environ=os.environ) -> int:
    value = env_str(name, environ=environ)
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        raise ConfigError(name, f"must be an integer, got {value!r}") from None
    if minimum is not None and number < minimum:
        raise ConfigError(name, f"must be at least {minimum}, got {number}")
    return number


def env_float(name: str, default: float, *, minimum: float | None = None, environ=os.environ) -> float:
    value = env_str(name, environ=environ)
    if value is None:
        return default
    try:
        number = float(value)
    except ValueError:
        raise ConfigError(name, f"must be a number, got {value!r}") from None
    if number != number or number in (float("inf"), float("-inf")):
        raise ConfigError(name, f"must be a finite number, got {value!r}")
    if minimum is not None and number < minimum:
        raise ConfigError(name, f"must be at least {minimum}, got {number}")
    return number


def env_choice(name: str, default: str, choices: list[str], *, environ=os.environ) -> str:
    value = env_str(name, environ=environ)
    if value is None:
        return default
    if value.upper() in choices:
        return value.upper()
    if value.lower() in choices:
        return value.lower()
    raise ConfigError(name, f"must be one of {', '.join(choices)}, got {value!r}")


def env_list(name: str, default: list[str], *, environ=os.environ) -> list[str]:
    value = env_str(name, environ=environ)
    if value is None:
        return list(default)
    return [item.strip() for item in value.split(",") if item.strip()]


def env_path(name: str, default: str, *, environ=os.environ) -> Path:
    return Path(env_str(name, default, environ=environ)).expanduser()


def database_from_url(variable: str, url: str) -> dict:
    """Django DATABASES entry for ``sqlite:///path`` or ``postgres://user:pw@host:port/name?opts``.

    The error messages never repeat the URL: it may hold a password.
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise ConfigError(variable, "is not a valid URL") from None
    scheme = parts.scheme.lower()
    if scheme == "sqlite":
        path = unquote(parts.path)
        if parts.netloc or not path or path == "/":
            raise ConfigError(variable, "must look like sqlite:///absolute/path.db or sqlite:///relative.db")
        # sqlite:///relative.db has the path "/relative.db"; sqlite:////abs/x.db has "//abs/x.db".
        return {"ENGINE": "django.db.backends.sqlite3", "NAME": str(Path(path[1:]).expanduser())}
    if scheme in ("postgres", "postgresql", "pgsql"):
        name = unquote(parts.path.lstrip("/"))
        if not name:
            raise ConfigError(variable, "must name a database: postgres://user:password@host:5432/dbname")
        options = dict(parse_qsl(parts.query))
        host = unquote(parts.hostname or "") or options.pop("host", "")
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": name,
            "USER": unquote(parts.username or ""),
            "PASSWORD": unquote(parts.password or ""),
            "HOST": host,
            "PORT": str(port or ""),
            "OPTIONS": options,
        }
    raise ConfigError(
        variable, f"has an unsupported scheme {scheme + '://' if scheme else '(none)'}: use sqlite:/// or postgres://"
    )
