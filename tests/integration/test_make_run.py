"""`make run`'s program serves the admin with demo data, and Ctrl-C leaves nothing behind."""

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.servers import free_port, wait_for

ROOT = Path(__file__).resolve().parents[2]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead for our purpose.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except FileNotFoundError:
        return False


def _descendants(pid: int) -> set[int]:
    children = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except (FileNotFoundError, ProcessLookupError):
                continue
            if int(fields[1]) == pid:
                child = int(entry.name)
                children |= {child} | _descendants(child)
    return children


def test_run_serves_the_admin_and_ctrl_c_stops_everything(tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "TOOLWEAVER_TEST_DB_NAME"}}
    env.update(TOOLWEAVER_DATA_DIR=str(tmp_path), ANALYTICS_DB_PATH=str(tmp_path / "analytics.db"))
    env.pop("DJANGO_DEBUG", None)
    log = open(tmp_path / "run.log", "w")  # noqa: SIM115
    process = subprocess.Popen(
        [sys.executable, "-m", "toolweaver_site.devserver", "--port", str(port), "--days", "2"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        def admin_login_page():
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/admin/login/", timeout=2) as response:
                return response.status == 200 and b"ToolWeaver Analytics" in response.read()

        wait_for(admin_login_page, 120, "the admin login page", interval=0.5)
        children = _descendants(process.pid)
        assert len(children) >= 2  # web server and worker
        output = (tmp_path / "run.log").read_text()
        assert f"http://127.0.0.1:{port}/admin/" in output and "password" in output
        assert (tmp_path / "demo-tokens.txt").exists()

        # The worker with beat comes up too (it logs "ready." once connected to the broker).
        wait_for(lambda: "ready." in (tmp_path / "run.log").read_text(), 60, "the worker")
        process.send_signal(signal.SIGINT)
        process.wait(timeout=40)
        time.sleep(0.5)
        assert not [pid for pid in children if _alive(pid)]
    finally:
        if process.poll() is None:
            process.kill()
        log.close()
