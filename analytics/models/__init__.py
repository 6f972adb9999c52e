from analytics.models.metrics import MetricEvent, MetricSeries, MetricSeriesTag, MetricType
from analytics.models.orgs import ApiToken, Organization

__all__ = ["ApiToken", "MetricEvent", "MetricSeries", "MetricSeriesTag", "MetricType", "Organization"]
