"""The one-way dependencies of DESIGN.md: platform ← analytics ← monitoring ← alerts; no app imports the site."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# package → the first-party packages it must never import (the floor, analytics.platform, is open to all)
FORBIDDEN = {
    "analytics/platform": ("analytics", "monitoring", "alerts", "toolweaver_site"),
    "analytics": ("monitoring", "alerts", "toolweaver_site"),
    "monitoring": ("alerts", "toolweaver_site"),
    "alerts": ("toolweaver_site",),
}
FLOOR = "analytics.platform"


def imported_modules(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


def _within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def violations(package: str, forbidden: tuple[str, ...]) -> list[str]:
    found = []
    for path in sorted((ROOT / package).rglob("*.py")):
        if "migrations" in path.parts:
            continue
        for module in imported_modules(path):
            if _within(module, FLOOR):
                continue
            if any(_within(module, other) for other in forbidden):
                found.append(f"{path.relative_to(ROOT)} imports {module}")
    return found


@pytest.mark.parametrize("package", list(FORBIDDEN))
def test_imports_point_one_way(package):
    assert violations(package, FORBIDDEN[package]) == []


def test_the_check_sees_an_upward_import(tmp_path, monkeypatch):
    """The check itself can fail: a module of the floor importing the domain is reported."""
    floor = tmp_path / "analytics" / "platform"
    floor.mkdir(parents=True)
    (floor / "bad.py").write_text("from analytics.services import skills\nimport alerts.models\n")
    monkeypatch.setattr(__import__(__name__, fromlist=["ROOT"]), "ROOT", tmp_path)
    assert violations("analytics/platform", FORBIDDEN["analytics/platform"]) == [
        "analytics/platform/bad.py imports analytics.services",
        "analytics/platform/bad.py imports alerts.models",
    ]
