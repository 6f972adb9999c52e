from django.urls import path


def api_path(route: str, view, name: str) -> list:
    """Serve ``route`` exactly as written and with a trailing slash (no redirect, POST included)."""
    route = route.rstrip("/")
    return [path(route, view, name=name), path(route + "/", view, name=name)]
