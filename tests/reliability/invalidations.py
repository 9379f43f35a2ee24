"""What the checker knows about the invalidations that touch one key.

An Invalidate sent at y and answered at x was applied by the daemon at some
moment in [y, x]; one that failed or was never answered may have been
applied at any moment after y. The contract: once Invalidate has returned,
no Acquire answers FRESH with a value whose creation (the creator's
election) began before it, a hard one makes such values absent, and a
creator elected before it is refused when it publishes.
"""
import bisect
import math

INF = math.inf
READS = ("acquire", "peek")  # calls that may answer with a value


def answered(op):
    return op.end["t"] if op.ok else INF


class Marks:
    """The invalidations of one key (its own and registry-wide ones),
    ordered by when they were answered."""

    def __init__(self, ops):
        ops = sorted(ops, key=answered)
        self.answers = [answered(op) for op in ops]
        # prefix maxima of send times: among those answered before t
        self._latest, self._latest_hard = [], []
        latest = latest_hard = -INF
        for op in ops:
            latest = max(latest, op.t)
            latest_hard = max(latest_hard, op.t) if op.f["hard"] else latest_hard
            self._latest.append(latest)
            self._latest_hard.append(latest_hard)
        # suffix minima of send times: among those answered at or after t
        self._earliest = [INF] * (len(ops) + 1)
        for i in range(len(ops) - 1, -1, -1):
            self._earliest[i] = min(ops[i].t, self._earliest[i + 1])

    def latest_sent_of_returned(self, t, hard=False):
        """The last send time among invalidations answered before t."""
        i = bisect.bisect_left(self.answers, t)
        return (self._latest_hard if hard else self._latest)[i - 1] if i else -INF

    def earliest_sent_of_pending(self, t):
        """The first send time among invalidations not answered before t:
        one of them may be applied after t, but not before it was sent."""
        return self._earliest[bisect.bisect_left(self.answers, t)]


def marks_by_key(invalidations, keys):
    return {key: Marks([op for op in invalidations if op.f["key"] in ("", key)])
            for key in keys}


def check_values(run, report, marks, elected, grace=0.0):
    """A value whose creator was elected before an invalidation was sent is
    never served FRESH (nor at all, after a hard one) to a read sent more
    than `grace` seconds after that invalidation returned. `elected`:
    (key, token) -> the time the CREATE answer was received."""
    for op in run.ops:
        if op.kind not in READS or not op.ok or op.end.get("value") is None:
            continue
        key, value = op.f["key"], op.end["value"]
        began = elected.get((key, int(value.lstrip("L"))))
        if began is None or key not in marks:
            continue
        m = marks[key]
        hard = m.latest_sent_of_returned(op.t - grace, hard=True) > began
        soft = m.latest_sent_of_returned(op.t - grace) > began
        if soft:
            report.counts["values_checked_against_invalidation"] += 1
        if hard or (soft and op.end["outcome"] == "FRESH"):
            report.bad("invalidated_value",
                       f"{op.id}: {key} answered {op.end['outcome']} with value {value}, "
                       f"elected at {run.rel(began)}, after a {'hard' if hard else 'soft'} "
                       f"invalidation sent later had returned")
