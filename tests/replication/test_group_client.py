"""The Python client given every member of a replicated group
("h1:p1,h2:p2,h3:p3"), or only one follower's address: it finds the
leader, and when the leader is killed it follows the new one, keeping its
session and the grants taken under it (docs/replication.md)."""
import pathlib
import sys
import time

import pytest

import dogpiled  # conftest.py: this checkout's python/

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from test_group import PATIENCE_S, group  # noqa: E402,F401  (the fixture)


def renewed(client):
    """Whether a KeepAlive sent now is answered: only a serving leader
    renews, so the session's stream is on it."""
    before = client.session._lost_at
    client.session.kick()
    deadline = time.monotonic() + PATIENCE_S
    while client.session._lost_at == before and time.monotonic() < deadline:
        time.sleep(0.05)
    return client.session._lost_at != before


@pytest.mark.parametrize("given", ["every member", "one follower"])
def test_the_client_follows_a_new_leader_and_keeps_its_session_and_grants(
        group, given):
    lead = group.leader()
    follower = next(d.target for i, d in group.members.items() if i != lead)
    target = (",".join(d.target for d in group.members.values())
              if given == "every member" else follower)
    with dogpiled.Client(target, session_ttl=10.0, rpc_timeout=30.0) as client:
        assert client.get_or_create("reg", "before", lambda: b"one") == b"one"
        lock = client.write_lock("reg", "m")
        session = client.session.id
        assert renewed(client)

        group.members[lead].proc.kill()
        group.members[lead].proc.wait()
        killed = time.monotonic()

        # The next calls reach the new leader by themselves.
        assert client.get_or_create("reg", "after", lambda: b"two") == b"two"
        failover = time.monotonic() - killed
        assert client.get_or_create("reg", "before", lambda: b"not again") == b"one"
        assert client.session.id == session, "the session was kept"
        assert renewed(client)
        lock.release()  # still held, under the same session: no error
        with client.write_lock("reg", "m", timeout=0) as again:
            assert again.token > lock.token
        print(f"first answer {failover:.2f} s after the leader's SIGKILL")
