"""The long-lived part of a process's heap, left out of garbage collection (``gc.freeze``).

A batch of 10,000 events, or a rollup build, makes hundreds of thousands of short-lived objects; each time
they set off a full collection, the collector went over everything loaded at start-up as well (Django,
the apps, their views and tasks: some 150,000 objects). Frozen, those are skipped: a third of a batch's
validation time, a tenth of a first rollup build (docs/benchmarks.md, "Metrics at scale").

Called once a process has loaded what it serves: the WSGI application, each Celery worker process.
"""

import gc

from django.urls import get_resolver


def freeze_loaded_heap() -> None:
    get_resolver().url_patterns  # noqa: B018  (imports every view, so that they are frozen too)
    gc.freeze()
