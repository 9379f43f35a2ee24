"""The Python client given every member of a replicated group
("h1:p1,h2:p2,h3:p3"): it finds the leader, and when the leader is killed
it follows the new one, keeping its session and the grants taken under it
(docs/replication.md)."""
import pathlib
import sys
import time

import dogpiled  # conftest.py: this checkout's python/

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from test_group import group  # noqa: E402,F401  (the fixture)


def test_the_client_follows_a_new_leader_and_keeps_its_session_and_grants(group):
    lead = group.leader()
    addresses = ",".join(d.target for d in group.members.values())
    with dogpiled.Client(addresses, session_ttl=10.0, rpc_timeout=30.0) as client:
        assert client.get_or_create("reg", "before", lambda: b"one") == b"one"
        lock = client.write_lock("reg", "m")
        session = client.session.id

        group.members[lead].proc.kill()
        group.members[lead].proc.wait()
        killed = time.monotonic()

        # The next calls reach the new leader by themselves.
        assert client.get_or_create("reg", "after", lambda: b"two") == b"two"
        failover = time.monotonic() - killed
        assert client.get_or_create("reg", "before", lambda: b"not again") == b"one"
        assert client.session.id == session, "the session was kept"
        lock.release()  # still held, under the same session: no error
        with client.write_lock("reg", "m", timeout=0) as again:
            assert again.token > lock.token
        print(f"first answer {failover:.2f} s after the leader's SIGKILL")
