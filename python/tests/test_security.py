"""Secured daemons: registries behind a bearer token, and mutual TLS."""
import os
import subprocess

import pytest

import dogpiled
import support


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True,
                   capture_output=True)


@pytest.fixture
def secured(tmp_path):
    """starts(*flags) -> a daemon of the test's own with those flags."""
    made = []

    def start(*flags):
        state = tmp_path / f"state{len(made)}"
        state.mkdir()
        made.append(support.Daemon(str(state), *flags))
        return made[-1].start()
    yield start
    for d in made:
        d.stop()


def test_protected_registry_needs_its_token(secured, tmp_path):
    tokens = tmp_path / "tokens"
    tokens.write_text("billing=s3cret\n")
    daemon = secured("--registry-token-file", str(tokens))
    anonymous = dogpiled.Client(daemon.address)
    holder = dogpiled.Client(daemon.address, token="s3cret")
    try:
        with pytest.raises(dogpiled.DogpiledError,
                           match="UNAUTHENTICATED") as e:
            anonymous.write_lock("billing", "k")
        assert e.value.code.name == "UNAUTHENTICATED"
        with holder.write_lock("billing", "k", timeout=0):
            pass
        region = support.region_on(daemon.address, "billing", token="s3cret")
        region.set("k", "v")
        assert region.get("k") == "v"
        region.backend.close()
    finally:
        anonymous.close()
        holder.close()


def test_mutual_tls(secured, tmp_path):
    pki = str(tmp_path)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
          "-nodes"]
    openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem",
            "-days", "1", "-subj", "/CN=test-ca", cwd=pki)
    for name, alt in (("server", "IP:127.0.0.1"), ("app", "DNS:app")):
        openssl("req", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr",
                "-subj", f"/CN={name}", cwd=pki)
        with open(os.path.join(pki, f"{name}.ext"), "w") as f:
            f.write(f"subjectAltName={alt}\n")
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem",
                "-CAkey", "ca.key", "-CAcreateserial", "-out", f"{name}.pem",
                "-days", "1", "-extfile", f"{name}.ext", cwd=pki)
    daemon = secured("--tls-cert", f"{pki}/server.pem", "--tls-key",
                     f"{pki}/server.key", "--tls-client-ca", f"{pki}/ca.pem")
    region = support.region_on(
        daemon.address, "users", expiration_time=60, tls_ca=f"{pki}/ca.pem",
        tls_cert=f"{pki}/app.pem", tls_key=f"{pki}/app.key")
    assert region.get_or_create("k", lambda: "over mTLS") == "over mTLS"
    region.backend.close()
    # Without a client certificate the daemon refuses.
    anonymous = dogpiled.Client(daemon.address, tls_ca=f"{pki}/ca.pem",
                                rpc_timeout=2)
    with pytest.raises(dogpiled.DogpiledError):
        anonymous.session.id
    anonymous.close()
    with pytest.raises(ValueError, match="tls_key"):
        dogpiled.Client(daemon.address, tls_cert=f"{pki}/app.pem")
