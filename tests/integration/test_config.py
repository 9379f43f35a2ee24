"""Configuration sources and their one order: flags > environment > file > defaults.

Also the JSON log format, since the effective configuration is read back
from the start-up log line.
"""
import json
import re
import subprocess
import tomllib

import grpc
import pytest

from harness import BINARY, ROOT, sessions_pb2, wait_until

EXAMPLE = ROOT / "deploy" / "dogpiled.toml"
JSON_INFO = ("--log-format", "json", "--log-level", "info")


def json_lines(text):
    """Every line must be one JSON object; returns them."""
    records = []
    for line in text.splitlines():
        record = json.loads(line)  # raises on any line that is not JSON
        assert set(record) == {"time", "level", "thread", "msg"}, record
        records.append(record)
    return records


def effective(log_text):
    """The settings of the start-up line, as {name: value} strings."""
    for record in json_lines(log_text):
        if record["msg"].startswith("dogpiled starting: "):
            pairs = record["msg"][len("dogpiled starting: "):].split(" ")
            return dict(p.split("=", 1) for p in pairs)
    raise AssertionError(f"no start-up line in {log_text!r}")


def test_flags_beat_environment_beat_file_beat_defaults(make_daemon, tmp_path, monkeypatch):
    conf = tmp_path / "d.toml"
    conf.write_text('default-ttl-ms = 1111\nmin-ttl-ms = 50\nmax-sessions = 7\n')
    monkeypatch.setenv("DOGPILED_DEFAULT_TTL_MS", "2222")  # beats the file
    monkeypatch.setenv("DOGPILED_MIN_TTL_MS", "60")        # loses to the flag
    d = make_daemon("--config", str(conf), "--min-ttl-ms", "70", *JSON_INFO)
    got = effective(d.read_log())
    assert got["config"] == str(conf)
    assert (got["default_ttl_ms"], got["min_ttl_ms"], got["max_sessions"]) == ("2222", "70", "7")
    assert got["max_ttl_ms"] == "3600000"  # nobody set it: the default
    # And the daemon really runs with them, not only prints them.
    assert d.sessions.Open(sessions_pb2.OpenRequest()).ttl_ms == 2222
    with pytest.raises(grpc.RpcError) as below_min:
        d.sessions.Open(sessions_pb2.OpenRequest(ttl_ms=65))
    assert "between 70 and" in below_min.value.details()


def test_config_file_named_by_environment(make_daemon, tmp_path, monkeypatch):
    conf = tmp_path / "d.toml"
    conf.write_text('default-ttl-ms = 3333\n')
    monkeypatch.setenv("DOGPILED_CONFIG", str(conf))
    d = make_daemon(*JSON_INFO)
    assert effective(d.read_log())["config"] == str(conf)
    assert d.sessions.Open(sessions_pb2.OpenRequest()).ttl_ms == 3333


def test_empty_environment_value_means_empty(make_daemon, monkeypatch):
    # "--metrics-listen=" style empty values once swallowed the next argument.
    monkeypatch.setenv("DOGPILED_METRICS_LISTEN", "")
    d = make_daemon("--metrics-listen=", *JSON_INFO)
    got = effective(d.read_log())
    assert got["metrics_listen"] == ""
    assert got["log_format"] == "json"


def test_unknown_key_in_file_is_an_error(tmp_path):
    conf = tmp_path / "d.toml"
    conf.write_text('default-ttl = 5\n')  # misspelt: default-ttl-ms
    run = subprocess.run([BINARY, "--config", str(conf), "--listen", "127.0.0.1:0"],
                         capture_output=True, text=True, timeout=30)
    assert run.returncode != 0
    assert "default-ttl" in run.stdout + run.stderr


def test_documented_example_file_is_what_the_daemon_runs_with(make_daemon, tmp_path):
    example = tomllib.loads(EXAMPLE.read_text())
    assert len(example) >= 10, "the example should show most settings"
    # Flags override what would clash on a test machine; the rest is the file's.
    overridden = {"listen", "state-dir", "metrics-listen", "log-format", "log-level"}
    d = make_daemon("--config", str(EXAMPLE), "--state-dir", str(tmp_path / "state"),
                    "--metrics-listen", "", *JSON_INFO)
    got = effective(d.read_log())
    for key, val in example.items():
        name = key.replace("-", "_")
        assert name in got, f"start-up line lacks {name}"
        if key not in overridden:
            want = str(val).lower() if isinstance(val, bool) else str(val)  # TOML's spelling
            assert got[name] == want, key
    # Complete both ways: every setting the daemon has is shown in the example.
    help_text = subprocess.run([BINARY, "--help"], capture_output=True, text=True).stdout
    flags = set(re.findall(r"^\s+--([a-z0-9-]+)", help_text, re.MULTILINE))
    assert set(example) <= flags
    per_run = {"help", "config", "port-file", "metrics-port-file"}
    assert flags - per_run - set(example) == set(), "settings missing from deploy/dogpiled.toml"


def test_every_json_log_line_parses_whatever_was_logged(make_daemon):
    nasty = 'a "quoted" \\ back\tslash\nnewline \x01 é'
    d = make_daemon("--log-format", "json", "--log-level", "debug")
    sid = d.sessions.Open(sessions_pb2.OpenRequest(ttl_ms=100, client_name=nasty)).session_id
    r = d.dogpile.Acquire(d.acquire(sid, key='k"ey\\'))
    d.publish(sid, r.token, b"v", key='k"ey\\')
    wait_until(lambda: d.stats().session_expiries == 1, what="the session to expire")
    d.stop()
    records = json_lines(d.read_log())
    messages = [r["msg"] for r in records]
    assert any(nasty in m for m in messages), messages  # the expiry line, intact
    assert any('k"ey\\' in m for m in messages), messages  # the creator line (debug)
    assert {r["level"] for r in records} >= {"info", "debug"}


def test_json_log_replaces_bytes_that_are_not_utf8(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    bad = bytes(blocker) + b'/x\xff"y'
    run = subprocess.run([BINARY, "--log-format", "json", "--listen", "127.0.0.1:0",
                          "--metrics-listen", "", "--state-dir", bad],
                         capture_output=True, timeout=30)
    assert run.returncode != 0
    text = run.stdout.decode("utf-8")  # strict: fails on a raw \xff
    records = json_lines(text)
    assert any('\ufffd"y' in r["msg"] for r in records if r["level"] == "critical"), records


@pytest.mark.parametrize("flag,value", [("--log-format", "xml"), ("--log-level", "loud")])
def test_bad_log_settings_fail_clearly(flag, value):
    run = subprocess.run([BINARY, flag, value, "--listen", "127.0.0.1:0"],
                         capture_output=True, text=True, timeout=30)
    assert run.returncode != 0
    assert flag in run.stderr and value in run.stderr
