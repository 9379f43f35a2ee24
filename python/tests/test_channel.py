"""How a target names a daemon or a replicated group's members
(docs/replication.md): comma lists, and one name resolving to every member.
The resolver is replaced here, so a name can stand for a group without a
DNS server, and be resolved again when its pods come back on new IPs; one
address that is a follower is followed to the leader it names, against
fake members; the group behaviour itself runs in tests/replication."""
import concurrent.futures
import socket

import grpc
import pytest

from dogpiled.channel import GroupChannel, expand_target, make_group_channel
from dogpiled.errors import _rpc_types


def fake_resolver(monkeypatch, table):
    def getaddrinfo(host, port, *args, **kwargs):
        if host not in table:
            raise socket.gaierror(socket.EAI_NONAME, "unknown")
        out = []
        for ip in table[host]:
            family = socket.AF_INET6 if ":" in ip else socket.AF_INET
            sockaddr = (ip, port, 0, 0) if family == socket.AF_INET6 else (ip, port)
            out.append((family, socket.SOCK_STREAM, 6, "", sockaddr))
        return out
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


def test_a_comma_list_is_the_members_in_order_without_repeats():
    assert expand_target(" a:1, b:2 ,a:1,, c:3") == ["a:1", "b:2", "c:3"]


def test_a_name_resolving_to_several_members_is_a_group(monkeypatch):
    fake_resolver(monkeypatch, {"dogpiled-peers": ["10.0.0.7", "10.0.0.8",
                                                   "fd00::9", "10.0.0.7"]})
    assert expand_target("dogpiled-peers:7420") == [
        "10.0.0.7:7420", "10.0.0.8:7420", "[fd00::9]:7420"]
    channel = make_group_channel("dogpiled-peers:7420")
    try:
        assert isinstance(channel, GroupChannel)
        assert channel.size() == 3
        assert channel.current()[0] == "10.0.0.7:7420"
    finally:
        channel.close()


@pytest.mark.parametrize("target,table", [
    ("localhost:7420", {"localhost": ["127.0.0.1", "::1"]}),  # loopback
    ("single:7420", {"single": ["10.0.0.7"]}),
    ("unknown:7420", {}),
    ("10.0.0.7:7420", {}),
    ("[fd00::9]:7420", {}),
    ("unix:/run/dogpiled.sock", {}),
    ("dns:///dogpiled:7420", {}),
])
def test_anything_else_is_one_daemon(monkeypatch, target, table):
    fake_resolver(monkeypatch, table)
    assert expand_target(target) == [target]
    channel = make_group_channel(target)
    try:
        assert not channel.grouped
    finally:
        channel.close()


def not_leader(leader):
    """The trailer of a follower's refusal naming `leader`."""
    status_cls, info_cls, _ = _rpc_types()
    status = status_cls(code=grpc.StatusCode.UNAVAILABLE.value[0])
    detail = status.details.add()
    detail.type_url = "type.googleapis.com/google.rpc.ErrorInfo"
    detail.value = info_cls(reason="NOT_LEADER", metadata={
        "leader": leader, "leader_id": "2"}).SerializeToString()
    return (("grpc-status-details-bin", status.SerializeToString()),)


@pytest.fixture
def member():
    """member(refusal) starts a fake daemon on loopback that echoes what it
    is sent (Echo, Stream) or, given a trailer, refuses every call with it
    (UNAVAILABLE). Returns its address and what it was sent."""
    servers = []

    def start(refusal=None):
        received = []

        def echo(request, context):
            received.append(request)
            if refusal is not None:
                context.set_trailing_metadata(refusal)
                context.abort(grpc.StatusCode.UNAVAILABLE, "refused")
            return request
        handler = grpc.method_handlers_generic_handler("t.Member", {
            "Echo": grpc.unary_unary_rpc_method_handler(echo),
            "Stream": grpc.stream_stream_rpc_method_handler(
                lambda requests, context: (echo(r, context) for r in requests))})
        server = grpc.server(concurrent.futures.ThreadPoolExecutor(4),
                             handlers=(handler,))
        port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        servers.append(server)
        return f"127.0.0.1:{port}", received
    yield start
    for server in servers:
        server.stop(None)


@pytest.fixture
def via_follower(member):
    """A channel given only a follower's address; the leader's address and
    what the leader and the follower were sent."""
    leader, at_leader = member()
    follower, at_follower = member(not_leader(leader))
    channel = make_group_channel(follower)
    yield channel, leader, at_leader, at_follower
    channel.close()


def test_one_address_that_is_a_follower_is_followed_to_the_leader(
        via_follower):
    channel, leader, at_leader, at_follower = via_follower
    assert not channel.grouped
    echo = channel.unary_unary("/t.Member/Echo")
    # Sent again, unchanged (its request_id too), to the leader named.
    assert echo(b"first", timeout=5) == b"first"
    assert channel.grouped and channel.current()[0] == leader
    assert echo(b"second", timeout=5) == b"second"
    assert at_follower == [b"first"]
    assert at_leader == [b"first", b"second"]


def test_a_future_refused_by_the_one_follower_given_is_answered_by_the_leader(
        via_follower):
    channel, _, at_leader, _ = via_follower
    future = channel.unary_unary("/t.Member/Echo").future(b"f", timeout=5)
    assert future.result() == b"f"
    assert at_leader == [b"f"]


def test_a_stream_refused_by_the_one_follower_given_reconnects_to_the_leader(
        via_follower):
    channel, _, at_leader, _ = via_follower
    keep_alive = channel.stream_stream("/t.Member/Stream")
    with pytest.raises(grpc.RpcError):
        list(keep_alive(iter([b"renew"])))
    # The next stream (Session opens one after a break) is the leader's.
    assert list(keep_alive(iter([b"renew"]))) == [b"renew"]
    assert at_leader == [b"renew"]


def test_a_single_daemons_refusal_is_raised_after_one_try(member):
    daemon, received = member(())  # UNAVAILABLE, no reason: a restart, say
    channel = make_group_channel(daemon)
    try:
        with pytest.raises(grpc.RpcError) as refused:
            channel.unary_unary("/t.Member/Echo")(b"once", timeout=5)
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
        assert received == [b"once"] and not channel.grouped
    finally:
        channel.close()


class FakeDns:
    """A resolver for "dogpiled-peers:7420" that gives `answers` in turn
    (the last one again once they run out)."""

    def __init__(self, *answers):
        self.answers = answers
        self.calls = 0

    def __call__(self, host, port):
        assert (host, port) == ("dogpiled-peers", "7420")
        self.calls += 1
        return list(self.answers[min(self.calls, len(self.answers)) - 1])


class Down(grpc.RpcError):
    """A member that cannot be reached."""

    def code(self):
        return grpc.StatusCode.UNAVAILABLE

    def trailing_metadata(self):
        return ()


def fail(channel, error=None):
    """note_failure for a call to the current member."""
    return channel.note_failure(channel.current()[0], error or Down())


def test_a_group_name_is_resolved_again_once_every_member_failed():
    dns = FakeDns(["10.0.0.1:7420", "10.0.0.2:7420"],
                  ["10.0.0.2:7420", "10.0.0.3:7420"])
    channel = make_group_channel("dogpiled-peers:7420", resolve=dns)
    try:
        assert channel.grouped and dns.calls == 1
        assert channel.current()[0] == "10.0.0.1:7420"
        assert not fail(channel)
        assert channel.current()[0] == "10.0.0.2:7420"
        # The round is over: the name is asked again, and its new address
        # tried at once.
        assert fail(channel)
        assert dns.calls == 2 and channel.current()[0] == "10.0.0.3:7420"
        # Not again within the interval, however fast the rounds fail.
        assert not any(fail(channel) for _ in range(3))
        assert dns.calls == 2
    finally:
        channel.close()


def test_a_list_or_a_followers_refusal_resolves_nothing():
    dns = FakeDns(["10.0.0.9:7420", "10.0.0.8:7420"])
    listed = make_group_channel("10.0.0.1:7420,10.0.0.2:7420", resolve=dns)
    named = make_group_channel("dogpiled-peers:7420", resolve=dns)
    try:
        for _ in range(4):
            fail(listed)
        assert dns.calls == 1  # only `named`'s, when it was made
        refused = Down()
        refused.trailing_metadata = lambda: not_leader("10.0.0.7:7420")
        assert fail(named, refused)
        assert named.current()[0] == "10.0.0.7:7420"
        assert dns.calls == 1
    finally:
        listed.close()
        named.close()


def test_a_call_whose_members_all_failed_is_answered_at_a_new_address(
        member):
    first, at_first = member(())  # UNAVAILABLE, no reason: going away
    second, at_second = member(())
    new, at_new = member()
    dns = FakeDns([first, second], [second, new])
    channel = make_group_channel("dogpiled-peers:7420", resolve=dns)
    try:
        echo = channel.unary_unary("/t.Member/Echo")
        assert echo(b"call", timeout=5) == b"call"
        assert (at_first, at_second, at_new) == ([b"call"],) * 3
        assert channel.current()[0] == new and dns.calls == 2
    finally:
        channel.close()
