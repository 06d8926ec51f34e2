"""The gateway under hostile callers, over real sockets against a real gateway process: limits before auth
and before reading (body size while it streams, header size and count, header and body deadlines,
failed-auth attempts per address), and only the matched, rebuilt path ever forwarded."""
from __future__ import annotations

import http.client
import select
import socket
import time

import httpx
import pytest

from tests.support.gateway import CALLER_KEY, RecordingUpstream, auth, start_gateway

CHAT = {"query": "Hello gateway", "user": "gw-hardening", "inputs": {}}


def connect(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def read_response(sock: socket.socket, timeout: float = 10.0) -> bytes:
    """What the server sent until it closed the connection (or `timeout` passed, then what came so far)."""
    sock.settimeout(timeout)
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except (TimeoutError, ConnectionResetError):
        pass
    return data


def readable(sock: socket.socket) -> bool:
    return bool(select.select([sock], [], [], 0)[0])


def send_until_answered(sock: socket.socket, chunks, limit_bytes: int) -> tuple[int, bytes]:
    """Send chunks until the server answers (or refuses more), at most `limit_bytes`; (bytes sent, answer)."""
    sent = 0
    for chunk in chunks:
        if readable(sock) or sent >= limit_bytes:
            break
        try:
            sock.sendall(chunk)
        except (BrokenPipeError, ConnectionResetError):
            break
        sent += len(chunk)
    return sent, read_response(sock)


def peak_rss_mb(pid: int) -> float:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM in /proc status")


def status_of(answer: bytes) -> int:
    assert answer.startswith(b"HTTP/1.1 "), f"no HTTP response: {answer[:200]!r}"
    return int(answer.split(b" ", 2)[1])


@pytest.fixture(scope="module")
def gw(sim, tmp_path_factory):
    """A gateway with small limits: 1 MB bodies, 8 KiB heads, 50 headers, 1.5 s for a head, 2 s for a body."""
    server = start_gateway(tmp_path_factory.mktemp("gw-hard"), sim.url, env={
        "GATEWAY_MAX_BODY_MB": "1", "GATEWAY_MAX_HEADER_KB": "8", "GATEWAY_MAX_HEADERS": "50",
        "GATEWAY_HEADER_TIMEOUT": "1.5", "GATEWAY_BODY_TIMEOUT": "2", "GATEWAY_AUTH_FAILURES": "0"})
    yield server
    server.stop()


# -- the body: size counted while it streams, a deadline for all of it ----------------------------------------


def test_a_chunked_body_over_the_limit_is_refused_early_and_memory_stays_bounded(gw):
    """200 MB sent chunked (no length declared) against a 1 MB limit: 413 long before it is all sent, and the
    gateway's peak memory grows by little more than the limit (it read the whole body before: +490 MB)."""
    before = peak_rss_mb(gw.proc.pid)
    sock = connect(gw.url)
    sock.sendall(b"POST /v1/files/upload HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer " + CALLER_KEY.encode() +
                 b"\r\nContent-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n")
    piece = b"x" * 65536
    frame = b"%x\r\n" % len(piece) + piece + b"\r\n"
    total = 200 * 1024 * 1024
    sent, answer = send_until_answered(sock, (frame for _ in range(total // len(piece))), total)
    sock.close()
    assert status_of(answer) == 413
    assert b"file_too_large" in answer and b"connection: close" in answer.lower()
    assert sent < 20 * 1024 * 1024, f"{sent / 2**20:.0f} MB went in before the refusal"
    grew = peak_rss_mb(gw.proc.pid) - before
    assert grew < 40, f"the gateway's peak memory grew by {grew:.0f} MB for a 1 MB limit"


def test_a_declared_length_over_the_limit_is_refused_before_auth(gw):
    sock = connect(gw.url)
    sock.sendall(b"POST /v1/chat-messages HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\n"
                 b"Content-Length: 209715200\r\n\r\n")
    answer = read_response(sock)
    sock.close()
    assert status_of(answer) == 413  # not 401: nothing is looked at before the limits


def test_a_body_within_the_limit_still_passes_chunked(gw):
    r = httpx.post(f"{gw.url}/v1/chat-messages", content=iter([b'{"query": "hi", ', b'"user": "u1", "inputs": {}}']),
                   headers={**auth(), "Content-Type": "application/json"})
    assert r.status_code == 200 and r.json()["answer"]


def test_a_body_trickled_byte_by_byte_gets_408_and_the_connection_closes(gw):
    """1 byte/s for a 200-byte body: with a 2 s body deadline the gateway answers 408 and closes, instead of
    waiting for ever."""
    sock = connect(gw.url)
    sock.sendall(b"POST /v1/chat-messages HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer " + CALLER_KEY.encode() +
                 b"\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n")
    t0 = time.monotonic()
    answer = b""
    for _ in range(20):
        if readable(sock):
            answer = read_response(sock)
            break
        try:
            sock.sendall(b" ")
        except (BrokenPipeError, ConnectionResetError):
            break
        time.sleep(0.5)
    answer = answer or read_response(sock, timeout=2)
    waited = time.monotonic() - t0
    sock.close()
    assert status_of(answer) == 408 and b"request_timeout" in answer
    assert waited < 8, f"the connection stayed open {waited:.1f} s"


# -- the head: size, count, deadline (before any app code runs) -------------------------------------------------


def test_a_huge_header_is_refused_with_431_before_it_is_all_received(gw):
    """A 64 MB header against an 8 KiB limit: refused once the limit's worth arrived (what was sent beyond
    it sits in the kernel's socket buffers), and the gateway never holds it in memory."""
    before = peak_rss_mb(gw.proc.pid)
    sock = connect(gw.url)
    sock.sendall(b"GET /v1/parameters HTTP/1.1\r\nHost: gw\r\nX-Big: ")
    piece = b"a" * 65536
    total = 64 * 1024 * 1024
    sent, answer = send_until_answered(sock, (piece for _ in range(total // len(piece))), total)
    sock.close()
    assert status_of(answer) == 431 and b"request_header_fields_too_large" in answer
    assert sent < 16 * 1024 * 1024, f"{sent / 2**20:.1f} MB of header went in before the refusal"
    grew = peak_rss_mb(gw.proc.pid) - before
    assert grew < 16, f"the gateway's peak memory grew by {grew:.0f} MB for an 8 KiB header limit"


def test_too_many_headers_are_refused_with_431(gw):
    sock = connect(gw.url)
    headers = b"".join(b"X-H%d: v\r\n" % i for i in range(20_000))
    sent, answer = send_until_answered(sock, [b"GET /v1/parameters HTTP/1.1\r\nHost: gw\r\n", headers, b"\r\n"],
                                       10 * 1024 * 1024)
    sock.close()
    assert status_of(answer) == 431 and b"header fields" in answer
    # A request within the limits is served as before.
    ok = httpx.get(f"{gw.url}/v1/parameters", headers={**auth(), **{f"X-H{i}": "v" for i in range(30)}})
    assert ok.status_code == 200


def test_a_huge_url_is_refused(gw):
    sock = connect(gw.url)
    sock.sendall(b"GET /v1/parameters?q=" + b"a" * 100_000 + b" HTTP/1.1\r\nHost: gw\r\n\r\n")
    answer = read_response(sock)
    sock.close()
    assert status_of(answer) in (414, 431)


def test_slow_header_connections_are_closed(gw):
    """20 connections trickling their headers a byte every 0.3 s, and one that sends nothing: all are answered
    408 (or closed) within the 1.5 s head deadline plus slack, instead of staying open."""
    socks = [connect(gw.url) for _ in range(20)]
    silent = connect(gw.url)
    line = b"GET /v1/parameters HTTP/1.1\r\nHost: gw\r\nX-Slow: " + b"s" * 100
    t0 = time.monotonic()
    closed: dict[int, bytes] = {}
    for i in range(len(line)):
        for n, s in enumerate(socks):
            if n in closed:
                continue
            if readable(s):
                closed[n] = read_response(s, timeout=2)
                continue
            try:
                s.sendall(line[i:i + 1])
            except (BrokenPipeError, ConnectionResetError):
                closed[n] = b""
        if len(closed) == len(socks) or time.monotonic() - t0 > 10:
            break
        time.sleep(0.3)
    waited = time.monotonic() - t0
    assert len(closed) == len(socks), f"{len(socks) - len(closed)} slow-header connections still open after {waited:.0f} s"
    assert all(status_of(a) == 408 for a in closed.values() if a)
    silent.settimeout(5)
    assert silent.recv(100) == b""  # closed (no 408 for a request never begun), not timed out at 5 s
    for s in socks + [silent]:
        s.close()


def test_keep_alive_connections_still_serve_several_requests(gw):
    """The head deadline is per request: an idle keep-alive connection is not cut at 1.5 s."""
    conn = http.client.HTTPConnection(gw.url.removeprefix("http://"), timeout=10)
    for _ in range(2):
        conn.request("GET", "/v1/parameters", headers=auth())
        r = conn.getresponse()
        assert r.status == 200
        r.read()
        time.sleep(2)  # longer than the head deadline
    conn.close()


def test_connections_past_the_configured_maximum_get_503(sim, tmp_path):
    server = start_gateway(tmp_path, sim.url, env={"GATEWAY_MAX_CLIENT_CONNECTIONS": "4"})
    try:
        assert httpx.get(f"{server.url}/v1/parameters", headers=auth()).status_code == 200
        held = [connect(server.url) for _ in range(4)]
        deadline = time.monotonic() + 5  # the server accepts them in its own time
        while (r := httpx.get(f"{server.url}/v1/parameters", headers=auth())).status_code != 503:
            assert time.monotonic() < deadline, f"still {r.status_code} with 4 connections held"
            time.sleep(0.1)
        for s in held:
            s.close()
        deadline = time.monotonic() + 10
        while httpx.get(f"{server.url}/v1/parameters", headers=auth()).status_code != 200:
            assert time.monotonic() < deadline, "still refused after the held connections closed"
            time.sleep(0.1)
    finally:
        server.stop()


# -- failed-auth attempts per client address ----------------------------------------------------------------------


def test_failed_auth_attempts_are_limited_per_address_and_forwarded_for_cannot_dodge_it(sim, tmp_path):
    server = start_gateway(tmp_path, sim.url, env={"GATEWAY_AUTH_FAILURES": "3", "GATEWAY_AUTH_WINDOW": "60"})
    try:
        url = f"{server.url}/v1/parameters"
        statuses = [httpx.get(url, headers={"Authorization": f"Bearer wrong-{i}", "X-Forwarded-For": f"10.0.0.{i}"})
                    .status_code for i in range(5)]
        assert statuses == [401, 401, 401, 429, 429]
        refused = httpx.get(url, headers=auth())  # even a good key: this address may not guess any more
        assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
        assert "failed gateway-key attempts" in refused.json()["message"]
        # Another address is not affected (the loopback net: bind another source address).
        other = httpx.Client(transport=httpx.HTTPTransport(local_address="127.0.0.2"))
        assert other.get(url, headers=auth()).status_code == 200
        other.close()
        assert "dify_gateway_auth_blocked_total 3.0" in httpx.get(f"{server.url}/metrics").text
    finally:
        server.stop()


def test_behind_a_trusted_proxy_the_forwarded_address_is_the_client(tmp_path):
    with RecordingUpstream() as up:
        server = start_gateway(tmp_path, up.url, up.GOOD_KEY, env={
            "GATEWAY_AUTH_FAILURES": "2", "GATEWAY_TRUSTED_PROXIES": "127.0.0.1"})
        try:
            url = f"{server.url}/v1/parameters"
            bad = {"Authorization": "Bearer wrong", "X-Forwarded-For": "203.0.113.9"}
            assert [httpx.get(url, headers=bad).status_code for _ in range(3)] == [401, 401, 429]
            r = httpx.get(url, headers={**auth(), "X-Forwarded-For": "203.0.113.10", "X-Real-IP": "203.0.113.10"})
            assert r.status_code == 200
        finally:
            server.stop()
        (received,) = [s for s in up.seen if s["raw_path"] == "/v1/parameters"]
        assert received["headers"]["x-forwarded-for"] == "203.0.113.10"  # trusted: passed on
        assert received["headers"]["x-real-ip"] == "203.0.113.10"


def test_caller_sent_forwarding_headers_are_not_passed_upstream_by_default(tmp_path):
    with RecordingUpstream() as up:
        server = start_gateway(tmp_path, up.url, up.GOOD_KEY)
        try:
            r = httpx.get(f"{server.url}/v1/parameters", headers={
                **auth(), "X-Forwarded-For": "1.2.3.4", "Forwarded": "for=1.2.3.4", "X-Real-IP": "1.2.3.4",
                "X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "https"})
            assert r.status_code == 200
        finally:
            server.stop()
        (received,) = [s for s in up.seen if s["raw_path"] == "/v1/parameters"]
        for name in ("x-forwarded-for", "forwarded", "x-real-ip", "x-forwarded-host", "x-forwarded-proto"):
            assert name not in received["headers"]


# -- the path allow-list: ids are UUIDs, the forwarded path is rebuilt ---------------------------------------------

ID = "8a02a502-4915-4894-b9b7-c666bc6369e9"  # letters too: ids arrive lower-case
ID2 = "2275ac80-59e2-4bf3-bd76-99c2c3371196"
# Every route with an id slot: (method, template); {id} slots are filled in turn.
ID_ROUTES = [
    ("POST", "/chat-messages/{}/stop"),
    ("POST", "/completion-messages/{}/stop"),
    ("POST", "/workflows/{}/run"),
    ("GET", "/workflows/run/{}"),
    ("POST", "/workflows/tasks/{}/stop"),
    ("GET", "/workflow/{}/events"),
    ("GET", "/files/{}/preview"),
    ("POST", "/messages/{}/feedbacks"),
    ("GET", "/messages/{}/suggested"),
    ("DELETE", "/conversations/{}"),
    ("POST", "/conversations/{}/name"),
    ("GET", "/conversations/{}/variables"),
    ("PUT", "/conversations/{}/variables/{}"),
    ("GET", "/end-users/{}"),
]
FIXED_ROUTES = [("POST", "/chat-messages"), ("POST", "/completion-messages"), ("POST", "/workflows/run"),
                ("GET", "/workflows/logs"), ("GET", "/parameters"), ("GET", "/info"), ("GET", "/meta"), ("GET", "/site"),
                ("POST", "/files/upload"), ("POST", "/audio-to-text"), ("POST", "/text-to-audio"),
                ("GET", "/app/feedbacks"), ("GET", "/messages"), ("GET", "/conversations")]
HOSTILE = ["..", "%2e%2e", "%2E%2E", ".%2e", "%252e%252e", "%2F", "%252F", "..%2F..%2Finfo", "%252F..%252F..",
           f"{ID}%2F..", f"{ID}%252F..%252Fx", "abc", f"{ID}x", "%00", "."]


def send(base: str, method: str, path: str) -> int:
    """The raw path as given, unnormalised (httpx would resolve `..` itself)."""
    conn = http.client.HTTPConnection(base.removeprefix("http://"), timeout=10)
    body = b'{"user": "u"}' if method in ("POST", "PUT") else None
    conn.request(method, path, body=body, headers={**auth(), "Content-Type": "application/json"})
    r = conn.getresponse()
    r.read()
    conn.close()
    return r.status


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    with RecordingUpstream() as up:
        server = start_gateway(tmp_path_factory.mktemp("gw-paths"), up.url, up.GOOD_KEY,
                               env={"GATEWAY_AUTH_FAILURES": "0", "GATEWAY_ISOLATE_CALLERS": "false"})
        yield server, up  # isolation off: queries and bodies pass as sent (test_gateway_isolation covers it)
        server.stop()


@pytest.mark.parametrize("method,template", ID_ROUTES, ids=[t for _, t in ID_ROUTES])
def test_hostile_ids_never_reach_upstream(recorded, method, template):
    server, up = recorded
    for hostile in HOSTILE:
        slots = template.count("{}")
        for which in range(slots):  # the hostile value in each slot, a good id in the others
            ids = [hostile if i == which else ID for i in range(slots)]
            before = len(up.seen)
            status = send(server.url, method, "/v1" + template.format(*ids))
            assert status == 404, f"{method} {template} with {hostile!r}: {status}"
            assert up.seen[before:] == [], f"{hostile!r} in {template} reached upstream as {up.seen[before:]}"


@pytest.mark.parametrize("method,template", ID_ROUTES, ids=[t for _, t in ID_ROUTES])
def test_good_ids_are_forwarded_as_exactly_the_matched_path(recorded, method, template):
    server, up = recorded
    ids = [ID, ID2][:template.count("{}")]
    before = len(up.seen)
    # upper-case ids (Dify's UUID routes take them) arrive lower-case, as Dify prints them
    assert send(server.url, method, "/v1" + template.format(*[i.upper() for i in ids])) == 200
    (got,) = up.seen[before:]
    assert (got["method"], got["raw_path"]) == (method, "/v1" + template.format(*ids))


@pytest.mark.parametrize("method,path", FIXED_ROUTES, ids=[p for _, p in FIXED_ROUTES])
def test_fixed_routes_forward_their_path_and_reject_dot_segments_around_them(recorded, method, path):
    server, up = recorded
    before = len(up.seen)
    assert send(server.url, method, f"/v1{path}?user=u") == 200
    (got,) = up.seen[before:]
    assert (got["method"], got["raw_path"], got["query"]) == (method, f"/v1{path}", "user=u")
    for hostile in (f"/v1/x/..{path}", f"/v1/%2e%2e{path}", f"/v1{path}/..", f"/v1{path}%2F..%2Finfo", f"/v1/{path}"):
        before = len(up.seen)
        assert send(server.url, method, hostile) == 404, hostile
        assert up.seen[before:] == [], f"{hostile} reached upstream"


# -- the gateway's own Dify key: checked by /ready, never blamed on the caller ------------------------------------


def test_a_refused_dify_key_makes_ready_fail_and_callers_get_502_not_401(sim, tmp_path):
    from lib.dify import DifyClient, RetryPolicy, ServerError

    server = start_gateway(tmp_path, sim.url, "app-not-a-real-key")
    try:
        ready = httpx.get(f"{server.url}/ready")
        assert ready.status_code == 503
        assert ready.json()["dify_key"] == "refused" and "Dify key was refused" in ready.json()["reason"]
        r = httpx.post(f"{server.url}/v1/chat-messages", json=CHAT, headers=auth())
        assert r.status_code == 502
        assert r.json()["code"] == "gateway_upstream_key_refused"
        assert "the gateway's Dify key was refused" in r.json()["message"]
        with DifyClient(f"{server.url}/v1", CALLER_KEY, retry=RetryPolicy(max_attempts=1)) as client:
            with pytest.raises(ServerError):  # a server-side problem, not AuthenticationError
                client.parameters()
        assert 'kind="key_refused"' in httpx.get(f"{server.url}/metrics").text
        assert "app-not-a-real-key" not in server.log()
    finally:
        server.stop()


def test_ready_checks_the_key_with_info_cached_and_learns_of_a_refusal_from_calls(tmp_path):
    with RecordingUpstream() as up:
        server = start_gateway(tmp_path, up.url, up.GOOD_KEY, env={"GATEWAY_READY_CACHE": "60"})
        try:
            for _ in range(5):
                r = httpx.get(f"{server.url}/ready")
                assert r.status_code == 200 and r.json()["dify_key"] == "accepted"
            info_calls = [s for s in up.seen if s["raw_path"] == "/v1/info"]
            assert len(info_calls) == 1, "the key check is cached"
            assert info_calls[0]["headers"]["authorization"] == f"Bearer {up.GOOD_KEY}"
            up.GOOD_KEY = "app-rotated"  # upstream now refuses the gateway's key
            r = httpx.get(f"{server.url}/v1/parameters", headers=auth())
            assert r.status_code == 502 and r.json()["code"] == "gateway_upstream_key_refused"
            ready = httpx.get(f"{server.url}/ready")  # at once, not when the cache expires
            assert ready.status_code == 503 and ready.json()["dify_key"] == "refused"
        finally:
            server.stop()
