import gc
import os

from django.core.wsgi import get_wsgi_application
from django.urls import get_resolver

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "toolweaver_site.settings")
application = get_wsgi_application()

# What is loaded now (Django, the apps, and through the URLconf every view) lives as long as the process:
# frozen, it is left out of the garbage collector's full collections. A batch of 10,000 events makes tens
# of thousands of objects, enough to set off full collections, and each went over this whole heap: a third
# of the batch's validation time (docs/benchmarks.md, "Batch ingest, step by step").
get_resolver().url_patterns  # noqa: B018  (imports the views)
gc.freeze()
