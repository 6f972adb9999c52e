"""Custom check functions the tests point services at (by dotted path)."""

import threading
import time


def ok(service):
    return None


def returns_false(service):
    return False


def raises(service):
    raise RuntimeError("the backend is on fire")


def slow(service):
    time.sleep(0.3)


class Meeting:
    """Checks that can only succeed if they all run at the same time.

    Each ``meet_*`` check first waits at a barrier until every party has arrived, so a runner that ran
    them one after another would break the barrier (``BrokenBarrierError``) instead of passing it.
    """

    def __init__(self, parties: int = 1):
        self.barrier = threading.Barrier(parties, timeout=20)
        self.release = threading.Event()  # lets ``meet_then_hang`` return
        self.hang_returned = threading.Event()

    def reset(self, parties: int) -> None:
        self.__init__(parties)


meeting = Meeting()


def meet_then_ok(service):
    meeting.barrier.wait()


def meet_then_raise(service):
    meeting.barrier.wait()
    raise RuntimeError("the backend is on fire")


def meet_then_hang(service):
    meeting.barrier.wait()
    try:
        meeting.release.wait(30)  # until the test lets go
    finally:
        meeting.hang_returned.set()
