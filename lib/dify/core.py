"""The sans-IO core shared by DifyClient and AsyncDifyClient.

The clients' I/O loops only send, sleep and read; every decision is taken here: what a request looks
like (`Spec`), whether an attempt may go (`Call.admit`), what a failure means and whether it may be
retried (`Call.transport_failed`, `Call.error_response`), how an answer becomes a typed result
(`Call.result`); stream.py, which builds on this module (never the reverse), turns SSE bytes into
typed events (`StreamState.feed`). Every error sentence is written in errors.py. The retry rule
lives in one place, `Call._retry_or_raise`:

- retried: a connection that could not be opened (the request never left), and 429/502/503/504
  answers, i.e. before any event of a stream was read; idempotent calls (GETs, stops, renames...)
  also after any transport failure;
- never retried: a generation POST (chat, completion, workflow run) once Dify may have started it:
  a timeout or broken connection after sending, a stream that broke midway, and a 504 to a blocking
  generation (the run goes on behind the proxy). Those raise with `may_have_been_processed=True`.
"""
from __future__ import annotations

import email.utils
import logging
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypedDict

import httpx
import orjson

from . import errors as E
from .hooks import Hooks, fire
from .keys import ApiKey, AuthHeader, masked_bearer, redact
from .options import DEFAULT, ClientOptions
from .resilience import (
    NO_RETRY,
    CircuitBreaker,
    ConcurrencyLimit,
    RetryPolicy,
    Timeouts,
    TokenBucket,
    min_timeout,
)
from .timing import Timing, clock

log = logging.getLogger("lib.dify")

USER_AGENT = "dify-console/0.1 (+lib.dify)"


# -- what a request is -----------------------------------------------------------------------------------


@dataclass(slots=True)
class Spec:
    """One Service API request, as data. `route` is the low-cardinality label used by hooks."""

    method: str
    path: str
    route: str
    json: Any = None
    params: dict[str, Any] | None = None
    files: dict[str, tuple[str, bytes, str]] | None = None  # multipart parts
    data: dict[str, Any] | None = None  # multipart form fields
    parse: Callable[[Any], Any] | None = None  # decoded JSON -> typed result
    kind: str = "json"  # json | bytes | stream
    stream_mode: str | None = None  # chat | completion | workflow: how a stream becomes a result
    generation: bool = False  # a chat/completion/workflow run: never resent once it may have started
    idempotent: bool = False  # safe to resend after any transport failure
    user: str | None = None  # generation streams: for stop()


class CallOptions(TypedDict, total=False):
    """Per-call options every endpoint method takes as keywords."""

    headers: Mapping[str, str]  # extra headers, e.g. X-Sim-Fault for tests
    timeouts: Timeouts


def drop_none(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None}


def merge_headers(base: Mapping[str, str], extra: Mapping[str, str] | None) -> dict[str, str]:
    """`extra` over `base`, names compared case-insensitively (httpx would send both `Authorization` and
    `authorization`). An Authorization in `extra` is dropped: the client always sends its own key."""
    out = dict(base)
    if not extra:
        return out
    names = {k.lower(): k for k in out}
    for k, v in extra.items():
        low = k.lower()
        if low == "authorization":
            log.debug("ignored an Authorization header passed in headers=: the client sends its own key")
            continue
        if low in names:
            del out[names[low]]
        out[k] = v
        names[low] = k
    return out


def _lone_surrogate(value: Any, path: str = "") -> str | None:
    """Where a str with a lone surrogate (not encodable as UTF-8) sits in a JSON-like value, e.g. "query"."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            return f"{path or 'the value'} (character {exc.start})"
        return None
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, (list, tuple)) else ()
    for k, v in items:
        where = _lone_surrogate(v, f"{path}.{k}" if path else str(k))
        if where:
            return where
    return None


# -- the client's shared configuration -----------------------------------------------------------------


class ClientCore:
    """Configuration and shared resilience state of one client (sync or async): `options` (a
    ClientOptions) and/or its fields as keywords, merged by ClientOptions.build."""

    def __init__(self, base_url: str, api_key: str, *, options: ClientOptions | None = None, **overrides: Any) -> None:
        opts = ClientOptions.build(options, overrides)
        base = (base_url or "").strip().rstrip("/")
        if not base.startswith(("http://", "https://")):
            raise E.base_url_scheme(base_url)
        try:
            httpx.URL(base)
        except (httpx.InvalidURL, ValueError, TypeError) as exc:
            raise E.base_url_invalid(base_url, exc) from None
        self.options = opts
        self.base_url = base
        self.key = ApiKey(api_key)
        self.timeouts = opts.timeouts or Timeouts()
        self.retry = opts.retry if opts.retry is not None else RetryPolicy()
        rate_limit, max_concurrency = opts.rate_limit, opts.max_concurrency
        self.bucket = TokenBucket(rate_limit) if isinstance(rate_limit, (int, float)) else rate_limit
        self.limit = ConcurrencyLimit(max_concurrency) if isinstance(max_concurrency, int) else max_concurrency
        self.hooks = opts.hooks or Hooks()
        breaker = CircuitBreaker() if opts.breaker is DEFAULT else opts.breaker
        if breaker is not None and breaker.on_change is None:
            breaker.on_change = self._breaker_changed
        self.breaker: CircuitBreaker | None = breaker
        self.headers = merge_headers({"User-Agent": USER_AGENT}, opts.headers)
        self._auth = AuthHeader(self.key)
        self._urls: dict[str, httpx.URL] = {}

    def _breaker_changed(self, old: str, new: str) -> None:
        log.warning("circuit breaker for %s: %s -> %s", self.base_url, old, new)
        fire(self.hooks.on_breaker_change, old, new)

    def url(self, path: str) -> httpx.URL:
        # Parsing a URL is a third of building an httpx.Request: parse each path once (bounded cache).
        url = self._urls.get(path)
        if url is None:
            url = httpx.URL(self.base_url + path)
            if len(self._urls) < 1024:
                self._urls[path] = url
        return url

    def redact(self, text: str) -> str:
        return redact(text, self.key)

    def call(self, spec: Spec, options: CallOptions) -> Call:
        return Call(self, spec, options)

    def __repr__(self) -> str:
        return f"ClientCore(base_url={self.base_url!r}, api_key={self.key.masked!r})"


def parse_retry_after(value: str | None) -> float | None:
    """`Retry-After` as seconds: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


# -- one call: attempts, deadlines, decisions ------------------------------------------------------------


class Call:
    """The state of one logical call across its attempts. The I/O loop drives it:

    admit() -> [slot] -> request() -> sent() -> send -> head() -> result() | error_response() | stream_opened()
    and on a transport exception transport_failed(); a returned float is a backoff to sleep, then loop.
    """

    __slots__ = ("attempt", "core", "deadline", "last_request", "options", "policy", "spec", "timeouts", "timing")

    def __init__(self, core: ClientCore, spec: Spec, options: CallOptions) -> None:
        self.core, self.spec, self.options = core, spec, options
        self.timing = Timing()
        self.attempt = 0
        self.timeouts = options.get("timeouts") or core.timeouts
        self.deadline = self.timing.start + self.timeouts.total if self.timeouts.total else None
        self.policy = core.retry if core.retry.max_attempts > 1 else NO_RETRY
        self.last_request: httpx.Request | None = None

    # before an attempt

    def admit(self) -> float:
        """Check the breaker (raises CircuitOpenError) and take a rate-limit token: the seconds to wait.
        The breaker is asked once per call: a call's retries are its own, not new calls."""
        breaker = self.core.breaker
        if breaker is not None and self.attempt == 0:
            wait = breaker.allow()
            if wait is not None:
                raise self.fail(self._circuit_open(wait))
        bucket = self.core.bucket
        if bucket is None:
            return 0.0
        wait = bucket.reserve()
        if wait > 0:
            self.check_deadline(wait)
            self.timing.queued += wait
            fire(self.core.hooks.on_rate_limit_wait, "rate", wait)
        return wait

    def slot_timeout(self) -> float | None:
        return None if self.deadline is None else max(0.0, self.deadline - clock())

    def slot_waited(self, seconds: float, acquired: bool) -> None:
        self.timing.queued += seconds
        if seconds > 0.0005:
            fire(self.core.hooks.on_rate_limit_wait, "concurrency", seconds)
        if not acquired:
            raise self.fail(self._deadline_error("waiting for a concurrency slot"))

    def check_deadline(self, ahead: float = 0.0) -> None:
        if self.deadline is not None and clock() + ahead > self.deadline:
            raise self.fail(self._deadline_error("queued for the rate limit"))

    def request(self, *, async_stream: bool = False) -> httpx.Request:
        """The httpx.Request of the next attempt."""
        self.attempt += 1
        spec, core, t = self.spec, self.core, self.timeouts
        remaining = None if self.deadline is None else self.deadline - clock()
        if spec.kind == "stream":
            # Async streams enforce first_event with asyncio.timeout, so the transport's read timeout
            # (aiohttp fixes it per response) is the idle one; sync streams narrow the head's wait to
            # first_event and widen it back to idle after the headers (see stream_opened).
            read = min_timeout(t.idle, remaining) if async_stream else min_timeout(t.idle, t.first_event, remaining)
        elif spec.generation:
            read = min_timeout(t.first_event, remaining)
        else:
            read = min_timeout(t.idle, remaining)
        extra = self.options.get("headers")
        headers = {**merge_headers(core.headers, extra), **core._auth} if extra else {**core.headers, **core._auth}
        content = None
        try:
            if spec.files is None and spec.json is not None:
                headers["Content-Type"] = "application/json"
                content = orjson.dumps(spec.json)
            if spec.kind == "stream":
                headers["Accept"] = "text/event-stream"
            timeout = {"connect": t.connect, "read": read, "write": min_timeout(t.connect, read), "pool": None}
            request = httpx.Request(
                spec.method, core.url(spec.path), params=spec.params, headers=headers, content=content,
                files=spec.files, data=spec.data, extensions={"timeout": timeout},
            )
        except (TypeError, ValueError, httpx.InvalidURL) as exc:  # orjson's JSONEncodeError is a TypeError
            raise self.fail(self._unsendable(exc)) from None
        self.last_request = request
        return request

    def _unsendable(self, exc: Exception) -> E.DifyError:
        spec = self.spec
        where = (_lone_surrogate(spec.json) or _lone_surrogate(spec.params) or _lone_surrogate(spec.data)
                 or _lone_surrogate(self.options.get("headers")))
        if where:
            return E.lone_surrogate(spec.route, where)
        return E.unencodable(spec.route, self.core.redact(str(exc)))

    def sent(self) -> None:
        self.timing.sent = clock()
        self.timing.attempts = self.attempt
        fire(self.core.hooks.on_request, self.spec.route, self.attempt)

    # after an attempt

    def head(self, status: int, headers: httpx.Headers) -> bool:
        """Headers arrived: time them, tell the breaker. True if this is a success to read on."""
        now = clock()
        t = self.timing
        t.first_byte = now
        fire(self.core.hooks.on_response, self.spec.route, status, now - (t.sent or now))
        return 200 <= status < 300

    def transport_failed(self, exc: Exception) -> float:
        """A transport exception before an answer: the backoff to sleep, or raises the typed error."""
        host = httpx.URL(self.core.base_url).host
        detail = self.core.redact(str(exc) or type(exc).__name__)
        never_sent = isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout))
        maybe = self.spec.generation and not never_sent
        err: E.DifyError
        if isinstance(exc, httpx.TimeoutException) and self.past_deadline():
            err = self._deadline_error("waiting for Dify's answer" if not never_sent else f"connecting to {host}")
            err.may_have_been_processed = maybe
            raise self.fail(err)
        route = self.spec.route
        if isinstance(exc, httpx.ConnectTimeout):
            err = E.connect_timeout(host, self.timeouts.connect, route)
        elif isinstance(exc, httpx.ConnectError):
            err = E.connect_failed(host, detail, route)
        elif isinstance(exc, httpx.TimeoutException):
            err = E.answer_timeout(host, route, self._budgets(), may_have_been_processed=maybe)
        elif isinstance(exc, (httpx.UnsupportedProtocol, httpx.InvalidURL)):
            raise self.fail(E.base_url_unusable(detail, route)) from None
        else:
            err = E.connection_failed(host, route, detail, may_have_been_processed=maybe)
        return self._retry_or_raise(err, never_sent or self.spec.idempotent, None, type(exc).__name__)

    def answer_deadline(self, stream: bool) -> float | None:
        """The instant the wait for an answer's headers ends: first_event for a stream, and the total deadline."""
        first = (self.timing.sent or clock()) + self.timeouts.first_event if stream and self.timeouts.first_event else None
        if first is None:
            return self.deadline
        return first if self.deadline is None else min(first, self.deadline)

    def past_deadline(self) -> bool:
        """The total deadline has passed (within the 2 ms a timer may round to)."""
        return self.deadline is not None and clock() >= self.deadline - 0.002

    def _budgets(self) -> str:
        t = self.timeouts
        return E.timeouts_in_force(t.first_event if self.spec.generation else None, t.idle, t.total)

    def error_response(self, status: int, headers: httpx.Headers, body: bytes) -> float:
        """An HTTP error answer: the backoff to sleep, or raises the typed error."""
        err = self.error_from(status, headers, body)
        retry_after = parse_retry_after(headers.get("retry-after")) if status in (429, 503) else None
        err.retry_after = retry_after
        retryable = status in self.policy.statuses
        if status == 504 and self.spec.generation and self.spec.kind != "stream":
            # A gateway timeout on a blocking run: Dify is most likely still generating behind the proxy.
            retryable, err.may_have_been_processed = False, True
            err.hint = E.GATEWAY_TIMEOUT_HINT
        return self._retry_or_raise(err, retryable, retry_after, f"HTTP {status}")

    def error_from(self, status: int, headers: httpx.Headers, body: bytes) -> E.DifyError:
        route = self.spec.route
        ctype = headers.get("content-type", "")
        data: Any = None
        if "json" in ctype:
            try:
                data = orjson.loads(body)
            except orjson.JSONDecodeError:
                data = None
        if isinstance(data, dict) and ("code" in data or "message" in data):
            message = self.core.redact(str(data.get("message") or ""))
            return E.api_error(status, data.get("code"), message, route=route)
        # Not Dify's envelope: a proxy's page, a plain-text 429, or not a Dify API at all. Redacted
        # before it is cut: a cut key is no longer the key, and would pass the redaction whole.
        snippet = _text_snippet(body, self.core.redact)
        if status == 404 and "The requested URL was not found on the server" in snippet:
            return E.no_such_route(route, status, snippet)
        return E.not_dify_answer(status, httpx.codes.get_reason_phrase(status), snippet, route, self.core.base_url, ctype)

    def _retry_or_raise(self, err: E.DifyError, retryable: bool, retry_after: float | None, reason: str) -> float:
        if retryable and self.attempt < self.policy.max_attempts:
            delay = self.policy.delay(self.attempt, retry_after)
            if delay is None:
                err.hint = E.retry_after_too_long(err.hint, retry_after)
            elif self.deadline is None or clock() + delay < self.deadline:
                log.info("retrying %s after %s (attempt %d, in %.2f s)", self.spec.route, reason, self.attempt, delay)
                fire(self.core.hooks.on_retry, self.spec.route, self.attempt, delay, reason)
                self.timing.queued += delay
                return delay
        raise self.fail(err)

    def fail(self, err: E.DifyError, at: float | None = None) -> E.DifyError:
        """Finish the call with an error: stamp it, time it, tell the breaker, report it. Returns it for `raise`."""
        t = self.timing
        t.end = at if at is not None else clock()
        request = self.last_request
        if request is not None and "authorization" in request.headers:
            # Exception chains and tracebacks keep the request (httpx errors hold it): scrub the key from it.
            request.headers["Authorization"] = masked_bearer(self.core.key, ascii=True)
        breaker = self.core.breaker
        if breaker is not None and t.sent is not None and not isinstance(err, E.CircuitOpenError):
            if _dify_unwell(err):
                breaker.record_failure(_failure_reason(err))
            else:
                breaker.record_success()  # Dify answered (a 4xx, a failed run): it is up
        t.outcome = "error"
        err.attempts, err.timing = self.attempt, t
        if err.route is None:
            err.route = self.spec.route
        log.debug("%s failed after %d attempt(s): %s", self.spec.route, self.attempt, err.summary)
        fire(self.core.hooks.on_complete, self.spec.route, t, err)
        return err

    def _circuit_open(self, wait: float) -> E.CircuitOpenError:
        at = time.strftime("%H:%M:%S", time.localtime(time.time() + wait))
        breaker = self.core.breaker
        last = breaker.last_failure if breaker else None
        probing = breaker is not None and breaker.probing
        return E.circuit_open(self.core.base_url, last, at, wait, probing=probing, route=self.spec.route)

    def _deadline_error(self, doing: str) -> E.DifyError:
        return E.deadline_exceeded(self.spec.route, self.timeouts.total, doing)

    # success

    def result(self, status: int, headers: httpx.Headers, body: bytes) -> Any:
        """A 2xx answer to a blocking call: the typed result."""
        spec, t = self.spec, self.timing
        now = clock()
        if spec.kind == "bytes":
            return self._done(body, now)
        data: Any = {}
        if body.strip():
            ctype = headers.get("content-type", "")
            if "json" not in ctype:
                raise self.fail(self.error_from(status, headers, body))
            try:
                data = orjson.loads(body)
            except orjson.JSONDecodeError:
                raise self.fail(E.not_json(spec.route)) from None
        try:
            result = spec.parse(data) if spec.parse else data
        except E.DifyError as err:  # the parser read a typed failure in a 200 (an unknown run id)
            err.route = err.route or spec.route
            raise self.fail(err) from None
        except ValueError as exc:
            raise self.fail(E.off_contract(spec.route, exc)) from None
        if spec.stream_mode == "workflow" and getattr(result, "status", None) == "failed":
            # A workflow whose node failed answers 200 with data.status "failed" (Dify 1.12): raise, keep the result.
            failed = E.run_failed(self.core.redact(result.error or ""), route=spec.route, workflow_run_id=result.workflow_run_id)
            failed.result = result
            t.first_event = t.first_content = now
            t.usage = None
            result.timing = t
            raise self.fail(failed, now)
        if spec.generation:
            t.first_event = t.first_content = now
            t.content.append(now)
            t.events = 1
            t.usage = getattr(result, "usage", None)
        if hasattr(result, "timing"):
            result.timing = t
        return self._done(result, now)

    def _done(self, result: Any, now: float, outcome: str = "ok") -> Any:
        self.timing.end = now
        self.timing.outcome = outcome
        if outcome == "ok" and self.core.breaker is not None:
            self.core.breaker.record_success()
        fire(self.core.hooks.on_complete, self.spec.route, self.timing, None)
        return result

    def abandoned(self) -> None:
        """The caller left before the end (closed a stream early, was cancelled): close the record."""
        if self.timing.end is None:
            self._done(None, clock(), "abandoned")

    def stream_opened(self, headers: httpx.Headers, request: httpx.Request | None = None) -> None:
        """A 2xx answer to a streaming call: check it is SSE and widen the read timeout to idle; the
        client then reads it with a stream.StreamState (which builds on this module, not the reverse)."""
        ctype = headers.get("content-type", "")
        if "text/event-stream" not in ctype:
            raise self.fail(E.not_event_stream(self.core.base_url, self.spec.route, ctype))
        if request is not None:
            # httpcore reads this dict when the body starts: from here on the read timeout is idle.
            timeout = request.extensions.get("timeout")
            if isinstance(timeout, dict):
                timeout["read"] = min_timeout(self.timeouts.idle, None if self.deadline is None else self.deadline - clock())


def _text_snippet(body: bytes, redact: Callable[[str], str], limit: int = 160) -> str:
    """The readable start of a non-JSON body, redacted first, then cut to `limit` characters."""
    text = redact(body[:8000].decode("utf-8", "replace"))
    title = re.search(r"<title>(.*?)</title>", text, re.IGNORECASE | re.DOTALL)
    words = " ".join(re.sub(r"<[^>]+>", " ", text).split())
    if title:
        head = " ".join(title.group(1).split())
        # Flask's 404 says what it means in the body; the title alone ("404 Not Found") does not
        text = head if "The requested URL was not found" not in words else words.removeprefix(head).strip() or head
    else:
        text = words
    return text[:limit]


def _dify_unwell(err: E.DifyError) -> bool:
    """What the breaker counts as a failure: Dify unreachable, too slow, broken, or failing on its side.
    A 4xx, a failed run or a bad request are answers from a working Dify."""
    if isinstance(err, (E.RunFailedError, E.InvalidRequestError)):
        return False
    if isinstance(err, (E.DifyConnectionError, E.StreamInterruptedError)):
        return True
    return err.status is not None and err.status >= 500


def _failure_reason(err: E.DifyError) -> str:
    return f"HTTP {err.status}" if err.status else type(err).__name__
