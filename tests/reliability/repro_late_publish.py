"""Reproduces a daemon bug by hand (not part of CTest: it hogs one core).

The contract: a creator that has not published within creation_timeout_ms
loses the role and its token; a session whose TTL passes without KeepAlive
ends and releases what it held. The daemon revokes both only when its timer
thread fires, and Publish checks neither deadline. So when the daemon is
short of CPU, a Publish that arrives after the deadline has surely passed
is accepted.

Each try: Acquire with creation_timeout_ms=100, note when the CREATE answer
arrived (the grant, and so the deadline's start, came before), Publish
PAST_MS later. Likewise with a session opened with ttl_ms=100 and never
renewed. Every such Publish must be refused; the script counts those that
were accepted and exits 1 if any was.

Usage: /usr/bin/python3 repro_late_publish.py [PAST_MS] [HOGS] [SECONDS]
       (defaults 103 4 8; DOGPILED_BIN picks the binary)
"""
import collections
import subprocess
import sys
import threading
import time

import settings
from harness import Daemon, dogpile_pb2, sessions_pb2
import grpc

HOG = "import os; os.sched_setaffinity(0, {0})\nwhile True: pass"


def tries(daemon, past, until, counts, lock):
    sessions, dogpile = daemon.sessions, daemon.dogpile
    long_lived = sessions.Open(sessions_pb2.OpenRequest(ttl_ms=600_000)).session_id
    n = 0
    while time.monotonic() < until:
        n += 1
        for kind in ("creation_timeout", "session_ttl"):
            key = f"{kind}-{threading.get_ident()}-{n}"
            if kind == "session_ttl":
                sid = sessions.Open(sessions_pb2.OpenRequest(ttl_ms=100)).session_id
                start = time.monotonic()  # the lease began before this
                timeout = 0  # the default, 30 s
            else:
                sid, timeout = long_lived, 100
            got = dogpile.Acquire(dogpile_pb2.AcquireRequest(
                registry="repro", key=key.encode(), session_id=sid, expire_ms=-1,
                creation_timeout_ms=timeout))
            if kind == "creation_timeout":
                start = time.monotonic()  # the grant came before this
            time.sleep(max(0.0, start + past - time.monotonic()))
            try:
                daemon.publish(sid, got.token, b"late", key=key, registry="repro")
                outcome = "ACCEPTED"
            except grpc.RpcError as e:
                outcome = e.code().name
            with lock:
                counts[(kind, outcome)] += 1


def main():
    past = float(sys.argv[1] if len(sys.argv) > 1 else 103) / 1000
    hogs = int(sys.argv[2]) if len(sys.argv) > 2 else 4
    seconds = float(sys.argv[3]) if len(sys.argv) > 3 else 8
    daemon = Daemon()
    hogging = []
    try:
        daemon.start()
        # The daemon and the hogs share core 0; the clients run elsewhere.
        subprocess.run(["taskset", "-a", "-p", "-c", "0", str(daemon.proc.pid)],
                       check=True, stdout=subprocess.DEVNULL)
        hogging = [subprocess.Popen([settings.PYTHON, "-c", HOG]) for _ in range(hogs)]
        counts, lock = collections.Counter(), threading.Lock()
        until = time.monotonic() + seconds
        threads = [threading.Thread(target=tries, args=(daemon, past, until, counts, lock))
                   for _ in range(20)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        for hog in hogging:
            hog.kill()
            hog.wait()
        daemon.cleanup()
    for (kind, outcome), n in sorted(counts.items()):
        print(f"{kind:16} (100 ms) publish sent {past * 1000:.0f} ms after it began: "
              f"{outcome} x{n}")
    sys.exit(1 if any(o == "ACCEPTED" for _, o in counts) else 0)


if __name__ == "__main__":
    main()
