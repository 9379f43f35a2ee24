"""Starts the servers a benchmark run needs on loopback, and stops them.

Every server listens on 127.0.0.1 only, keeps its data in a temporary folder,
and is stopped when the `Servers` context exits, however it exits: normal
end, exception, SIGINT/SIGTERM/SIGHUP (turned into SystemExit), and even a
SIGKILL of this script (the kernel sends the children SIGTERM through
PR_SET_PDEATHSIG).
"""

import ctypes
import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

_PR_SET_PDEATHSIG = 1


def _child_setup():
    """Runs in each child before exec: dies with us, may open many sockets."""
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(
        _PR_SET_PDEATHSIG, signal.SIGTERM)
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def free_port():
    """A port nothing listens on right now (the server binds it next)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_until(ready, what, timeout_s=90):
    # Wide: etcd takes seconds to start on a loaded machine; only a server
    # that never comes up waits it out.
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if ready():
            return
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not come up within {timeout_s} s")


class Exited(RuntimeError):
    """A server ended before it was ready."""


def _on_free_ports(start):
    """Calls start(), which picks free ports, up to three times: a port that
    was free when picked can be taken by another process (an outgoing
    connection's ephemeral port, say) before the server binds it."""
    for attempt in range(3):
        try:
            return start()
        except Exited:
            if attempt == 2:
                raise


def _stop_on_signals():
    def handler(signum, _frame):
        raise SystemExit(128 + signum)
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, handler)


class Server:
    """One started process and where it listens."""

    def __init__(self, name, proc, port, workdir):
        self.name, self.proc, self.port, self.workdir = name, proc, port, workdir

    @property
    def pid(self):
        return self.proc.pid

    @property
    def address(self):
        return f"127.0.0.1:{self.port}"


class Servers:
    """Context manager owning every server of a run. Not thread-safe: one
    thread starts and stops them."""

    def __init__(self, dogpiled, noop, keep_logs_in):
        self.dogpiled_bin, self.noop_bin = dogpiled, noop
        self.logs = keep_logs_in
        self.root = None
        self.extra_dirs = []  # removed at exit with the root
        self.running = []

    def __enter__(self):
        _stop_on_signals()
        self.root = tempfile.mkdtemp(prefix="dogpiled-bench-")
        return self

    def __exit__(self, *_exc):
        for server in list(self.running):
            self.stop(server)
        for folder in [self.root] + self.extra_dirs:
            shutil.rmtree(folder, ignore_errors=True)
        return False

    def _start(self, name, argv, port=None, port_file=None, ready=None):
        workdir = tempfile.mkdtemp(prefix=name + "-", dir=self.root)
        log = open(os.path.join(self.logs, name + ".log"), "ab")
        proc = subprocess.Popen(argv, cwd=workdir, stdout=log,
                                stderr=subprocess.STDOUT,
                                preexec_fn=_child_setup)
        log.close()
        server = Server(name, proc, port, workdir)
        self.running.append(server)

        def up():
            if proc.poll() is not None:
                self.running.remove(server)
                raise Exited(f"{name} exited with {proc.returncode}; "
                             f"see {self.logs}/{name}.log")
            if port_file:
                try:
                    with open(port_file) as f:
                        text = f.read()
                except OSError:
                    return False
                # The no-op server writes in place: whole once the newline is in.
                if not text.endswith("\n"):
                    return False
                server.port = int(text)
                return server.port > 0
            return ready(server)
        _wait_until(up, name)
        return server

    def _start_all(self, starts):
        """Calls each of `starts` (each starts one member and returns its
        Server) in order; if one fails, stops those already started."""
        started = []
        try:
            for start in starts:
                started.append(start())
        except BaseException:
            for server in started:
                self.stop(server)
            raise
        return started

    def stop(self, server):
        if server.proc.poll() is None:
            server.proc.send_signal(signal.SIGTERM)
            try:
                server.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.proc.kill()
                server.proc.wait()
        if server in self.running:
            self.running.remove(server)

    def dogpiled(self, *flags):
        """A fresh daemon, with its own state folder."""
        state = tempfile.mkdtemp(prefix="state-", dir=self.root)
        port_file = os.path.join(state, "port")
        return self._start("dogpiled", [
            self.dogpiled_bin, "--listen", "127.0.0.1:0",
            "--port-file", port_file, "--state-dir", state,
            # Metrics stay on, as in production, on a port of their own.
            "--metrics-listen", "127.0.0.1:0",
            "--log-level", "warn", *flags], port_file=port_file)

    def group(self, dogpilectl, size=3):
        """A replicated group (docs/replication.md) of `size` fresh members
        with the default timeouts. Returns (leader, members) once every
        member names the same leader and it serves."""
        def start():
            raft = {i: free_port() for i in range(1, size + 1)}
            peers = ",".join(f"{i}=127.0.0.1:{p}" for i, p in raft.items())

            def member(i):
                state = tempfile.mkdtemp(prefix=f"member{i}-", dir=self.root)
                return self._start(f"dogpiled-member{i}", [
                    self.dogpiled_bin, "--node-id", str(i), "--peers", peers,
                    "--listen", f"127.0.0.1:{free_port()}",
                    "--port-file", os.path.join(state, "port"),
                    "--state-dir", state, "--metrics-listen", "",
                    "--log-level", "warn"],
                    port_file=os.path.join(state, "port"))
            return dict(zip(raft, self._start_all(
                [lambda i=i: member(i) for i in raft])))
        members = _on_free_ports(start)
        found = {}

        def agreed():
            views = []
            for m in members.values():
                done = subprocess.run(
                    [dogpilectl, "--target", m.address, "--timeout", "2000",
                     "--json", "cluster"], capture_output=True, text=True)
                if done.returncode != 0:
                    return False
                views.append(json.loads(done.stdout))
            leaders = {v["leader_id"] for v in views}
            lead = leaders.pop() if len(leaders) == 1 else 0
            if lead in members and any(v["self_id"] == lead and v["serving"]
                                       for v in views):
                found["leader"] = members[lead]
                return True
            return False
        _wait_until(agreed, "a replicated group's leader")
        return found["leader"], list(members.values())

    def noop(self):
        port_file = os.path.join(self.root, f"noop-port-{time.monotonic_ns()}")
        return self._start("noop", [
            self.noop_bin, "--listen", "127.0.0.1:0",
            "--port-file", port_file], port_file=port_file)

    def redis(self):
        return _on_free_ports(self._redis)

    def _redis(self):
        port = free_port()

        def ready(_server):
            try:
                with socket.create_connection(("127.0.0.1", port), 1) as s:
                    s.sendall(b"PING\r\n")
                    return s.recv(16).startswith(b"+PONG")
            except OSError:
                return False
        return self._start("redis", [
            shutil.which("redis-server") or "/usr/bin/redis-server",
            "--bind", "127.0.0.1", "--port", str(port),
            "--save", "", "--appendonly", "no", "--dir", ".",
            "--maxclients", "20000", "--loglevel", "warning",
            "--daemonize", "no"], port=port, ready=ready)

    def etcd(self, tmpfs=False):
        """etcd 3.4 as Debian ships it, single member, data on disk (fsync
        on every commit, as in production), or on /dev/shm with `tmpfs`:
        then None where /dev/shm has no room for it (a container's is
        64 MiB, and etcd's first WAL segment alone takes 64 MiB)."""
        if tmpfs and shm_free_bytes() < ETCD_TMPFS_BYTES:
            return None
        return _on_free_ports(lambda: self._etcd(tmpfs))

    def _etcd(self, tmpfs):
        client, peer = free_port(), free_port()

        def ready(_server):
            try:
                url = f"http://127.0.0.1:{client}/health"
                with urllib.request.urlopen(url, timeout=1) as r:
                    return b"true" in r.read()
            except OSError:
                return False
        return self._etcd_member("bench", client, peer,
                                 f"bench=http://127.0.0.1:{peer}", tmpfs, ready)

    def etcd_group(self, size=3):
        """etcd as a cluster of `size` members on loopback, data on disk:
        the replicated peer of a dogpiled group, on the same cores. Returns
        (leader, members) once a member reports that it leads."""
        def start():
            ports = {f"m{i}": (free_port(), free_port())
                     for i in range(1, size + 1)}
            cluster = ",".join(f"{name}=http://127.0.0.1:{peer}"
                               for name, (_, peer) in ports.items())
            # A member answers only once the cluster has a quorum: here,
            # only that it listens.
            return self._start_all([
                lambda n=name, c=client, p=peer: self._etcd_member(
                    n, c, p, cluster, False, _listening)
                for name, (client, peer) in ports.items()])
        members = _on_free_ports(start)
        found = {}

        def elected():
            for m in members:
                status = _etcd_status(m.port)
                if status and status.get("leader") == status["header"]["member_id"]:
                    found["leader"] = m
                    return True
            return False
        _wait_until(elected, "an etcd cluster's leader")
        return found["leader"], members

    def _etcd_member(self, name, client, peer, cluster, tmpfs, ready):
        data = tempfile.mkdtemp(prefix="etcd-data-", dir=self.root)
        if tmpfs and os.path.isdir("/dev/shm"):
            data = tempfile.mkdtemp(prefix="dogpiled-bench-etcd-",
                                    dir="/dev/shm")
            self.extra_dirs.append(data)
        return self._start("etcd" if name == "bench" else f"etcd-{name}", [
            shutil.which("etcd") or "/usr/bin/etcd", "--name", name,
            "--data-dir", data,
            "--listen-client-urls", f"http://127.0.0.1:{client}",
            "--advertise-client-urls", f"http://127.0.0.1:{client}",
            "--listen-peer-urls", f"http://127.0.0.1:{peer}",
            "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
            "--initial-cluster", cluster,
            "--initial-cluster-state", "new",
            "--logger", "zap", "--log-level", "error"],
            port=client, ready=ready)


def _listening(server):
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=1):
            return True
    except OSError:
        return False


def _etcd_status(port):
    """etcd's Maintenance.Status through its JSON gateway (member_id and
    leader are decimal strings), or None."""
    try:
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/v3/maintenance/status", data=b"{}",
            method="POST")
        with urllib.request.urlopen(request, timeout=1) as r:
            return json.loads(r.read())
    except (OSError, ValueError):
        return None


# etcd's WAL segment (64 MiB, preallocated) and its database, with room.
ETCD_TMPFS_BYTES = 256 << 20


def shm_free_bytes():
    try:
        st = os.statvfs("/dev/shm")
    except OSError:
        return 0
    return st.f_bavail * st.f_frsize


def describe_machine():
    """What the figures were measured on."""
    info = {"nproc": os.cpu_count(), "kernel": os.uname().release}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
        with open("/proc/meminfo") as f:
            kb = int(f.readline().split()[1])
            info["memory_gib"] = round(kb / 2**20, 1)
    except OSError:
        pass
    for name, argv in (("redis", ["redis-server", "--version"]),
                       ("etcd", ["etcd", "--version"])):
        try:
            out = subprocess.run(argv, capture_output=True, text=True,
                                 timeout=10).stdout
            info[name] = out.splitlines()[0].strip() if out else "?"
        except (OSError, subprocess.SubprocessError):
            info[name] = "missing"
    try:
        info["grpc"] = subprocess.run(
            ["dpkg-query", "-W", "-f", "${Version}", "libgrpc++-dev"],
            capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        info["grpc"] = "?"
    info["python"] = sys.version.split()[0]
    return info
