"""The fault test's world: worker processes, the daemon or daemons they use,
and the nemesis that injects faults into both. Every action goes to
nemesis.jsonl, in the same clock as the workers' histories.

Fleet holds what every variant shares: the workers, the faults dealt to
them and the nemesis's loop. Cluster runs one daemon on a fixed loopback
port with a state folder that outlives its restarts; GroupCluster
(group_cluster.py) runs a replicated group.

Only the test's main thread may call in (workers die with their parent
thread: PR_SET_PDEATHSIG). close() kills whatever is left, on every path.
"""
import collections
import json
import os
import pathlib
import random
import signal
import socket
import subprocess
import time

import settings
from harness import Daemon
from history import History

WORKER = settings.HERE / "worker.py"
CLIENT_FAULTS = ("kill_client", "pause_client", "drop_channel", "cut_keepalive")
# One deck of faults is dealt in random order, so every kind happens.
FAULT_DECK = ["kill_client", "kill_client", "pause_client", "pause_client",
              "drop_channel", "drop_channel", "cut_keepalive", "cut_keepalive",
              "restart_daemon_term", "restart_daemon_kill"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Incarnation:
    """One worker process; a respawned worker is a new incarnation."""

    def __init__(self, slot, index, proc, history, err):
        self.slot, self.index, self.proc = slot, index, proc
        self.history, self.err = history, err
        self.paused = False
        self.killed = False

    def ready(self):
        """The worker has said it is ready: its first history line ("start")
        is written only after every signal handler is in place. Until then
        a signal may find Python's default action (SIGTERM kills)."""
        return os.path.exists(self.history) and os.path.getsize(self.history) > 0

    def tail(self):
        with open(self.err, "rb") as f:
            return f.read()[-3000:].decode(errors="replace")


class Fleet:
    """Workers and the faults dealt to them. A subclass runs the daemons
    (start_daemons, inject_daemon_fault, tend_daemons, close_daemons) and
    names the faults it deals (`deck`)."""

    deck = ()

    def __init__(self, workdir, workers, worker_cfg, seed):
        self.workdir = pathlib.Path(workdir)
        self.rng = random.Random(seed)
        self.worker_cfg = worker_cfg
        self.hist = History(self.workdir / "nemesis.jsonl")
        self.target_file = self.workdir / "target"
        self.slots = [None] * workers
        self.incarnations = []
        self.respawn_at = {}  # slot -> time
        self.resume_at = {}   # Incarnation -> time
        self.faults = collections.Counter()
        self.problems = []    # crashes and bad exits: the test fails on any

    def set_target(self, target):
        """Where workers connect, read at each connect: written atomically."""
        tmp = self.target_file.with_suffix(".tmp")
        tmp.write_text(target)
        os.replace(tmp, self.target_file)

    def wait_for(self, predicate, timeout, what):
        """Polls `predicate`, tending the workers meanwhile, until it returns
        something true, and returns that. The deadline only bounds a wait for
        what never comes: a loaded machine just takes longer."""
        deadline = time.monotonic() + timeout
        while True:
            self.tend()
            got = predicate()
            if got:
                return got
            if time.monotonic() > deadline:
                raise AssertionError(f"waited {timeout:.0f} s in vain for {what}")
            time.sleep(0.05)


    # --- workers ------------------------------------------------------------
    def spawn(self, slot):
        index = len(self.incarnations)
        history = self.workdir / f"worker-{slot}-{index}.jsonl"
        err = self.workdir / f"worker-{slot}-{index}.err"
        cfg = dict(self.worker_cfg, history=str(history), name=f"w{slot}.{index}",
                   seed=self.rng.getrandbits(32), parent_pid=os.getpid(),
                   target_file=str(self.target_file))
        with open(err, "wb") as out:
            proc = subprocess.Popen([settings.PYTHON, str(WORKER), json.dumps(cfg)],
                                    stdout=out, stderr=subprocess.STDOUT, cwd=settings.HERE)
        inc = Incarnation(slot, index, proc, history, err)
        self.incarnations.append(inc)
        self.slots[slot] = inc
        self.hist.log("worker_spawn", slot=slot, inc=index, pid=proc.pid, file=history.name)

    def start(self):
        self.start_daemons()
        for slot in range(len(self.slots)):
            self.spawn(slot)

    def _running(self):
        return [inc for inc in self.slots if inc is not None and not inc.paused and inc.ready()]

    # --- faults -------------------------------------------------------------
    def inject(self, kind):
        victims = self._running()
        if kind in CLIENT_FAULTS:
            if not victims:
                return
            inc = self.rng.choice(victims)
            if kind == "kill_client":
                self.hist.log("worker_kill", inc=inc.index, file=inc.history.name)
                inc.killed = True
                inc.proc.kill()
                inc.proc.wait()
                self.slots[inc.slot] = None
                self.respawn_at[inc.slot] = time.monotonic() + self.rng.uniform(0, 0.5)
            elif kind == "pause_client":
                # Longer than the TTL: the daemon must expire the session and
                # pass on whatever it held while the process is frozen.
                pause = self.worker_cfg["ttl_ms"] / 1000 + self.rng.uniform(0.5, 1.5)
                self.hist.log("worker_stop", inc=inc.index, file=inc.history.name)
                inc.proc.send_signal(signal.SIGSTOP)
                inc.paused = True
                self.resume_at[inc] = time.monotonic() + pause
            else:
                sig = signal.SIGUSR1 if kind == "drop_channel" else signal.SIGUSR2
                self.hist.log(kind, inc=inc.index, file=inc.history.name)
                inc.proc.send_signal(sig)
        else:
            self.inject_daemon_fault(kind)
        self.faults[kind] += 1

    def resume(self, inc):
        inc.proc.send_signal(signal.SIGCONT)
        inc.paused = False
        self.hist.log("worker_cont", inc=inc.index, file=inc.history.name)

    def tend(self):
        """Resumes, respawns, and notices processes that died on their own."""
        now = time.monotonic()
        for inc, when in list(self.resume_at.items()):
            if now >= when:
                del self.resume_at[inc]
                self.resume(inc)
        for slot, when in list(self.respawn_at.items()):
            if now >= when:
                del self.respawn_at[slot]
                self.spawn(slot)
        for inc in self.slots:
            if inc is not None and inc.proc.poll() is not None:
                self.problems.append(f"worker {inc.history.name} exited {inc.proc.returncode} "
                                     f"by itself:\n{inc.tail()}")
                self.hist.log("worker_exit", inc=inc.index, file=inc.history.name,
                              rc=inc.proc.returncode)
                self.slots[inc.slot] = None
                self.respawn_at[inc.slot] = now
        self.tend_daemons()

    def run(self, seconds, interval):
        """Runs the nemesis for `seconds`, and on until a whole deck was dealt,
        one fault every `interval` (a (low, high) range in seconds) from the
        end of the last one."""
        end = time.monotonic() + seconds
        deck, dealt = [], 0
        next_fault = time.monotonic() + self.rng.uniform(*interval)
        while time.monotonic() < end or dealt < len(self.deck):
            self.tend()
            if time.monotonic() >= next_fault:
                if not deck:
                    deck = self.rng.sample(self.deck, len(self.deck))
                self.inject(deck.pop())
                dealt += 1
                next_fault = time.monotonic() + self.rng.uniform(*interval)
            time.sleep(0.02)

    def stop_workers(self, timeout=60):
        """Resumes paused workers, then asks every worker to finish."""
        self.respawn_at.clear()
        for inc in list(self.resume_at):
            self.resume(inc)
        self.resume_at.clear()
        live = [inc for inc in self.slots if inc is not None]
        ready = {}
        for inc in live:
            # Asked before the signal goes: a worker ready by then has its
            # handler and must finish cleanly; one still starting (a fresh
            # respawn on a busy machine) may die of the default action.
            ready[inc] = inc.ready()
            self.hist.log("worker_term", inc=inc.index, file=inc.history.name,
                          ready=ready[inc])
            inc.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for inc in live:
            try:
                rc = inc.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                rc = "hung"
                inc.proc.kill()
                inc.proc.wait()
            self.hist.log("worker_exit", inc=inc.index, file=inc.history.name, rc=rc)
            unready_stop = rc == -signal.SIGTERM and not ready[inc]
            if rc != 0 and not unready_stop:
                self.problems.append(f"worker {inc.history.name} ended {rc} on SIGTERM "
                                     f"(ready: {ready[inc]}):\n{inc.tail()}")
            self.slots[inc.slot] = None
        self.hist.log("end")

    def close(self):
        """Kills every process still running (stopped ones are resumed first,
        so the kill is delivered at once)."""
        try:
            for inc in self.incarnations:
                if inc.proc.poll() is None:
                    inc.proc.send_signal(signal.SIGCONT)
                    inc.proc.kill()
                    inc.proc.wait()
        finally:
            try:
                self.close_daemons()
            finally:
                self.hist.close()


class Cluster(Fleet):
    """One daemon on a fixed loopback port with a state folder that outlives
    its restarts (SIGTERM and SIGKILL, dealt by the nemesis)."""

    deck = FAULT_DECK

    def __init__(self, workdir, workers, worker_cfg, seed, daemon_args=()):
        super().__init__(workdir, workers, worker_cfg, seed)
        self.daemon = Daemon(*daemon_args, state_dir=str(self.workdir / "state"),
                             listen=f"127.0.0.1:{free_port()}")

    def start_daemon(self):
        self.hist.log("daemon_start")
        for attempt in range(3):
            try:
                self.daemon.start()
                break
            except RuntimeError:
                # Someone took our port while the daemon was down: come back
                # on a new one; workers follow the target file.
                if attempt == 1:
                    self.daemon.listen = f"127.0.0.1:{free_port()}"
                time.sleep(0.2)
        else:
            raise RuntimeError("dogpiled did not come back: " + self.daemon.read_log()[-2000:])
        self.set_target(self.daemon.target)
        self.hist.log("daemon_ready", port=self.daemon.port)

    def restart_daemon(self, sig):
        expected = 0 if sig == signal.SIGTERM else -sig
        self.hist.log("daemon_signal", sig=sig.name)
        try:
            rc = self.daemon.stop(sig, timeout=30)
        except subprocess.TimeoutExpired:
            rc = "hung"
        self.hist.log("daemon_exit", rc=rc)
        if rc != expected:
            self.problems.append(f"dogpiled exited {rc} on {sig.name} (expected {expected})")
        self.start_daemon()

    def start_daemons(self):
        self.start_daemon()

    def inject_daemon_fault(self, kind):
        if kind == "restart_daemon_term":
            self.restart_daemon(signal.SIGTERM)
        elif kind == "restart_daemon_kill":
            self.restart_daemon(signal.SIGKILL)
        else:
            raise ValueError(kind)

    def tend_daemons(self):
        if self.daemon.proc.poll() is not None:
            self.problems.append(f"dogpiled died by itself ({self.daemon.proc.returncode}): "
                                 + self.daemon.read_log()[-2000:])
            self.hist.log("daemon_exit", rc=self.daemon.proc.returncode)
            self.start_daemon()

    def close_daemons(self):
        self.daemon.cleanup()
