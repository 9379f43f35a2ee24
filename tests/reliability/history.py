"""Append-only JSONL histories, written by workers and the nemesis, read by
the checker.

Every event carries `t`, time.monotonic() in seconds: CLOCK_MONOTONIC is one
clock for every process on the machine (the daemon's steady_clock too), so
times from different files compare directly.
"""
import json
import threading
import time


class History:
    """One process's history file. Safe to call from any thread."""

    def __init__(self, path):
        # Line-buffered: each event reaches the kernel with its newline, so a
        # SIGKILL loses at most the line being written.
        self._file = open(path, "a", buffering=1, encoding="utf-8")
        self._lock = threading.Lock()

    def log(self, ev, t=None, **fields):
        fields["ev"] = ev
        fields["t"] = time.monotonic() if t is None else t
        line = json.dumps(fields, separators=(",", ":"))
        with self._lock:
            self._file.write(line + "\n")
        return fields["t"]

    def close(self):
        with self._lock:
            self._file.close()


def load(path):
    """Returns (events, torn): torn is True when the last line is cut short
    (the writer was killed mid-line). Any other bad line raises."""
    events = []
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    # A complete file ends with a newline, so its last piece is empty.
    tail = lines.pop()
    for number, line in enumerate(lines, 1):
        try:
            events.append(json.loads(line))
        except ValueError as e:
            raise ValueError(f"{path}:{number}: {e}") from e
    return events, tail != ""
