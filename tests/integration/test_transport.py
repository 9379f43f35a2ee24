"""Bounded transport memory: a client that advertises a zero HTTP/2 window
and never reads cannot make the daemon hold more than the stated amount,
is cut off by keepalive, and Stats stays fast meanwhile.

The attacker is a raw HTTP/2 client (python3-h2): gRPC's own client would
read and flow-control properly."""
import socket
import struct
import time

import h2.config
import h2.connection
import h2.settings

from harness import as_key, dogpile_pb2, wait_until

MiB = 1 << 20
CONNECTIONS = 3
STREAMS = 100  # per connection: h2's own cap before it hears the server
PER_CONNECTION = 4 * MiB
KEEPALIVE_MS = 1000


def grpc_frame(message):
    body = message.SerializeToString()
    return struct.pack(">BI", 0, len(body)) + body


def stalled_client(port, request):
    """Opens a connection with a zero window, sends STREAMS Peeks, and
    returns the socket without ever reading from it."""
    sock = socket.create_connection(("127.0.0.1", port))
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    conn.local_settings = h2.settings.Settings(
        client=True, initial_values={h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 0})
    conn.initiate_connection()
    body = grpc_frame(request)
    for _ in range(STREAMS):
        sid = conn.get_next_available_stream_id()
        conn.send_headers(sid, [(":method", "POST"), (":scheme", "http"),
                                (":path", "/dogpiled.v1.Dogpile/Peek"),
                                (":authority", f"127.0.0.1:{port}"),
                                ("content-type", "application/grpc"), ("te", "trailers")])
        conn.send_data(sid, body, end_stream=True)
    sock.sendall(conn.data_to_send())
    return sock


def test_zero_window_reader_is_bounded_and_cut_off(make_daemon):
    d = make_daemon("--max-answer-bytes-per-connection", str(PER_CONNECTION),
                    "--keepalive-time-ms", str(KEEPALIVE_MS),
                    "--keepalive-timeout-ms", str(KEEPALIVE_MS))
    s = d.open()
    token = d.dogpile.Acquire(d.acquire(s, key="big", expire_ms=0)).token
    d.publish(s, token, b"v" * MiB, key="big")
    d.stats()
    before = d.rss_kib()

    request = dogpile_pb2.PeekRequest(registry="reg", key=as_key("big"))
    socks = [stalled_client(d.port, request) for _ in range(CONNECTIONS)]
    try:
        # Watch the daemon for two seconds: RSS (at most what the limits
        # allow) and Stats latency (it must not queue behind the stalled
        # answers).
        peak, slowest = before, 0.0
        end = time.monotonic() + 2.0
        while time.monotonic() < end:
            t0 = time.monotonic()
            d.stats()
            slowest = max(slowest, time.monotonic() - t0)
            peak = max(peak, d.rss_kib())
            time.sleep(0.05)
        grown_mib = (peak - before) / 1024
        # Unbounded, 300 stalled 1 MiB answers took about 600 MiB. Bounded:
        # each connection holds at most PER_CONNECTION (4 MiB) of answers,
        # each kept twice at most while gRPC serializes; 40 MiB is slack for
        # gRPC's per-stream state and the allocator.
        bound_mib = CONNECTIONS * 2 * PER_CONNECTION / MiB + 40
        print(f"RSS growth under {CONNECTIONS * STREAMS} stalled Peeks: "
              f"{grown_mib:.1f} MiB (bound {bound_mib:.0f} MiB); slowest Stats "
              f"{slowest * 1000:.1f} ms")
        assert grown_mib < bound_mib
        assert slowest < 1.0  # 3 s and more without the limits, on these shared cores

        # The daemon pings; a client that never reads never answers, and is
        # cut off after keepalive time plus timeout.
        for sock in socks:
            sock.settimeout(10 * KEEPALIVE_MS / 1000)
            t0 = time.monotonic()
            try:
                while sock.recv(1 << 16):
                    pass
            except ConnectionResetError:
                pass
            assert time.monotonic() - t0 < 10 * KEEPALIVE_MS / 1000
    finally:
        for sock in socks:
            sock.close()
    # Nothing of the attack is left: a normal client still reads the value.
    peek = d.dogpile.Peek(request, timeout=5)
    assert len(peek.value) == MiB


def test_parked_waiters_on_one_connection_all_get_a_large_value(make_daemon):
    """A Publish answering more parked calls of one connection than its
    answer budget holds queues the rest (no copy each) instead of failing
    them: every waiter of a stampede gets the value."""
    d = make_daemon("--max-answer-bytes-per-connection", str(PER_CONNECTION))
    waiters = 48  # 48 MiB of answers on one connection, 12 times its budget
    creator = d.open()
    token = d.dogpile.Acquire(d.acquire(creator, key="big", expire_ms=0)).token
    calls = [d.dogpile.Acquire.future(d.acquire(
        d.open(), key="big", expire_ms=0, wait_timeout_ms=60_000), timeout=60)
        for _ in range(waiters)]
    wait_until(lambda: d.stats().waiters == waiters, what="all parked")
    value = b"v" * MiB
    d.publish(creator, token, value, key="big")
    for call in calls:
        got = call.result()
        assert got.outcome == dogpile_pb2.AcquireResponse.OUTCOME_FRESH
        assert got.value == value
    # Every reservation was released: the connection reads a value again.
    assert len(d.dogpile.Peek(dogpile_pb2.PeekRequest(
        registry="reg", key=as_key("big"))).value) == MiB
