"""Real servers for the tests, started from this machine's binaries and stopped by their own pid.

Each server lives in a throw-away directory, listens on a unix socket or on a
loopback port picked at run time, and is stopped by the pid it wrote itself.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def missing_server(reason: str):
    """Skip, except under CI, where a missing server must fail the run."""
    if in_ci():
        pytest.fail(f"{reason} (CI=true: a missing server is a failure, not a skip)")
    pytest.skip(reason)


def find_binary(name: str, extra_globs: tuple[str, ...] = ()) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    for pattern in extra_globs:
        matches = sorted(glob.glob(pattern))
        if matches:
            return matches[-1]
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServerDied(RuntimeError):
    pass


def wait_for(predicate, timeout: float, what: str, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    last_error = None
    while time.monotonic() < deadline:
        try:
            result = predicate()
            if result:
                return result
        except ServerDied:
            raise
        except Exception as error:  # the server is not up yet
            last_error = error
        time.sleep(interval)
    raise TimeoutError(f"{what} not ready after {timeout}s (last error: {last_error})")


def stop_pid(pid: int, sig=signal.SIGTERM, timeout: float = 15.0) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        try:  # reap it if it is our child
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                return
        except ChildProcessError:
            pass
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)


# --- PostgreSQL ------------------------------------------------------------------


@dataclass
class PostgresServer:
    base: Path
    socket_dir: Path
    pid: int
    user: str = "postgres"

    def url(self, database: str = "postgres") -> str:
        return f"postgres://{self.user}@/{database}?host={self.socket_dir}"

    command: tuple[str, ...] = ()  # how it was started, for start_again()

    def stop(self) -> None:
        stop_pid(self.pid, signal.SIGINT)  # "fast" shutdown
        shutil.rmtree(self.base, ignore_errors=True)

    def stop_keeping_data(self) -> None:
        """A database outage: the server stops ("fast": open connections are cut), its data stays."""
        stop_pid(self.pid, signal.SIGINT)

    def start_again(self) -> None:
        """The same server back, on the same data and socket, after stop_keeping_data()."""
        self.pid = _launch_postgres(list(self.command), self.base)


def _launch_postgres(command: list[str], base: Path) -> int:
    """Start ``command`` (a postgres server on ``base / "data"``), wait until it is ready; its pid."""
    log = open(base / "postgres.log", "ab")  # noqa: SIM115 - handed to the server process
    process = subprocess.Popen(command, stdout=log, stderr=log, start_new_session=True)
    pid_file = base / "data" / "postmaster.pid"

    def ready():
        if process.poll() is not None:
            raise ServerDied((base / "postgres.log").read_text()[-2000:])
        return pid_file.exists() and "ready" in pid_file.read_text()

    wait_for(ready, 30, "PostgreSQL")
    return int(pid_file.read_text().splitlines()[0])


def start_postgres(settings: dict | None = None) -> PostgresServer:
    # Besides PATH: Debian's versioned directories, or TOOLWEAVER_POSTGRES_BINDIR (a glob) instead of them.
    pg_globs = (os.environ.get("TOOLWEAVER_POSTGRES_BINDIR", "/usr/lib/postgresql/*/bin").rstrip("/") + "/{}",)
    initdb = find_binary("initdb", tuple(g.format("initdb") for g in pg_globs))
    postgres = find_binary("postgres", tuple(g.format("postgres") for g in pg_globs))
    if not initdb or not postgres:
        raise FileNotFoundError("PostgreSQL server binaries (initdb, postgres) not found")
    base = Path(tempfile.mkdtemp(prefix="tw-pg-"))
    data, sockets = base / "data", base / "sock"
    sockets.mkdir()
    run_as: list[str] = []
    if os.geteuid() == 0:  # initdb refuses to run as root
        account = pwd.getpwnam("postgres")
        for path in (base, sockets):
            os.chown(path, account.pw_uid, account.pw_gid)
        run_as = ["runuser", "-u", "postgres", "--"]
    subprocess.run(
        [*run_as, initdb, "-D", str(data), "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8"],
        check=True, capture_output=True,
    )
    options = {
        "listen_addresses": "", "unix_socket_directories": str(sockets), "fsync": "off",
        "synchronous_commit": "off", "full_page_writes": "off", "max_connections": "100",
        **(settings or {}),
    }
    args = [arg for key, value in options.items() for arg in ("-c", f"{key}={value}")]
    command = [*run_as, postgres, "-D", str(data), *args]
    return PostgresServer(base=base, socket_dir=sockets, pid=_launch_postgres(command, base), command=tuple(command))


# --- Redis -------------------------------------------------------------------------


@dataclass
class RedisServer:
    base: Path
    port: int
    pid: int

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def stop(self) -> None:
        stop_pid(self.pid)
        shutil.rmtree(self.base, ignore_errors=True)


def start_redis() -> RedisServer:
    binary = find_binary("redis-server")
    if not binary:
        raise FileNotFoundError("redis-server not found")
    base = Path(tempfile.mkdtemp(prefix="tw-redis-"))
    port = free_port()
    pid_file = base / "redis.pid"
    subprocess.run(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--daemonize", "yes", "--pidfile", str(pid_file),
         "--dir", str(base), "--save", "", "--appendonly", "no", "--logfile", str(base / "redis.log")],
        check=True,
    )

    def ready():
        with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG") and pid_file.exists()

    wait_for(ready, 15, "Redis")
    return RedisServer(base=base, port=port, pid=int(pid_file.read_text().strip()))


# --- Processes of our own -------------------------------------------------------------


def database_env(settings_dict: dict) -> dict[str, str]:
    """Environment that points a child process at the database the test uses."""
    if settings_dict["ENGINE"].endswith("sqlite3"):
        return {"ANALYTICS_DB_PATH": settings_dict["NAME"], "DATABASE_URL": "", "ANALYTICS_DB_URL": ""}
    host = settings_dict.get("HOST") or settings_dict["OPTIONS"].get("host", "")
    url = f"postgres://{settings_dict['USER']}@/{settings_dict['NAME']}?host={host}"
    return {"DATABASE_URL": url}


# --- The platform's own web server ------------------------------------------------------


@dataclass
class WebServer:
    """A gunicorn serving ``toolweaver_site.wsgi`` on a loopback port, stopped by its master's pid."""

    base: Path
    port: int
    pid: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except FileNotFoundError:
            return ""

    def stop(self) -> None:
        stop_pid(self.pid)  # SIGTERM: gunicorn's graceful shutdown stops its worker too


def web_servers(start: Callable[..., WebServer]):
    """A fixture's factory of web servers: each started by ``start(**options)``, all stopped by pid after.

    A missing gunicorn is ``missing_server``; one that does not come up fails the test.
    """
    started: list[WebServer] = []

    def start_one(**options) -> WebServer:
        try:
            server = start(len(started), **options)
        except FileNotFoundError as error:
            missing_server(str(error))
        except (ServerDied, TimeoutError) as error:
            pytest.fail(f"the web server did not start: {error}")
        started.append(server)
        return server

    try:
        yield start_one
    finally:
        for server in started:
            server.stop()


def start_web_server(env: dict[str, str], base: Path, *, cwd: Path, threads: int = 2, workers: int = 1,
                     timeout: float = 60) -> WebServer:
    """Start gunicorn (one worker unless told) in the virtualenv of this test run and wait for ``/healthz``.

    ``env`` is the child's whole environment (database, data directory, secrets); ``base`` a directory for
    the pid file and the log. The pid is the one gunicorn wrote itself.
    """
    import sys
    import urllib.request

    gunicorn = Path(sys.executable).with_name("gunicorn")
    if not gunicorn.exists():
        raise FileNotFoundError(f"gunicorn not found beside {sys.executable}")
    base.mkdir(parents=True, exist_ok=True)
    port = free_port()
    pid_file, log_path = base / "gunicorn.pid", base / "gunicorn.log"
    log = open(log_path, "wb")  # noqa: SIM115 - handed to the server process
    process = subprocess.Popen(
        [str(gunicorn), "toolweaver_site.wsgi:application", "--bind", f"127.0.0.1:{port}", "--workers", str(workers),
         "--threads", str(threads), "--timeout", "120", "--graceful-timeout", "5", "--pid", str(pid_file),
         "--no-control-socket", "--error-logfile", "-"],
        cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    log.close()

    def healthy():
        if process.poll() is not None:
            raise ServerDied(f"gunicorn exited with {process.returncode}:\n{log_path.read_text()[-4000:]}")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
            return response.status == 200 and pid_file.exists() and pid_file.read_text().strip()

    try:
        wait_for(healthy, timeout, "gunicorn /healthz", interval=0.2)
    except BaseException:
        stop_pid(process.pid)
        raise
    return WebServer(base=base, port=port, pid=int(pid_file.read_text().strip()), log=log_path)
