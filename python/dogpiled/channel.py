"""The gRPC channel to a daemon: plaintext, TLS, or mutual TLS."""
import grpc

# A session outlives a lost connection only by its TTL (10 s by default), so
# reconnect within a second, not after gRPC's default backoff (1 s growing
# to 120 s).
_RECONNECT = (("grpc.initial_reconnect_backoff_ms", 100),
              ("grpc.max_reconnect_backoff_ms", 1000))


def _read(path, what):
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise ValueError(f"{what}: cannot read {path!r}: {e}") from None


def make_channel(address, *, tls=False, tls_ca=None, tls_cert=None,
                 tls_key=None, options=()):
    """Plaintext unless `tls` or any tls_* file is given.

    tls_ca: PEM roots that signed the daemon's certificate (default: the
    system's). tls_cert and tls_key: this client's certificate and key, for
    a daemon that requires mutual TLS; it then binds each session to this
    identity.
    """
    given = dict(options)
    options = [(k, v) for k, v in _RECONNECT if k not in given]
    options += list(given.items())
    if not (tls or tls_ca or tls_cert or tls_key):
        return grpc.insecure_channel(address, options=options)
    if bool(tls_cert) != bool(tls_key):
        raise ValueError("tls_cert and tls_key: give both or neither")
    credentials = grpc.ssl_channel_credentials(
        root_certificates=_read(tls_ca, "tls_ca") if tls_ca else None,
        private_key=_read(tls_key, "tls_key") if tls_key else None,
        certificate_chain=_read(tls_cert, "tls_cert") if tls_cert else None)
    return grpc.secure_channel(address, credentials, options=options)
