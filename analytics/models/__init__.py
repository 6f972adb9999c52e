from analytics.models.orgs import ApiToken, Organization

__all__ = ["ApiToken", "Organization"]
