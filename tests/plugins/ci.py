"""Under ``CI=true`` a skip is a failure, wherever it comes from.

A test whose server is missing skips outside CI (``tests.servers.missing_server``); in CI the
whole point is that everything ran, so every skip — a ``pytest.skip`` call in a test or fixture,
a ``skip``/``skipif`` marker, a module skipped at collection — is reported as a failure with its
reason. Expected failures (``xfail``) are not skips and stay as they are.
"""

from __future__ import annotations

import pytest

from tests.servers import in_ci

PREFIX = "CI=true: a skip is a failure"


def _reason(longrepr) -> str:
    if isinstance(longrepr, tuple) and len(longrepr) == 3:  # (path, line, "Skipped: reason")
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr)


def _fail_skip(report) -> None:
    if in_ci() and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"{PREFIX}: {_reason(report.longrepr)}"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    _fail_skip(report)
    return report


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector):
    report = yield
    _fail_skip(report)
    return report
