"""Everything recorded and every question asked of it.

The analytics client of the seeds is importable from here::

    from analytics import create_analytics_client

and so are seed 001's backend classes, each created without arguments and configured from the
environment (docs/client.md)::

    from analytics import OTLPMetrics, PrometheusMetrics, SkillAnalytics

    metrics = OTLPMetrics()           # the otlp backend: pushes to OTLP_ENDPOINT every OTLP_PUSH_INTERVAL s
    metrics = PrometheusMetrics()     # the prometheus backend: /metrics (its own server in a plain process)
    analytics = SkillAnalytics()      # the sqlite store backend: creates the database and tables on first use
"""

# The client's names, served lazily so that importing the Django app does not import the client (and vice
# versa); reaching one of the backend classes sets Django up first in a plain Python process.
CLIENT_NAMES = frozenset({
    "create_analytics_client", "UnsupportedOperation", "SkillAnalytics", "OTLPMetrics", "PrometheusMetrics",
})


def __getattr__(name):
    if name in CLIENT_NAMES:
        from analytics import client

        return getattr(client, name)
    raise AttributeError(f"module 'analytics' has no attribute {name!r}")


def __dir__():
    return sorted({*globals(), *CLIENT_NAMES})
