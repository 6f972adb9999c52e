"""``make run``: the whole platform on this machine, until Ctrl-C.

Migrates, loads the demo data, prints the admin login, then runs the web server
and a Celery worker with embedded beat (on kombu's filesystem transport unless
CELERY_BROKER_URL says otherwise). Ctrl-C (or SIGTERM) stops all of it: each
child runs in its own process group, which is signalled and then reaped.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time

STOP_GRACE_SECONDS = 15


def manage(*args: str, capture: bool = False) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *args], check=True, text=True,
        stdout=subprocess.PIPE if capture else None,
    )
    return result.stdout if capture else ""


def stop_all(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        if process.poll() is None:
            try:
                os.killpg(process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    for process in processes:
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
        try:  # whatever is left in the group (e.g. beat's child) goes too
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default=os.environ.get("TOOLWEAVER_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("TOOLWEAVER_PORT", "8000")))
    parser.add_argument("--no-demo", action="store_true", help="Skip loading the demo data.")
    parser.add_argument("--days", default="30", help="Days of demo history (default 30).")
    args = parser.parse_args(argv)

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "toolweaver_site.settings")
    os.environ.setdefault("DJANGO_DEBUG", "true")  # local use: runserver serves the admin's static files
    # The children see where the web server listens: the demo's HTTP service checks its /healthz.
    os.environ["TOOLWEAVER_HOST"] = args.host
    os.environ["TOOLWEAVER_PORT"] = str(args.port)

    manage("migrate", "--noinput", "-v", "0")
    if not args.no_demo:
        manage("seed_demo", "--days", args.days)
    login = manage("ensure_admin", capture=True).strip()

    stopping = {"signal": None}

    def request_stop(signum, frame):
        stopping["signal"] = signum

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)

    processes = [
        subprocess.Popen(
            [sys.executable, "manage.py", "runserver", f"{args.host}:{args.port}", "--noreload"],
            start_new_session=True,
        ),
        subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "toolweaver_site", "worker", "--beat", "--pool=solo",
             "--loglevel=INFO", "--without-gossip", "--without-mingle"],
            start_new_session=True,
        ),
    ]
    print(
        f"\n  ToolWeaver Analytics is running at http://{args.host}:{args.port}/\n"
        f"  Admin:  http://{args.host}:{args.port}/admin/  ({login})\n"
        f"  API:    http://{args.host}:{args.port}/api/docs/\n"
        f"  Pids:   {' '.join(str(p.pid) for p in processes)}   (Ctrl-C stops everything)\n",
        flush=True,
    )
    try:
        while stopping["signal"] is None and all(p.poll() is None for p in processes):
            time.sleep(0.3)
    finally:
        stop_all(processes)
    failed = [p for p in processes if p.returncode not in (0, -signal.SIGTERM, -signal.SIGKILL)]
    return 1 if failed and stopping["signal"] is None else 0


if __name__ == "__main__":
    sys.exit(main())
