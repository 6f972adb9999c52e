"""Everything recorded and every question asked of it.

The analytics client of the seeds is importable from here::

    from analytics import create_analytics_client
"""


def __getattr__(name):
    # Lazy so that importing the Django app does not import the client (and vice versa).
    if name in {"create_analytics_client", "UnsupportedOperation"}:
        from analytics import client

        return getattr(client, name)
    raise AttributeError(name)
