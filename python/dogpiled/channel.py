"""The gRPC channel to a daemon (plaintext, TLS, or mutual TLS), or to the
members of a replicated group."""
import concurrent.futures
import ipaddress
import socket
import threading
import time

import grpc

# A session outlives a lost connection only by its TTL (10 s by default), so
# reconnect within a second, not after gRPC's default backoff (1 s growing
# to 120 s).
_RECONNECT = (("grpc.initial_reconnect_backoff_ms", 100),
              ("grpc.max_reconnect_backoff_ms", 1000))
# A replicated group's member that hangs rather than dies (SIGSTOP, a
# partition) is found out in about 2 s: the connection is closed, calls on
# it fail UNAVAILABLE and go to the next member. The daemon allows a ping
# every 500 ms. Not for a single daemon: there is nowhere else to go, and
# a connection that still carries the client's requests (though not the
# answers) is worth more than a new one that cannot be set up.
_KEEPALIVE = (("grpc.keepalive_time_ms", 1000),
              ("grpc.keepalive_timeout_ms", 1000),
              ("grpc.keepalive_permit_without_calls", 1),
              ("grpc.http2.max_pings_without_data", 0))


def _read(path, what):
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise ValueError(f"{what}: cannot read {path!r}: {e}") from None


def make_channel(address, *, tls=False, tls_ca=None, tls_cert=None,
                 tls_key=None, options=(), keepalive=False):
    """Plaintext unless `tls` or any tls_* file is given. keepalive: ping
    the daemon every second (a member of a replicated group).

    tls_ca: PEM roots that signed the daemon's certificate (default: the
    system's). tls_cert and tls_key: this client's certificate and key, for
    a daemon that requires mutual TLS; it then binds each session to this
    identity.
    """
    given = dict(options)
    defaults = _RECONNECT + (_KEEPALIVE if keepalive else ())
    options = [(k, v) for k, v in defaults if k not in given]
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


# A replicated group (docs/replication.md): calls go to the member that
# leads. A follower refuses with UNAVAILABLE, reason NOT_LEADER, naming the
# leader's address; a member that is down cannot be reached at all. Either
# way the call goes to the next member (the named leader first) within the
# call's own timeout, pausing between rounds that found no leader. One
# address given may be a single daemon or one member: its calls go straight
# to it until it refuses as a follower, then through the group.
_ROUND_PAUSE_FIRST = 0.05
_ROUND_PAUSE_MAX = 0.25
# A group given as one name is resolved again after a round of failures
# at most this often: a group that is down is not a flood of DNS queries.
_RESOLVE_EVERY = 1.0


class GroupChannel:
    """A grpc.Channel look-alike over the members of a group, given as
    "host:port,host:port,...". Unary calls that meet UNAVAILABLE go to the
    next member (the leader a follower named first) until one answers or
    their timeout passes; they carry their request_id, so a retry of a
    change that did commit is answered again, not made twice. Streams
    (KeepAlive) go to the member believed to lead; one that breaks points
    the next at the leader named, or at the next member.

    Given one address, `grouped` stays false and unary calls go straight
    to it, one try each, as on a plain channel, until a refusal shows it
    is a follower (NOT_LEADER; a single daemon never says it): from that
    call on, the group's rules apply, the named leader added (as in the
    C++ SDK).

    make(address, grouped) makes a member's channel; `grouped` says
    whether it is known to be one of a group's (then it pings).

    name: (host, port) of a group given as one name (a Kubernetes headless
    service): when every member known failed in turn and no follower named
    a leader, `resolve` asks it again (at most every _RESOLVE_EVERY s), so
    pods that came back on new IPs are found, as in the C++ SDK."""

    def __init__(self, addresses, make, name=None, resolve=None):
        self._make = make
        self._name = name
        self._resolve = resolve or resolve_name
        self._resolved_at = float("-inf")  # the first failed round resolves
        self._lock = threading.Lock()
        self._addresses = list(addresses)
        self.grouped = len(self._addresses) > 1
        self._channels = {}
        self._current = 0
        self._pool = None

    # --- which member -------------------------------------------------
    def _channel_locked(self, address):
        channel = self._channels.get(address)
        if channel is None:
            channel = self._channels[address] = self._make(address,
                                                           self.grouped)
        return channel

    def current(self):
        """(address, channel) of the member believed to lead."""
        with self._lock:
            address = self._addresses[self._current]
            return address, self._channel_locked(address)

    def size(self):
        with self._lock:
            return len(self._addresses)

    def note_failure(self, address, error):
        """Learns from a call to `address` that failed with `error`; True if
        it is worth sending the call again elsewhere at once (a leader was
        named, or the group's name, resolved again after the last member
        failed, gave a new one). A member that did not answer in time may
        be hung (stopped, cut off): the next call tries the next one."""
        if not isinstance(error, grpc.RpcError) or error.code() not in (
                grpc.StatusCode.UNAVAILABLE,
                grpc.StatusCode.DEADLINE_EXCEEDED):
            return False
        from dogpiled.errors import error_details  # a cycle at import time
        reason, metadata, _ = error_details(error)
        leader = metadata.get("leader") if reason == "NOT_LEADER" else None
        with self._lock:
            self.grouped = self.grouped or reason == "NOT_LEADER"
            if self._addresses[self._current] != address:
                return True  # another call moved on already
            if leader:
                if leader not in self._addresses:
                    self._addresses.append(leader)
                named = self._addresses.index(leader)
                if named != self._current:
                    self._current = named
                    return True
            self._current = (self._current + 1) % len(self._addresses)
            now = time.monotonic()
            if (self._current != 0 or self._name is None or leader
                    or now - self._resolved_at < _RESOLVE_EVERY):
                return False
            self._resolved_at = now
        return self._resolve_again()

    def _resolve_again(self):
        """Adds the addresses the group's name resolves to now that are not
        members yet, and moves calls to the first of them (likely up); True
        if any."""
        found = self._resolve(*self._name)  # unlocked: DNS may take a while
        with self._lock:
            new = [a for a in dict.fromkeys(found) if a not in self._addresses]
            if new:
                self._current = len(self._addresses)
                self._addresses += new
            return bool(new)

    # --- grpc.Channel -------------------------------------------------
    def unary_unary(self, method, request_serializer=None,
                    response_deserializer=None, *args, **kwargs):
        leader = _LeaderUnary(self, method, request_serializer,
                              response_deserializer)
        return leader if self.grouped else _UntilRefused(leader)

    def unary_stream(self, method, request_serializer=None,
                     response_deserializer=None, *args, **kwargs):
        return _LeaderStream(self, "unary_stream", method,
                             request_serializer, response_deserializer)

    def stream_unary(self, method, request_serializer=None,
                     response_deserializer=None, *args, **kwargs):
        return _LeaderStream(self, "stream_unary", method,
                             request_serializer, response_deserializer)

    def stream_stream(self, method, request_serializer=None,
                      response_deserializer=None, *args, **kwargs):
        return _LeaderStream(self, "stream_stream", method,
                             request_serializer, response_deserializer)

    def subscribe(self, callback, try_to_connect=False):
        self.current()[1].subscribe(callback, try_to_connect)

    def unsubscribe(self, callback):
        with self._lock:
            channels = list(self._channels.values())
        for channel in channels:
            channel.unsubscribe(callback)

    def submit(self, fn):
        with self._lock:
            if self._pool is None:
                self._pool = concurrent.futures.ThreadPoolExecutor(
                    4, thread_name_prefix="dogpiled-group")
            return self._pool.submit(fn)

    def close(self):
        with self._lock:
            channels, self._channels = list(self._channels.values()), {}
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False)
        for channel in channels:
            channel.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class _LeaderUnary:
    def __init__(self, group, method, serializer, deserializer):
        self._group = group
        self._args = (method, serializer, deserializer)

    def __call__(self, request, timeout=None, metadata=None, **kwargs):
        deadline = None if timeout is None else time.monotonic() + timeout
        pause = _ROUND_PAUSE_FIRST
        tried = 0
        while True:
            address, channel = self._group.current()
            call = channel.unary_unary(*self._args)
            left = None if deadline is None else max(0.001, deadline - time.monotonic())
            try:
                return call(request, timeout=left, metadata=metadata, **kwargs)
            except grpc.RpcError as e:
                at_once = self._group.note_failure(address, e)
                tried += 1
                if e.code() != grpc.StatusCode.UNAVAILABLE:
                    raise
                if deadline is None and tried >= 3 * self._group.size():
                    raise
                if not at_once:
                    if deadline is not None and time.monotonic() + pause >= deadline:
                        raise
                    # A pause between rounds, not an ordering of threads.
                    threading.Event().wait(pause)
                    pause = min(pause * 2, _ROUND_PAUSE_MAX)

    def future(self, request, timeout=None, metadata=None, **kwargs):
        return self._group.submit(
            lambda: self(request, timeout=timeout, metadata=metadata, **kwargs))


class _UntilRefused:
    """A unary call to the one address given: straight to it, as on a
    plain channel (no lock, no retry: a single daemon pays nothing for
    this), until a follower's refusal makes the group `grouped`; that call
    is then sent again through the group with what is left of its timeout,
    and every later one goes there."""

    def __init__(self, leader):
        self._leader = leader
        self._group = leader._group
        self._address, channel = self._group.current()
        self._direct = channel.unary_unary(*leader._args)

    def __call__(self, request, timeout=None, metadata=None, **kwargs):
        if self._group.grouped:
            return self._leader(request, timeout=timeout, metadata=metadata,
                                **kwargs)
        sent = time.monotonic()
        try:
            return self._direct(request, timeout=timeout, metadata=metadata,
                                **kwargs)
        except grpc.RpcError as e:
            return self._again(e, sent, request, timeout, metadata, kwargs)

    def future(self, request, timeout=None, metadata=None, **kwargs):
        if self._group.grouped:
            return self._leader.future(request, timeout=timeout,
                                       metadata=metadata, **kwargs)
        sent = time.monotonic()
        return _RefusableFuture(
            self._direct.future(request, timeout=timeout, metadata=metadata,
                                **kwargs),
            lambda e: self._again(e, sent, request, timeout, metadata,
                                  kwargs))

    def _again(self, error, sent, request, timeout, metadata, kwargs):
        """The call's answer through the group if `error` showed a
        follower; else `error`, raised."""
        self._group.note_failure(self._address, error)
        if not self._group.grouped:
            raise error
        left = None if timeout is None else max(
            0.001, sent + timeout - time.monotonic())
        return self._leader(request, timeout=left, metadata=metadata,
                            **kwargs)

    def __getattr__(self, name):  # with_call: the plain call's
        return getattr(self._direct, name)


class _RefusableFuture:
    """A direct call's future whose result, if a follower refused it, is
    the call's answer through the group."""

    def __init__(self, future, again):
        self._future = future
        self._again = again

    def result(self, timeout=None):
        try:
            return self._future.result(timeout)
        except grpc.RpcError as e:
            return self._again(e)

    def __getattr__(self, name):
        return getattr(self._future, name)


class _LeaderStream:
    def __init__(self, group, kind, method, serializer, deserializer):
        self._group = group
        self._kind = kind
        self._args = (method, serializer, deserializer)

    def __call__(self, *args, **kwargs):
        address, channel = self._group.current()
        call = getattr(channel, self._kind)(*self._args)(*args, **kwargs)
        return _NotedCall(self._group, address, call)


class _NotedCall:
    """A stream call whose failure tells the group where to go next."""

    def __init__(self, group, address, call):
        self._group = group
        self._address = address
        self._call = call

    def __iter__(self):
        return self

    def __next__(self):
        try:
            return next(self._call)
        except grpc.RpcError as e:
            self._group.note_failure(self._address, e)
            raise

    def __getattr__(self, name):
        return getattr(self._call, name)


def resolve_name(host, port):
    """The distinct non-loopback "ip:port" addresses `host` resolves to
    (none if it does not); GroupChannel's `resolve` by default."""
    try:
        found = socket.getaddrinfo(host, int(port), type=socket.SOCK_STREAM)
    except OSError:
        return []
    resolved = []
    for family, _, _, _, sockaddr in found:
        ip = ipaddress.ip_address(sockaddr[0].split("%")[0])
        if ip.is_loopback or family not in (socket.AF_INET, socket.AF_INET6):
            continue
        entry = f"[{ip}]:{port}" if ip.version == 6 else f"{ip}:{port}"
        if entry not in resolved:
            resolved.append(entry)
    return resolved


def _name(entry):
    """(host, port) of one "name:port" entry; None for an IP, a gRPC URI
    ("unix:...", "dns:///...") or an entry without a port."""
    host, sep, port = entry.rpartition(":")
    if (not sep or not host or not port.isdigit() or "/" in host
            or host.split(":")[0] in ("unix", "dns", "ipv4", "ipv6")):
        return None
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        ipaddress.ip_address(host)
        return None
    except ValueError:
        return host, port


def expand_target(address, resolve=resolve_name):
    """The addresses `address` names: its comma-separated entries; or, for
    one "name:port" whose name resolves to more than one address that is
    not loopback (a Kubernetes headless service), each of those, as
    "ip:port" ("localhost" stays one daemon). Anything else (an IP, a gRPC
    URI such as "unix:..." or "dns:///...") is one entry. The C++ SDK
    reads targets the same way."""
    addresses = list(dict.fromkeys(
        a.strip() for a in address.split(",") if a.strip()))
    if len(addresses) != 1:
        return addresses or [address]
    name = _name(addresses[0])
    resolved = resolve(*name) if name else []
    return resolved if len(resolved) > 1 else addresses


def make_group_channel(address, resolve=resolve_name, **kwargs):
    """A GroupChannel (see make_channel for kwargs) for "host:port" (one
    daemon, or one member that names its leader when it refuses) or
    "host:port,host:port,..." or a name resolving to several members (a
    replicated group; see expand_target, resolved again as GroupChannel
    says)."""
    addresses = expand_target(address, resolve)
    name = None
    if len(addresses) > 1 and "," not in address:
        name = _name(address.strip())
    if len(addresses) <= 1:
        addresses = [address]
    tls = kwargs.get("tls") or kwargs.get("tls_ca") or kwargs.get("tls_cert")
    if tls and name:
        # Members reached by the IPs a name resolved to (then or later)
        # still show certificates for that name.
        options = dict(kwargs.pop("options", ()))
        options.setdefault("grpc.ssl_target_name_override", name[0])
        kwargs["options"] = tuple(options.items())
    return GroupChannel(addresses,
                        lambda a, grouped: make_channel(a, keepalive=grouped,
                                                        **kwargs),
                        name, resolve)
