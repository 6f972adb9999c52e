"""A notification worker killed mid-delivery loses nothing: a real ``send_notifications`` process, killed by
its pid while its HTTP request hangs at a real local receiver; the row is sent once the dead worker's lease
ends."""

import os
import signal
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from alerts.models import AlertIncident, Notification, NotificationChannel
from alerts.notifications import outbox
from tests.alerts.factories import at, evaluate, make_rule, org, record
from tests.integration.conftest import child_env
from tests.receivers import Reply, start_http_receiver
from tests.servers import wait_for

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_delivery_loses_nothing(tmp_path):
    server = start_http_receiver(statuses=[Reply(200, delay=60)])  # the first send hangs
    worker = None
    try:
        acme = org()
        rule = make_rule(acme, name="cpu high", severity="critical")
        record(acme, "cpu.usage", 95, at(-30))
        evaluate(at(0), rule)
        assert AlertIncident.objects.filter(rule=rule).exists()
        channel = NotificationChannel.objects.create(org=acme, name="hook", kind="webhook",
                                                     config={"url": server.url}, timeout_seconds=30,
                                                     group_wait_seconds=0)
        channel.rules.set([rule])
        assert outbox.plan(timezone.now()) == 1

        log = open(tmp_path / "worker.log", "w")  # noqa: SIM115 - handed to the worker
        worker = subprocess.Popen([sys.executable, "manage.py", "send_notifications"], cwd=ROOT,
                                  env=child_env(), stdout=log, stderr=subprocess.STDOUT)
        wait_for(lambda: server.requests, 60, "the worker's request")
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(30)

        row = Notification.objects.get()
        assert row.status == "pending" and row.attempts == 1  # claimed, never marked sent: not lost
        assert row.claimed_until is not None
        assert outbox.deliver(row.claimed_until - timedelta(seconds=1)).sent == 0  # its lease still runs
        summary = outbox.deliver(row.claimed_until + timedelta(seconds=1))
        assert summary.sent == 1
        row.refresh_from_db()
        assert row.status == "sent" and row.attempts == 2
        assert len(server.requests) == 2  # at least once: the receiver deduplicates on notification_id
    finally:
        if worker is not None and worker.poll() is None:
            worker.kill()
        server.stop()
