"""TLS, mutual TLS with sessions bound to identities, registry tokens, and
per-client caps. Certificates are made at test time with openssl."""
import os
import subprocess

import grpc
import pytest

from harness import CREATE, Daemon, dogpile_pb2, dogpile_pb2_grpc, rwmutex_pb2, \
    rwmutex_pb2_grpc, sessions_pb2, sessions_pb2_grpc, READ


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """A CA, a server certificate for 127.0.0.1, and two client identities."""
    d = str(tmp_path_factory.mktemp("pki"))
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key",
            "-out", "ca.pem", "-days", "2", "-subj", "/CN=dogpiled-test-ca", cwd=d)
    # A second CA, trusted by nobody: its certificates must not get in.
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "rogue-ca.key",
            "-out", "rogue-ca.pem", "-days", "2", "-subj", "/CN=rogue-ca", cwd=d)
    for name, subject, ext, ca in (
            ("server", "/CN=server", "subjectAltName=IP:127.0.0.1,DNS:localhost", "ca"),
            ("alice", "/CN=alice", "subjectAltName=DNS:alice.clients", "ca"),
            ("mallory", "/CN=mallory", "subjectAltName=DNS:mallory.clients", "ca"),
            # No CN and no SAN: a certificate that names no one.
            ("nobody", "/O=nobody", None, "ca"),
            # Only a CN.
            ("carol", "/CN=carol", None, "ca"),
            # Two SANs, in both orders: one identity.
            ("pair", "/CN=pair", "subjectAltName=DNS:alice,DNS:bob", "ca"),
            ("pair-swapped", "/CN=pair", "subjectAltName=DNS:bob,DNS:alice", "ca"),
            # One SAN whose text is what joining the pair with a comma gives.
            ("joined", "/CN=pair", "subjectAltName=@names\n[names]\nDNS.1 = alice,bob", "ca"),
            ("alice-rogue", "/CN=alice", "subjectAltName=DNS:alice.clients", "rogue-ca")):
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key",
                "-out", f"{name}.csr", "-subj", subject, cwd=d)
        extfile = []
        if ext:
            with open(os.path.join(d, f"{name}.ext"), "w") as f:
                f.write(ext + "\n")
            extfile = ["-extfile", f"{name}.ext"]
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey",
                f"{ca}.key", "-CAcreateserial", "-out", f"{name}.pem", "-days", "2",
                *extfile, cwd=d)
    read = lambda n: open(os.path.join(d, n), "rb").read()  # noqa: E731
    return {"dir": d, "read": read}


def tls_daemon(pki, mutual):
    d = pki["dir"]
    args = ["--tls-cert", f"{d}/server.pem", "--tls-key", f"{d}/server.key"]
    if mutual:
        args += ["--tls-client-ca", f"{d}/ca.pem"]
    return Daemon(*args)


class Client:
    def __init__(self, target, credentials):
        self.channel = grpc.secure_channel(target, credentials)
        self.sessions = sessions_pb2_grpc.SessionsStub(self.channel)
        self.dogpile = dogpile_pb2_grpc.DogpileStub(self.channel)
        self.rw = rwmutex_pb2_grpc.RWMutexStub(self.channel)


def client_for(pki, target, who=None):
    read = pki["read"]
    creds = grpc.ssl_channel_credentials(
        root_certificates=read("ca.pem"),
        private_key=read(f"{who}.key") if who else None,
        certificate_chain=read(f"{who}.pem") if who else None)
    return Client(target, creds)


def start_tls(pki, mutual):
    """Starts a TLS daemon; the harness's own plaintext channel is unused."""
    d = tls_daemon(pki, mutual)
    d.start()
    return d


def test_tls_serves_and_refuses_plaintext(pki):
    d = start_tls(pki, mutual=False)
    try:
        c = client_for(pki, d.target)
        assert c.sessions.Open(sessions_pb2.OpenRequest(), timeout=10).session_id != 0
        plain = sessions_pb2_grpc.SessionsStub(grpc.insecure_channel(d.target))
        with pytest.raises(grpc.RpcError) as e:
            plain.Open(sessions_pb2.OpenRequest(), timeout=5)
        assert e.value.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        d.cleanup()


def test_mutual_tls_binds_sessions_to_identities(pki):
    d = start_tls(pki, mutual=True)
    try:
        alice = client_for(pki, d.target, "alice")
        mallory = client_for(pki, d.target, "mallory")
        anonymous = client_for(pki, d.target)
        with pytest.raises(grpc.RpcError):
            anonymous.sessions.Open(sessions_pb2.OpenRequest(), timeout=5)
        sid = alice.sessions.Open(sessions_pb2.OpenRequest(), timeout=10).session_id
        grant = alice.dogpile.Acquire(dogpile_pb2.AcquireRequest(
            registry="reg", key=b"k", session_id=sid, expire_ms=1000), timeout=10)
        assert grant.outcome == CREATE
        lock = alice.rw.Lock(rwmutex_pb2.LockRequest(registry="reg", key=b"m", session_id=sid,
                                                     mode=READ), timeout=10)
        assert lock.acquired
        # Mallory learned the session id and the tokens: none of it works.
        attempts = [
            lambda: mallory.dogpile.Publish(dogpile_pb2.PublishRequest(
                registry="reg", key=b"k", session_id=sid, token=grant.token, value=b"evil"), timeout=5),
            lambda: mallory.dogpile.Abandon(dogpile_pb2.AbandonRequest(
                registry="reg", key=b"k", session_id=sid, token=grant.token), timeout=5),
            lambda: mallory.rw.Unlock(rwmutex_pb2.UnlockRequest(
                registry="reg", key=b"m", session_id=sid, token=lock.token), timeout=5),
            lambda: mallory.sessions.Close(sessions_pb2.CloseRequest(session_id=sid), timeout=5),
            lambda: mallory.dogpile.Acquire(dogpile_pb2.AcquireRequest(
                registry="reg", key=b"x", session_id=sid), timeout=5),
            lambda: list(mallory.sessions.KeepAlive(
                iter([sessions_pb2.KeepAliveRequest(session_id=sid)]), timeout=5)),
        ]
        for attempt in attempts:
            with pytest.raises(grpc.RpcError) as e:
                attempt()
            assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED
        # Alice's grants are intact.
        alice.dogpile.Publish(dogpile_pb2.PublishRequest(
            registry="reg", key=b"k", session_id=sid, token=grant.token, value=b"good"), timeout=5)
        alice.rw.Unlock(rwmutex_pb2.UnlockRequest(registry="reg", key=b"m", session_id=sid,
                                                  token=lock.token), timeout=5)
        peek = alice.dogpile.Peek(dogpile_pb2.PeekRequest(registry="reg", key=b"k"), timeout=5)
        assert peek.value == b"good"
    finally:
        d.cleanup()


def open_status(client):
    try:
        client.sessions.Open(sessions_pb2.OpenRequest(), timeout=10)
        return grpc.StatusCode.OK
    except grpc.RpcError as e:
        return e.code()


def test_certificates_must_name_someone_from_the_trusted_ca(pki):
    d = tls_daemon(pki, mutual=True)
    d.args += ["--log-level", "off"]  # gRPC's handshake errors obey it too
    d.start()
    try:
        nobody = client_for(pki, d.target, "nobody")
        with pytest.raises(grpc.RpcError) as e:
            nobody.sessions.Open(sessions_pb2.OpenRequest(), timeout=10)
        assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert e.value.details().startswith("certificate:")
        with pytest.raises(grpc.RpcError) as e:
            nobody.dogpile.Peek(dogpile_pb2.PeekRequest(registry="reg", key=b"k"), timeout=10)
        assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED
        # Signed by another CA: the handshake itself fails.
        assert open_status(client_for(pki, d.target, "alice-rogue")) == \
            grpc.StatusCode.UNAVAILABLE
        assert open_status(client_for(pki, d.target, "carol")) == grpc.StatusCode.OK
        assert d.stop() == 0
        assert d.read_log() == ""
    finally:
        d.cleanup()


def test_san_lists_are_kept_as_lists(pki):
    d = start_tls(pki, mutual=True)
    try:
        pair = client_for(pki, d.target, "pair")
        sid = pair.sessions.Open(sessions_pb2.OpenRequest(), timeout=10).session_id
        lock = pair.rw.Lock(rwmutex_pb2.LockRequest(registry="reg", key=b"m", session_id=sid,
                                                    mode=READ), timeout=10)
        # "DNS:alice,bob" is one name, not the pair joined with a comma.
        joined = client_for(pki, d.target, "joined")
        with pytest.raises(grpc.RpcError) as e:
            joined.rw.Unlock(rwmutex_pb2.UnlockRequest(registry="reg", key=b"m", session_id=sid,
                                                       token=lock.token), timeout=10)
        assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED
        # The same names in another order are the same identity.
        swapped = client_for(pki, d.target, "pair-swapped")
        swapped.rw.Unlock(rwmutex_pb2.UnlockRequest(registry="reg", key=b"m", session_id=sid,
                                                    token=lock.token), timeout=10)
    finally:
        d.cleanup()


def test_registry_tokens(make_daemon, tmp_path):
    tokens = tmp_path / "tokens"
    tokens.write_text("# registry=token\nbilling = s3cret\n")
    d = make_daemon("--registry-token-file", str(tokens))
    sid = d.open()
    request = d.acquire(sid, registry="billing")
    with pytest.raises(grpc.RpcError) as e:
        d.dogpile.Acquire(request)
    assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED
    with pytest.raises(grpc.RpcError) as e:
        d.dogpile.Acquire(request, metadata=[("authorization", "Bearer nope")])
    assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.RpcError) as e:
        d.dogpile.Invalidate(dogpile_pb2.InvalidateRequest(registry="billing"))
    assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED
    # The session was opened without the token: it is the anonymous
    # tenant's, and cannot hold a grant in the protected registry.
    with pytest.raises(grpc.RpcError) as e:
        d.dogpile.Acquire(request, metadata=[("authorization", "Bearer s3cret")])
    assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED
    owned = d.sessions.Open(sessions_pb2.OpenRequest(),
                            metadata=[("authorization", "Bearer s3cret")]).session_id
    got = d.dogpile.Acquire(d.acquire(owned, registry="billing"),
                            metadata=[("authorization", "Bearer s3cret")])
    assert got.outcome == CREATE
    assert d.dogpile.Acquire(d.acquire(sid, registry="public")).outcome == CREATE


def test_sessions_per_client_cap(make_daemon):
    d = make_daemon("--max-sessions-per-client", "3")
    ids = [d.open() for _ in range(3)]
    with pytest.raises(grpc.RpcError) as e:
        d.open()
    assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "per client" in e.value.details()
    d.sessions.Close(sessions_pb2.CloseRequest(session_id=ids[0]))
    d.open()
