"""Celery tasks: thin wrappers over the alerting services."""

from celery import shared_task

from alerts.services.evaluation import evaluate_rules


@shared_task(name="alerts.check_alerts")
def check_alerts() -> dict:
    return evaluate_rules().as_dict()
