"""How soon do waiters get a value once its creator stored it?

dogpile.cache's redis backend polls its lock every lock_sleep (0.1 s);
dogpiled answers parked waiters when the value is published. Each round,
WAITERS regions (separate sessions or lock objects, like separate processes)
ask for a missing key while one creator works for CREATE_S; we record, per
waiter, the time from the end of the creator's set() to its own return.

    /usr/bin/python3 python/bench/wakeup.py [--rounds 5]

Starts its own dogpiled (build/server/dogpiled or $DOGPILED_BIN) and
redis-server on loopback; needs python3-redis for the redis side.
"""
import argparse
import importlib.util
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

# grpcio and dogpile.cache come from Debian's packages: under another
# python3 that lacks them, run again under Debian's.
if sys.executable != "/usr/bin/python3" and not importlib.util.find_spec("grpc"):
    os.execv("/usr/bin/python3", ["/usr/bin/python3", *sys.argv])

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))

from dogpile.cache import make_region  # noqa: E402

from support import Daemon  # noqa: E402  (also registers the backend)

WAITERS = 8
CREATE_S = 0.2


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def one_round(make, key):
    regions = [make() for _ in range(WAITERS + 1)]
    stored_at = []
    returned_at = [None] * WAITERS
    creating = threading.Event()

    def creator():
        creating.set()
        time.sleep(CREATE_S)
        return "value"

    class Stamp:  # records when the creator's set() returned
        def __init__(self, backend):
            self.backend = backend

        def __getattr__(self, name):
            return getattr(self.backend, name)

        def set_serialized(self, key, value):
            self.backend.set_serialized(key, value)
            stored_at.append(time.perf_counter())

    regions[0].backend = Stamp(regions[0].backend)
    first = threading.Thread(target=regions[0].get_or_create,
                             args=(key, creator))
    first.start()
    creating.wait()

    def wait(i):
        regions[i + 1].get_or_create(key, creator)
        returned_at[i] = time.perf_counter()
    threads = [threading.Thread(target=wait, args=(i,))
               for i in range(WAITERS)]
    for t in threads:
        t.start()
    for t in [first, *threads]:
        t.join()
    return [r - stored_at[0] for r in returned_at]


def report(name, make, rounds):
    lags = []
    for r in range(rounds):
        lags += one_round(make, f"k{r}-{time.time()}")
    lags.sort()
    print(f"{name:28s} waiters served after the store: median "
          f"{statistics.median(lags) * 1000:6.1f} ms, p90 "
          f"{lags[int(len(lags) * 0.9)] * 1000:6.1f} ms, max "
          f"{lags[-1] * 1000:6.1f} ms ({len(lags)} waits)")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        daemon = Daemon(tmp).start()
        port = free_port()
        redis = subprocess.Popen(
            ["redis-server", "--port", str(port), "--save", "",
             "--appendonly", "no"], stdout=subprocess.DEVNULL)
        try:
            time.sleep(0.3)  # redis-server has no readiness file
            report("dogpiled", lambda: make_region().configure(
                "dogpiled", expiration_time=60,
                arguments={"address": daemon.address, "registry": "bench"}),
                args.rounds)
            report("redis, distributed_lock", lambda: make_region().configure(
                "dogpile.cache.redis", expiration_time=60,
                arguments={"port": port, "distributed_lock": True,
                           "thread_local_lock": False}), args.rounds)
        finally:
            redis.terminate()
            redis.wait()
            daemon.stop()


if __name__ == "__main__":
    main()
