"""Custom check functions the tests point services at (by dotted path)."""

import threading
import time

release = threading.Event()


def ok(service):
    return None


def returns_false(service):
    return False


def raises(service):
    raise RuntimeError("the backend is on fire")


def slow(service):
    time.sleep(0.3)


def hangs(service):
    release.wait(30)  # until the test lets go
