"""How a target names a daemon or a replicated group's members
(docs/replication.md): comma lists, and one name resolving to every member.
The resolver is replaced here, so a name can stand for a group without a
DNS server; the group behaviour itself runs in tests/replication."""
import socket

import pytest

from dogpiled.channel import GroupChannel, expand_target, make_group_channel


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
        assert not isinstance(channel, GroupChannel)
    finally:
        channel.close()
