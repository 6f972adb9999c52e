"""Celery tasks: thin wrappers over the alerting services."""

from celery import shared_task

from alerts.notifications import outbox
from alerts.services.evaluation import evaluate_rules


@shared_task(name="alerts.check_alerts")
def check_alerts() -> dict:
    return evaluate_rules().as_dict()


@shared_task(name="alerts.send_notifications")
def send_notifications() -> dict:
    return outbox.run().as_dict()
