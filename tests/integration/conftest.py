import pytest

from harness import Daemon


@pytest.fixture
def daemon():
    d = Daemon()
    try:
        yield d.start()
    finally:
        d.cleanup()


@pytest.fixture
def make_daemon():
    """Starts daemons with extra flags; all are stopped at the end."""
    started = []

    def make(*args, state_dir=None):
        d = Daemon(*args, state_dir=state_dir)
        started.append(d)
        return d.start()

    try:
        yield make
    finally:
        for d in started:
            d.cleanup()
