"""Django settings: every value comes from the environment, read here and nowhere else.

``.env.example`` lists each variable with its default. Junk stops start-up with
one line naming the variable (see ``toolweaver_site.env``).
"""

import os
import re
import secrets
from pathlib import Path

from toolweaver_site.env import (
    ConfigError,
    database_from_url,
    env_bool,
    env_choice,
    env_float,
    env_int,
    env_list,
    env_path,
    env_str,
)

BASE_DIR = Path(__file__).resolve().parent.parent

# --- Where local state lives -------------------------------------------------
ANALYTICS_DB_PATH = env_path("ANALYTICS_DB_PATH", "~/.toolweaver/analytics.db")
DATA_DIR = env_path("TOOLWEAVER_DATA_DIR", str(ANALYTICS_DB_PATH.parent))


def _private_file(path: Path) -> Path:
    """Create ``path`` (and its directory) readable by its owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
    os.chmod(path, 0o600)
    return path


# --- Core Django --------------------------------------------------------------
DEBUG = env_bool("DJANGO_DEBUG", False)
SECRET_KEY = env_str("DJANGO_SECRET_KEY")
if SECRET_KEY is None:
    # Zero-config start: a random key kept beside the data, never in the repository.
    key_file = _private_file(DATA_DIR / "secret_key")
    SECRET_KEY = key_file.read_text().strip()
    if not SECRET_KEY:
        SECRET_KEY = secrets.token_urlsafe(50)
        key_file.write_text(SECRET_KEY)
elif len(SECRET_KEY) < 32:
    raise ConfigError("DJANGO_SECRET_KEY", "must be at least 32 characters long")

ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", [])
SECURE_SSL = env_bool("DJANGO_SECURE_SSL", not DEBUG)
if SECURE_SSL:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", True)
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env_int("DJANGO_HSTS_SECONDS", 31536000, minimum=0)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI and Redoc served from our static files, not a CDN
    "django_celery_beat",
    "django_prometheus",
    # Our apps, lowest first: each may import only the ones above it.
    "analytics",
    "monitoring",
    "alerts",
]

MIDDLEWARE = [
    # django-prometheus's request metrics: its Before middleware first, its After middleware last.
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    # Django's own error pages (the DEBUG pages included) become JSON on /api/ paths.
    "analytics.platform.middleware.ApiJsonErrorsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "analytics.tracking.RequestTrackingMiddleware",
    "analytics.platform.middleware.ApiBodySizeLimitMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Innermost: its process_exception sees a view's database errors first (503 with Retry-After on the API).
    "analytics.platform.middleware.DatabaseUnavailableMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

ROOT_URLCONF = "toolweaver_site.urls"
WSGI_APPLICATION = "toolweaver_site.wsgi.application"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        # The site's own admin templates (branding, capped counts), ahead of the apps' and Django's; inside
        # the package, so that an installed copy (pip install .) has them too.
        "DIRS": [BASE_DIR / "toolweaver_site" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -----------------------------------------------------------------
_database_variable = "DATABASE_URL" if env_str("DATABASE_URL") else "ANALYTICS_DB_URL"
_database_url = env_str(_database_variable)
if _database_url:
    _default_db = database_from_url(_database_variable, _database_url)
else:
    _default_db = {"ENGINE": "django.db.backends.sqlite3", "NAME": str(ANALYTICS_DB_PATH)}

if _default_db["ENGINE"].endswith("sqlite3"):
    if _default_db["NAME"] != ":memory:":
        _private_file(Path(_default_db["NAME"]))
    _default_db["OPTIONS"] = {
        # WAL lets the web server, the worker and beat read while one of them writes;
        # IMMEDIATE transactions queue writers instead of failing with "database is locked".
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": env_int("ANALYTICS_SQLITE_TIMEOUT", 30, minimum=1),
    }
else:
    _default_db["CONN_MAX_AGE"] = env_int("DATABASE_CONN_MAX_AGE", 60, minimum=0)
    _default_db["CONN_HEALTH_CHECKS"] = True
    _default_db["OPTIONS"].setdefault("connect_timeout", env_int("DATABASE_CONNECT_TIMEOUT", 10, minimum=1))

_test_db_name = env_str("TOOLWEAVER_TEST_DB_NAME")
if _test_db_name:
    # The test run keeps its SQLite test database in a file so that a real worker
    # process can share it; on PostgreSQL it names the throw-away database.
    _default_db["TEST"] = {"NAME": _test_db_name}

# django-prometheus's wrappers of Django's own backends: the same backends, plus connection, query and error
# counts and query durations on /metrics (django_db_*), for SQLite and PostgreSQL alike.
_default_db["ENGINE"] = _default_db["ENGINE"].replace("django.db.backends.", "django_prometheus.db.backends.", 1)

DATABASES = {"default": _default_db}

# --- Cache: the API's rate-limit counters (analytics/platform/throttling.py) ---------------------------------
# Empty: each process counts on its own (local memory). With several gunicorn workers set a redis:// URL,
# so that they share one count per token.
CACHE_URL = env_str("CACHE_URL", "")
if CACHE_URL and not CACHE_URL.startswith(("redis://", "rediss://", "unix://")):
    raise ConfigError("CACHE_URL", "must be a redis://, rediss:// or unix:// URL, or empty for local memory")
CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": CACHE_URL}
          if CACHE_URL else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Internationalisation, static files ---------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = env_path("DJANGO_STATIC_ROOT", str(DATA_DIR / "static"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = DEBUG
STATICFILES_DIRS = [BASE_DIR / "toolweaver_site" / "static"]  # the charts' helper (toolweaver/charts.js)
STATICFILES_FINDERS = [
    "django.contrib.staticfiles.finders.FileSystemFinder",
    "django.contrib.staticfiles.finders.AppDirectoriesFinder",
    "toolweaver_site.staticfinders.PlotlyFinder",  # vendor/plotly/plotly.min.js from the plotly package
]

# --- API --------------------------------------------------------------------
API_MAX_BODY_BYTES = 10 * 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = API_MAX_BODY_BYTES
API_MAX_BATCH_ITEMS = 10_000
# The Retry-After of a 503 while the database is unreachable (analytics/platform/middleware.py).
API_RETRY_AFTER_SECONDS = env_int("API_RETRY_AFTER_SECONDS", 5, minimum=1)
ANALYTICS_DEFAULT_ORG = env_str("ANALYTICS_DEFAULT_ORG", "default")
# How long a process reuses a token it found active (analytics/platform/tenancy.py FoundTokens): the longest
# another worker may still accept a token after it is revoked. 0: look every token up on every request.
API_TOKEN_CACHE_SECONDS = env_int("API_TOKEN_CACHE_SECONDS", 5, minimum=0)
# Each API token's (staff user's, address's) budget of requests: <count>/<s|min|h|day>, or "off"
# (analytics/platform/throttling.py, docs/security.md). Over it: 429 with Retry-After.
API_THROTTLE_RATE = env_str("API_THROTTLE_RATE", "6000/min")
if not re.fullmatch(r"(?i)off|[1-9][0-9]*/(s|sec|second|m|min|minute|h|hour|d|day)", API_THROTTLE_RATE.strip()):
    raise ConfigError("API_THROTTLE_RATE", 'must be <requests>/<period> (period s, min, h or day) or "off"')

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "analytics.platform.auth.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["analytics.platform.permissions.ApiAccess"],
    "DEFAULT_THROTTLE_CLASSES": ["analytics.platform.throttling.ApiRateThrottle"],
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_PAGINATION_CLASS": "analytics.platform.pagination.StandardPagination",
    "PAGE_SIZE": 100,
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "analytics.platform.errors.api_exception_handler",
    "DATETIME_FORMAT": "%Y-%m-%dT%H:%M:%S.%fZ",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "ToolWeaver Analytics API",
    "DESCRIPTION": "Skill analytics, metrics, monitoring and alerting for the ToolWeaver orchestrator.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["analytics.platform.permissions.SchemaAccess"],
    "SERVE_AUTHENTICATION": [
        "analytics.platform.auth.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "PREPROCESSING_HOOKS": ["analytics.platform.openapi.drop_trailing_slash_twins"],
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "analytics.platform.openapi.document_conventions",
    ],
    "COMPONENT_SPLIT_REQUEST": True,
    # 3.1: the schemas of the pydantic contracts are JSON Schema 2020-12 (`null` as a type).
    "OAS_VERSION": "3.1.0",
    "ENUM_NAME_OVERRIDES": {"Aggregate": "analytics.services.metrics_query.AGGREGATES"},
    # /api/docs/ loads Swagger UI from the project's static files (drf-spectacular-sidecar): it works offline.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # No call to the public online validator (swagger.io) from the page either.
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None},
}

# --- Celery -------------------------------------------------------------------
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "filesystem://")
CELERY_RESULT_BACKEND = env_str("CELERY_RESULT_BACKEND")
if CELERY_BROKER_URL.startswith("filesystem://"):
    _broker_dir = DATA_DIR / "celery-broker"
    for _folder in ("queue", "processed", "control"):
        (_broker_dir / _folder).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "data_folder_processed": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),  # else kombu writes ./control in the working directory
        "store_processed": False,
    }
elif CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
    # A task taken by a worker that died before finishing it (tasks are acknowledged late) goes to another
    # worker after this many seconds. It must outlast CELERY_TASK_TIME_LIMIT, or a slow task would run twice.
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT_SECONDS", 3600, minimum=1),
    }
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 600, minimum=1)
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 540, minimum=1)
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TIMEZONE = "UTC"

# --- Analytics ----------------------------------------------------------------
ANALYTICS_BACKEND = env_str("ANALYTICS_BACKEND", "sqlite")
ANALYTICS_DB_RETENTION_DAYS = env_int("ANALYTICS_DB_RETENTION_DAYS", 90, minimum=1)
# Rollups outlive raw events: minute rows for ANALYTICS_ROLLUP_MINUTE_DAYS, hour rows for a year, day and week rows
# for ever (0 = keep for ever). Windows up to ANALYTICS_RAW_QUERY_MAX_MINUTES read raw events only (exact).
ANALYTICS_ROLLUP_MINUTE_DAYS = env_int("ANALYTICS_ROLLUP_MINUTE_DAYS", 8, minimum=0)
ANALYTICS_ROLLUP_HOUR_DAYS = env_int("ANALYTICS_ROLLUP_HOUR_DAYS", 366, minimum=0)
ANALYTICS_ROLLUP_DAY_DAYS = env_int("ANALYTICS_ROLLUP_DAY_DAYS", 0, minimum=0)
ANALYTICS_RAW_QUERY_MAX_MINUTES = env_int("ANALYTICS_RAW_QUERY_MAX_MINUTES", 60, minimum=0)
ANALYTICS_REQUEST_TRACKING = env_bool("ANALYTICS_REQUEST_TRACKING", True)
ANALYTICS_TRACKING_FLUSH_EVENTS = env_int("ANALYTICS_TRACKING_FLUSH_EVENTS", 500, minimum=1)
ANALYTICS_TRACKING_FLUSH_SECONDS = env_float("ANALYTICS_TRACKING_FLUSH_SECONDS", 5.0, minimum=0.1)
# An agent heartbeat's state holds this long at most; a longer silence is downtime (docs/activity.md).
ANALYTICS_AGENT_HEARTBEAT_TIMEOUT_SECONDS = env_int("ANALYTICS_AGENT_HEARTBEAT_TIMEOUT_SECONDS", 300, minimum=1)

# --- Backups (manage.py backup / restore, the daily "back up database" job; docs/backup.md) ---
BACKUP_DIR = env_path("BACKUP_DIR", str(DATA_DIR / "backups"))
# The daily job keeps this many dated backups in BACKUP_DIR and deletes older ones.
BACKUP_KEEP = env_int("BACKUP_KEEP", 7, minimum=1)

# --- Analytics client backends (docs/client.md) -------------------------------
# The http backend: a platform's API and an org's token; how many items it buffers while the API is away.
ANALYTICS_API_URL = env_str("ANALYTICS_API_URL", "http://localhost:8000/api/v1/analytics/")
ANALYTICS_API_TOKEN = env_str("ANALYTICS_API_TOKEN", "")
ANALYTICS_BUFFER_SIZE = env_int("ANALYTICS_BUFFER_SIZE", 10_000, minimum=1)
OTLP_ENDPOINT = env_str("OTLP_ENDPOINT", "")
OTLP_INSTANCE_ID = env_str("OTLP_INSTANCE_ID", "")
OTLP_TOKEN = env_str("OTLP_TOKEN", "")
OTLP_PUSH_INTERVAL = env_float("OTLP_PUSH_INTERVAL", 60.0, minimum=1)
# Resource attributes of every OTLP export (also OTEL_RESOURCE_ATTRIBUTES, read by the SDK).
OTLP_SERVICE_NAME = env_str("OTLP_SERVICE_NAME", "toolweaver-analytics")
OTLP_ENVIRONMENT = env_str("OTLP_ENVIRONMENT", "")
PROMETHEUS_ENABLED = env_bool("PROMETHEUS_ENABLED", True)
PROMETHEUS_HOST = env_str("PROMETHEUS_HOST", "127.0.0.1")
PROMETHEUS_PORT = env_int("PROMETHEUS_PORT", 8000, minimum=1)
WANDB_API_KEY = env_str("WANDB_API_KEY", "")
WANDB_PROJECT = env_str("WANDB_PROJECT", "toolweaver-skills")
WANDB_ENTITY = env_str("WANDB_ENTITY", "")
WANDB_RUN_NAME = env_str("WANDB_RUN_NAME", "")

# --- Exposition: /metrics and the server's OTLP push (docs/exporters.md) ------------
# When set, /metrics answers only requests with "Authorization: Bearer <token>".
PROMETHEUS_METRICS_TOKEN = env_str("PROMETHEUS_METRICS_TOKEN", "")
# Health scores on /metrics are computed as of the start of each such period and reused during it (0: every scrape).
PROMETHEUS_HEALTH_SCORE_SECONDS = env_int("PROMETHEUS_HEALTH_SCORE_SECONDS", 60, minimum=0)
# The server pushes the same families as /metrics to OTLP_ENDPOINT every OTLP_PUSH_INTERVAL seconds.
OTLP_SERVER_PUSH = env_bool("OTLP_SERVER_PUSH", False)
# At most this many label sets per family on /metrics (the busiest kept); the rest are counted as dropped.
PROMETHEUS_MAX_SERIES_PER_FAMILY = env_int("PROMETHEUS_MAX_SERIES_PER_FAMILY", 10000, minimum=1)

# --- Grafana (grafana/dashboards, manage.py grafana_sync, docs/grafana.md) ----------
GRAFANA_URL = env_str("GRAFANA_URL", "").rstrip("/")
GRAFANA_API_KEY = env_str("GRAFANA_API_KEY", "")
GRAFANA_ORG_ID = env_int("GRAFANA_ORG_ID", 1, minimum=1)
GRAFANA_DATASOURCE_NAME = env_str("GRAFANA_DATASOURCE_NAME", "ToolWeaver Prometheus")
# The Prometheus server that scrapes this platform, as Grafana reaches it.
GRAFANA_PROMETHEUS_URL = env_str("GRAFANA_PROMETHEUS_URL", "http://localhost:9090")
GRAFANA_DASHBOARD_REFRESH = env_str("GRAFANA_DASHBOARD_REFRESH", "1m")

# --- Notifications (alerts/notifications, docs/notifications.md) ------------------
# Email channels send through this SMTP server; without EMAIL_HOST, emails are printed on the console
# (make run), never sent anywhere.
EMAIL_HOST = env_str("EMAIL_HOST", "")
EMAIL_PORT = env_int("EMAIL_PORT", 587 if EMAIL_HOST else 25, minimum=1)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", bool(EMAIL_HOST))
EMAIL_BACKEND = ("django.core.mail.backends.smtp.EmailBackend" if EMAIL_HOST
                 else "django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "ToolWeaver Analytics <alerts@localhost>")
# Slack and webhook channels send to public addresses only; these hosts and CIDRs are allowed besides
# (comma-separated, e.g. "hooks.internal,10.20.0.0/16"; alerts/notifications/url_safety.py, docs/security.md).
NOTIFICATION_URL_ALLOWLIST = env_list("NOTIFICATION_URL_ALLOWLIST", [])
# Where the platform is reached, for the incident links in notifications (e.g. https://analytics.example.com).
SITE_URL = env_str("SITE_URL", "").rstrip("/")

# --- Local run (make run) -------------------------------------------------------
# Where `make run` serves (toolweaver_site.devserver); the demo's HTTP service checks this server's /healthz.
TOOLWEAVER_HOST: str = env_str("TOOLWEAVER_HOST", "127.0.0.1")
TOOLWEAVER_PORT = env_int("TOOLWEAVER_PORT", 8000, minimum=1)

# --- Logging ------------------------------------------------------------------
ANALYTICS_LOG_LEVEL = env_choice(
    "ANALYTICS_LOG_LEVEL", "INFO", ["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
)
ANALYTICS_LOG_FILE = env_str("ANALYTICS_LOG_FILE")
_log_handlers = {
    "stderr": {"class": "logging.StreamHandler", "formatter": "plain", "stream": "ext://sys.stderr"},
}
if ANALYTICS_LOG_FILE:
    _log_handlers["file"] = {
        "class": "logging.FileHandler",
        "formatter": "plain",
        "filename": str(Path(ANALYTICS_LOG_FILE).expanduser()),
    }
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": _log_handlers,
    "root": {"handlers": list(_log_handlers), "level": ANALYTICS_LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        # urllib3 logs every request's path at DEBUG, and a Slack webhook's path is its secret (docs/security.md).
        "urllib3": {"level": "INFO"},
    },
}
