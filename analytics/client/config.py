"""The client's configuration, read from Django settings (which read the environment).

Secrets are never returned: ``config_summary`` replaces them with ``"***"``.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

from django.conf import settings
from django.db import connections

MASK = "***"


@dataclass(frozen=True)
class ClientConfig:
    default_org: str
    retention_days: int
    otlp_endpoint: str
    otlp_instance_id: str
    otlp_token: str
    otlp_push_interval: float
    prometheus_enabled: bool
    prometheus_host: str
    prometheus_port: int
    wandb_api_key: str
    wandb_project: str
    wandb_entity: str
    wandb_run_name: str
    grafana_api_key: str


def client_config() -> ClientConfig:
    def setting(name, default):
        value = getattr(settings, name, None)
        return default if value is None or value == "" else value

    return ClientConfig(
        default_org=setting("ANALYTICS_DEFAULT_ORG", "default"),
        retention_days=setting("ANALYTICS_DB_RETENTION_DAYS", 90),
        otlp_endpoint=setting("OTLP_ENDPOINT", ""),
        otlp_instance_id=str(setting("OTLP_INSTANCE_ID", "")),
        otlp_token=setting("OTLP_TOKEN", ""),
        otlp_push_interval=float(setting("OTLP_PUSH_INTERVAL", 60)),
        prometheus_enabled=bool(setting("PROMETHEUS_ENABLED", True)),
        prometheus_host=setting("PROMETHEUS_HOST", "127.0.0.1"),
        prometheus_port=int(setting("PROMETHEUS_PORT", 8000)),
        wandb_api_key=setting("WANDB_API_KEY", ""),
        wandb_project=setting("WANDB_PROJECT", "toolweaver-skills"),
        wandb_entity=setting("WANDB_ENTITY", ""),
        wandb_run_name=setting("WANDB_RUN_NAME", ""),
        grafana_api_key=setting("GRAFANA_API_KEY", ""),
    )


def masked(value) -> str | None:
    return MASK if value else None


def database_url() -> str:
    """The default database as a URL, its password replaced by ``***``."""
    db = connections["default"].settings_dict
    engine = db["ENGINE"].rsplit(".", 1)[-1]
    if engine == "sqlite3":
        return f"sqlite:///{db['NAME']}"
    user = quote(db.get("USER") or "")
    password = f":{MASK}" if db.get("PASSWORD") else ""
    host = db.get("HOST") or ""
    port = f":{db['PORT']}" if db.get("PORT") else ""
    auth = f"{user}{password}@" if user or password else ""
    scheme = "postgres" if engine.startswith("postgresql") else engine
    return f"{scheme}://{auth}{host}{port}/{db['NAME']}"


def config_summary(backend: str) -> dict:
    config = client_config()
    return {
        "backend": backend,
        "default_org": config.default_org,
        "database_url": database_url(),
        "retention_days": config.retention_days,
        "otlp_endpoint": config.otlp_endpoint or None,
        "otlp_instance_id": config.otlp_instance_id or None,
        "otlp_token": masked(config.otlp_token),
        "otlp_push_interval": config.otlp_push_interval,
        "prometheus_enabled": config.prometheus_enabled,
        "prometheus_host": config.prometheus_host,
        "prometheus_port": config.prometheus_port,
        "wandb_api_key": masked(config.wandb_api_key),
        "wandb_project": config.wandb_project,
        "wandb_entity": config.wandb_entity or None,
        "wandb_run_name": config.wandb_run_name or None,
        "grafana_api_key": masked(config.grafana_api_key),
    }
