"""Every management command of the project, given a bad argument, exits non-zero with one clear line and no
traceback (docs/reliability-faults.md, "Management commands").

The commands are found, not listed: every command of the project's apps that ``get_commands()`` knows, so a
command added later is checked too. Each is run the way ``manage.py`` runs it (``ManagementUtility``, which
is ``manage.py``'s ``main``), in this process to stay fast; one case runs as a real ``manage.py`` process
to pin the exit code and stderr a shell sees.

The one line: for an argument argparse refuses, Django prints argparse's usage and then the line
``manage.py <command>: error: <what is wrong>`` (exit 2); for a value the command refuses, the line
``CommandError: <what is wrong>`` (exit 1).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import ManagementUtility, get_commands, load_command_class

ROOT = Path(__file__).resolve().parents[1]
PROJECT_APPS = ("analytics", "monitoring", "alerts", "toolweaver_site")
PROJECT_COMMANDS = sorted(name for name, app in get_commands().items() if app in PROJECT_APPS)

# Values each command's own code refuses (argparse accepts them): the command must say so as a CommandError.
REFUSED_VALUES: dict[str, list[str]] = {
    "check_alerts": ["--interval", "0"],
    "send_notifications": ["--interval", "-5"],
    "seed_demo": ["--days", "0"],
    "create_api_token": ["--org", "Not A Slug!"],
    "track_analytics": ["--period", "day", "--start", "yesterday-ish"],
    "run_health_checks": ["--service", "no-such-service"],
    "grafana_sync": ["--url", ""],
    "backup": ["--keep", "0"],
    "restore": ["/nonexistent/backup.file", "--noinput"],
    "export": ["--what", "no-such-stream"],
}


def run_command(argv: list[str], capsys) -> tuple[int, str]:
    """``manage.py <argv>`` in this process: its exit status and stderr."""
    try:
        ManagementUtility(["manage.py", *argv]).execute()
        status = 0
    except SystemExit as exit_:
        status = exit_.code if isinstance(exit_.code, int) else 1
    return status, capsys.readouterr().err


def error_lines(stderr: str) -> list[str]:
    """The lines of stderr that state an error (argparse's usage lines around them are not errors)."""
    return [line for line in stderr.splitlines() if "error:" in line.lower()]


def parser_of(name: str) -> argparse.ArgumentParser:
    return load_command_class(get_commands()[name], name).create_parser("manage.py", name)


def required_arguments(name: str) -> list[str]:
    """The command's required arguments and options, each with a placeholder value: so that only the bad
    argument is bad."""
    arguments = []
    for action in parser_of(name)._actions:
        if action.required and action.option_strings:
            arguments += [action.option_strings[-1], "placeholder"]
        elif action.required:  # a positional argument
            arguments.append("placeholder")
    return arguments


def typed_options(name: str) -> list[list[str]]:
    """For each option of the command that takes a typed value (int, float, a choice): a bad value of it."""
    bad = []
    for action in parser_of(name)._actions:
        option = next((flag for flag in action.option_strings if flag.startswith("--")), None)
        if option is None or isinstance(action, argparse._HelpAction) or action.nargs == 0:
            continue
        if action.choices:
            bad.append([option, "no-such-choice"])
        elif action.type in (int, float):
            bad.append([option, "not-a-number"])
    # Django's own options every command has: a typed one of them stands for the rest.
    return [args for args in bad if args[0] not in ("--verbosity", "--traceback")] or [["--verbosity", "9"]]


def test_the_project_has_commands_to_check():
    assert {"check_alerts", "cleanup_old_data", "seed_demo", "send_notifications"} <= set(PROJECT_COMMANDS)
    assert set(REFUSED_VALUES) <= set(PROJECT_COMMANDS)


@pytest.mark.django_db
@pytest.mark.parametrize("name", PROJECT_COMMANDS)
def test_an_unknown_option_exits_2_with_one_error_line(name, capsys):
    status, stderr = run_command([name, *required_arguments(name), "--no-such-option"], capsys)
    assert status == 2, stderr
    assert "Traceback" not in stderr
    assert error_lines(stderr) == [f"manage.py {name}: error: unrecognized arguments: --no-such-option"]


@pytest.mark.django_db
@pytest.mark.parametrize(("name", "args"), [
    pytest.param(name, args, id=f"{name}{args[0]}") for name in PROJECT_COMMANDS for args in typed_options(name)])
def test_a_bad_value_for_a_typed_option_exits_2_naming_it(name, args, capsys):
    status, stderr = run_command([name, *args], capsys)
    assert status == 2, stderr
    assert "Traceback" not in stderr
    (line,) = error_lines(stderr)
    assert line.startswith(f"manage.py {name}: error: argument ") and args[0] in line, line


@pytest.mark.django_db
@pytest.mark.parametrize(("name", "args"), list(REFUSED_VALUES.items()))
def test_a_value_the_command_refuses_exits_1_with_one_command_error_line(name, args, capsys):
    status, stderr = run_command([name, *args], capsys)
    assert status == 1, stderr
    assert "Traceback" not in stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("CommandError: "), stderr


def test_a_real_manage_py_process_exits_non_zero_with_one_line():
    """What a shell sees (the in-process runs above share this code path, exits included)."""
    result = subprocess.run([sys.executable, "manage.py", "check_alerts", "--interval", "soon"], cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    line = "manage.py check_alerts: error: argument --interval: invalid float value: 'soon'"
    assert result.stderr.strip().splitlines()[-1] == line
    assert error_lines(result.stderr) == [line]
