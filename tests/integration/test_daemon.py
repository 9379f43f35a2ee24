"""The daemon binary: health, reflection, flags, graceful shutdown."""
import signal
import subprocess

import grpc
import pytest

from harness import BINARY, CREATE, Daemon, wait_until

IDENTITY = (lambda b: b, lambda b: b)


def test_health_service_reports_serving(daemon):
    check = daemon.channel.unary_unary("/grpc.health.v1.Health/Check", *IDENTITY)
    assert check(b"", timeout=5) == b"\x08\x01"  # status: SERVING


def test_reflection_lists_our_services(daemon):
    info = daemon.channel.stream_stream(
        "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", *IDENTITY)
    reply = b"".join(info(iter([b"\x3a\x00"]), timeout=5))  # list_services: ""
    for service in (b"dogpiled.v1.Sessions", b"dogpiled.v1.Dogpile",
                    b"dogpiled.v1.RWMutex", b"dogpiled.v1.Admin"):
        assert service in reply


def test_help_lists_every_limit_with_its_environment_variable():
    out = subprocess.run([BINARY, "--help"], capture_output=True, text=True, check=True).stdout
    for flag in ("--listen", "--state-dir", "--log-level", "--default-ttl-ms", "--min-ttl-ms",
                 "--max-ttl-ms", "--default-creation-timeout-ms", "--invalidation-horizon-ms",
                 "--max-key-bytes", "--max-value-bytes", "--memory-budget-bytes",
                 "--max-sessions", "--max-waiters", "--max-waiters-per-key", "--config"):
        assert flag in out, flag
    assert "DOGPILED_MAX_VALUE_BYTES" in out


def test_environment_sets_limits(tmp_path):
    import os
    d = Daemon()
    os.environ["DOGPILED_DEFAULT_TTL_MS"] = "1234"
    try:
        d.start()
        assert d.sessions.Open(__import__("harness").sessions_pb2.OpenRequest()).ttl_ms == 1234
    finally:
        del os.environ["DOGPILED_DEFAULT_TTL_MS"]
        d.cleanup()


def test_unwritable_state_dir_fails_clearly(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    run = subprocess.run([BINARY, "--listen", "127.0.0.1:0", "--state-dir", str(blocker / "x")],
                         capture_output=True, text=True, timeout=30)
    assert run.returncode != 0
    assert "state-dir" in run.stdout + run.stderr


def test_sigterm_answers_parked_calls_unavailable_and_exits_zero():
    d = Daemon()
    try:
        d.start()
        creator = d.open()
        assert d.dogpile.Acquire(d.acquire(creator)).outcome == CREATE
        s = d.open()
        parked = [d.dogpile.Acquire.future(d.acquire(s, wait_timeout_ms=60_000))
                  for _ in range(20)]
        wait_until(lambda: d.stats().waiters == 20, what="20 parked")
        d.proc.send_signal(signal.SIGTERM)
        for f in parked:
            with pytest.raises(grpc.RpcError) as e:
                f.result(timeout=10)
            assert e.value.code() == grpc.StatusCode.UNAVAILABLE
        assert d.proc.wait(timeout=15) == 0
    finally:
        d.cleanup()
