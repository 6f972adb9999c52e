"""A fresh ``pip install .`` (no extras) is a working platform: it migrates, rolls metrics up, has its templates.

The issue "One declaration per API contract": numpy and every other run-time import are run-time dependencies,
and the site's admin templates ship inside the package. The install goes into a new virtual environment
(uv, from the project's venv, reading the same package index ``make venv`` does); the commands run with that
environment's ``django-admin`` from a folder outside the checkout.
"""

import os
import subprocess
from pathlib import Path

import pytest

from tests.servers import missing_server

pytestmark = pytest.mark.sqlite_only  # the child processes use SQLite whatever the run's database

ROOT = Path(__file__).resolve().parents[2]
UV = ROOT / ".venv" / "bin" / "uv"


@pytest.fixture(scope="module")
def fresh_venv(tmp_path_factory) -> Path:
    if not UV.exists():
        missing_server("uv is not installed in .venv (make venv installs it)")
    venv = tmp_path_factory.mktemp("fresh") / "venv"
    subprocess.run([str(UV), "venv", "-q", str(venv)], check=True, timeout=120)
    # A copy of the tree is installed, not linked: what is not packaged is not there.
    subprocess.run([str(UV), "pip", "install", "-q", "--python", str(venv / "bin" / "python"), "--no-cache",
                    "--reinstall-package", "toolweaver-analytics", str(ROOT)], check=True, timeout=600)
    return venv


def django_admin(venv: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("DATABASE_URL", "ANALYTICS_DB"))}
    env |= {"DJANGO_SETTINGS_MODULE": "toolweaver_site.settings", "TOOLWEAVER_DATA_DIR": str(cwd / "data"),
            "PYTHONPATH": ""}
    return subprocess.run([str(venv / "bin" / "django-admin"), *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


def test_a_fresh_install_without_extras_migrates_seeds_and_rolls_up(fresh_venv, tmp_path):
    for args in (("migrate", "-v0"), ("seed_demo", "--days", "1")):
        done = django_admin(fresh_venv, tmp_path, *args)
        assert done.returncode == 0, (args, done.stderr[-2000:])
    done = django_admin(fresh_venv, tmp_path, "rollup_metrics")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "minute_rows" in done.stdout

    site_packages = next((fresh_venv / "lib").glob("python3*/site-packages"))
    assert not (site_packages / "analytics").is_symlink()
    for template in ("toolweaver_site/templates/admin/base_site.html", "alerts/templates/admin/alerts"):
        assert (site_packages / template).exists(), template
    check = django_admin(fresh_venv, tmp_path, "shell", "-c",
                         "from django.template.loader import get_template; "
                         "print(get_template('admin/base_site.html').origin.name)")
    assert check.returncode == 0, check.stderr[-2000:]
    origin = check.stdout.strip().splitlines()[-1]  # after Django's shell banner
    assert origin == str(site_packages / "toolweaver_site" / "templates" / "admin" / "base_site.html")
