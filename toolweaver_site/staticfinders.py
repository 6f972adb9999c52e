"""The charting library's file, served from the installed plotly package (no CDN: the pages work air-gapped).

``pip install plotly`` (a dependency) ships plotly.js as ``plotly/package_data/plotly.min.js``; this finder
serves that one file as ``static/vendor/plotly/plotly.min.js``, and ``collectstatic`` copies it like any
other static file.
"""

from __future__ import annotations

from importlib.util import find_spec
from pathlib import Path

from django.contrib.staticfiles.finders import BaseFinder
from django.core.files.storage import FileSystemStorage

PREFIX = "vendor/plotly"
FILE_NAME = "plotly.min.js"


def _package_data() -> Path:
    spec = find_spec("plotly")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("plotly is not installed: it is a dependency (make venv installs it)")
    return Path(next(iter(spec.submodule_search_locations))) / "package_data"


class PlotlyFinder(BaseFinder):
    def check(self, **kwargs):
        return []

    def find(self, path, find_all=False, **kwargs):
        if path != f"{PREFIX}/{FILE_NAME}":
            return [] if find_all else None
        found = str(_package_data() / FILE_NAME)
        return [found] if find_all else found

    def list(self, ignore_patterns):
        storage = FileSystemStorage(location=_package_data())
        storage.prefix = PREFIX  # type: ignore[attr-defined]  # collectstatic reads it
        yield FILE_NAME, storage
