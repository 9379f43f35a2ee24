#!/usr/bin/python3
"""Slow-disk scenario (issue 10): does a slow volume stall the hot path?

Starts dogpiled twice on loopback, once on a healthy disk and once with every
fsync slowed to --fsync-ms (300 ms, as a contended cloud volume) by the
LD_PRELOAD shim tests/faults/fsync_shim.cc. In each run one thread publishes
new keys back to back while another reads one fresh key as fast as it can;
it reports the reads' p50/p99/max, how many publishes went through, and the
daemon's CPU per call. Uses Debian's python3-grpcio and the stubs of the
build; pinned to /usr/bin/python3 for them.

  bench/slow_disk.py [--seconds 10] [--fsync always|everysec] [--build build]

Asserts nothing: the figures go into docs/benchmarks.md.
"""
import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time

import grpc


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(build, fsync, seconds, delay_ms):
    sys.path.insert(0, os.path.join(build, "python_stubs"))
    from dogpiled.v1 import dogpile_pb2, dogpile_pb2_grpc  # noqa: E402
    from dogpiled.v1 import sessions_pb2, sessions_pb2_grpc  # noqa: E402
    tmp = tempfile.mkdtemp(prefix="dogpiled-slowdisk-")
    port_file = os.path.join(tmp, "port")
    env = dict(os.environ)
    if delay_ms:
        env.update(LD_PRELOAD=os.path.join(build, "tests", "libdogpiled_fsync_shim.so"),
                   DOGPILED_FAULT_FSYNC_DELAY_MS=str(delay_ms))
    proc = subprocess.Popen(
        [os.path.join(build, "server", "dogpiled"), "--listen", "127.0.0.1:0",
         "--port-file", port_file, "--state-dir", os.path.join(tmp, "state"),
         "--metrics-listen", "", "--log-level", "warn", "--fsync", fsync],
        env=env)
    try:
        deadline = time.monotonic() + 60
        while not (os.path.exists(port_file) and open(port_file).read().endswith("\n")):
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("dogpiled did not start")
            time.sleep(0.02)
        target = "127.0.0.1:" + open(port_file).read().strip()
        reader_ch, writer_ch = grpc.insecure_channel(target), grpc.insecure_channel(target)
        sess = sessions_pb2_grpc.SessionsStub(reader_ch)
        rd, wr = dogpile_pb2_grpc.DogpileStub(reader_ch), dogpile_pb2_grpc.DogpileStub(writer_ch)
        s = sess.Open(sessions_pb2.OpenRequest(ttl_ms=600_000)).session_id

        def acquire(stub, key):
            return stub.Acquire(dogpile_pb2.AcquireRequest(
                registry="b", key=key, session_id=s, expire_ms=600_000), timeout=30)

        hot = acquire(rd, b"hot")
        rd.Publish(dogpile_pb2.PublishRequest(registry="b", key=b"hot", session_id=s,
                                              token=hot.token, value=b"v" * 64), timeout=30)
        stop = threading.Event()
        published = [0]

        def publisher():
            i = 0
            while not stop.is_set():
                key = f"new{i}".encode()
                got = acquire(wr, key)
                wr.Publish(dogpile_pb2.PublishRequest(registry="b", key=key, session_id=s,
                                                      token=got.token, value=b"x" * 64),
                           timeout=30)
                published[0] += 1
                i += 1

        t = threading.Thread(target=publisher)
        cpu0 = cpu_seconds(proc.pid)
        t.start()
        lat = []
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            t0 = time.perf_counter()
            assert acquire(rd, b"hot").outcome == dogpile_pb2.AcquireResponse.OUTCOME_FRESH
            lat.append(time.perf_counter() - t0)
        stop.set()
        t.join()
        cpu = cpu_seconds(proc.pid) - cpu0
        lat.sort()
        calls = len(lat) + 2 * published[0]
        return dict(reads=len(lat), p50=lat[len(lat) // 2] * 1e3,
                    p99=lat[int(len(lat) * 0.99)] * 1e3, max=lat[-1] * 1e3,
                    publishes=published[0], cpu_us_per_call=cpu / max(calls, 1) * 1e6)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--build", default=os.path.join(os.path.dirname(__file__), "..", "build"))
    p.add_argument("--seconds", type=float, default=10)
    p.add_argument("--fsync", default="always", choices=["always", "everysec"])
    p.add_argument("--fsync-ms", type=int, default=300)
    args = p.parse_args()
    print(f"| disk | fsync | fresh reads | p50 ms | p99 ms | max ms | publishes | server CPU us/call |")
    print("|---|---|---|---|---|---|---|---|")
    for label, delay in (("healthy", 0), (f"fsync +{args.fsync_ms} ms", args.fsync_ms)):
        r = run(os.path.abspath(args.build), args.fsync, args.seconds, delay)
        print(f"| {label} | {args.fsync} | {r['reads']} | {r['p50']:.2f} | {r['p99']:.2f} | "
              f"{r['max']:.2f} | {r['publishes']} | {r['cpu_us_per_call']:.1f} |", flush=True)


if __name__ == "__main__":
    main()
