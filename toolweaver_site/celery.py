"""The Celery app. Tasks live in each app's ``tasks.py``; schedules in each app's ``schedule.py``."""

import os

from celery import Celery
from celery.signals import worker_process_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "toolweaver_site.settings")

app = Celery("toolweaver_site")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_process_init.connect
def _freeze_loaded_heap(**kwargs) -> None:
    from toolweaver_site.heap import freeze_loaded_heap

    freeze_loaded_heap()
