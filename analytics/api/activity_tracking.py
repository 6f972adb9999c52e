"""Batch tracking (seed 003): ``POST batch-track`` computes the user, agent and platform analytics of the
token's org for the periods of one type in a range (default: the current period)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BeforeValidator, Field
from pydantic_core import PydanticCustomError

from analytics.platform.contracts import RequestContract, endpoint
from analytics.platform.conventions import ApiView
from analytics.platform.errors import field_error
from analytics.platform.windows import WindowError, parse_time
from analytics.services import activity_periods


def _time(value) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise PydanticCustomError("datetime_type", "Must be an ISO-8601 date-time string.")
    try:
        return parse_time("time", value)
    except WindowError:
        raise PydanticCustomError("datetime_parsing", "Must be an ISO-8601 date-time.") from None
    except OverflowError:  # an offset that moves it outside the years 1-9999 in UTC
        raise PydanticCustomError("datetime_range", "Is outside the range of dates.") from None


class BatchTrack(RequestContract):
    """Which periods to compute (an empty body: the current day)."""

    period_type: activity_periods.PeriodTypeName = "day"
    start: Annotated[datetime | None, BeforeValidator(_time), Field(
        description="ISO-8601 (naive = UTC); default: the start of the current period.")] = None
    end: Annotated[datetime | None, BeforeValidator(_time), Field(
        description="Exclusive; default: the end of the current period. Needs start.")] = None


class BatchTrackView(ApiView):
    @endpoint(body=BatchTrack, response=activity_periods.TrackSummary,
              summary="Compute the user, agent and platform analytics of the periods in a range",
              description=f"Every `period_type` period overlapping [start, end), at most "
                          f"{activity_periods.MAX_PERIODS}; the rows are upserted, so tracking a period again "
                          "gives the same rows. Staff name the org with `?org=`.")
    def post(self, request, body):
        org = self.write_org()
        try:
            start, end = activity_periods.resolve_range(body.period_type, body.start, body.end)
        except activity_periods.TrackRangeError as error:
            raise field_error(error.field, error.message) from None
        return activity_periods.compute_periods(body.period_type, start, end, org=org)
