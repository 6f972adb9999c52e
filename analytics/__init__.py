"""Everything recorded and every question asked of it.

The analytics client of the seeds is importable from here::

    from analytics import create_analytics_client

and seed 001's ``SkillAnalytics`` is the client's store backend.
"""


def __getattr__(name):
    # Lazy so that importing the Django app does not import the client (and vice versa).
    if name in {"create_analytics_client", "UnsupportedOperation", "SkillAnalytics"}:
        from analytics import client

        return getattr(client, name)
    raise AttributeError(name)
