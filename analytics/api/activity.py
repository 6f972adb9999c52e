"""Activity events in (seed 003): ``POST events`` — one, an array, or ``{"events": [...]}`` of typed events."""

from __future__ import annotations

from analytics.platform.contracts import endpoint
from analytics.platform.conventions import ApiView
from analytics.services import activity
from analytics.services.metrics_ingest import IngestResult


class ActivityEventIngestView(ApiView):
    @endpoint(items=activity.ActivityEventItem, response=IngestResult, status_code=201,
              summary="Record activity events (sessions, contracts, credits, agent calls, heartbeats, …; "
                      "up to 10,000)",
              description="Each event's `type` names its schema (docs/activity.md); an unknown type or a bad "
                          "field is a 400 naming it. A repeated `event_id` is stored once.")
    def post(self, request, org, items):
        return activity.record_activity(org, items)
