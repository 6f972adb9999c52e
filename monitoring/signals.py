"""Signals for higher apps (alerting), which may not be imported from here.

``service_status_changed(sender=Service, service=..., transition=ServiceTransition)`` is sent
after the transaction that recorded the change commits.
"""

from django.dispatch import Signal

service_status_changed = Signal()
