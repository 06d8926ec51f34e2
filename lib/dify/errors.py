"""Typed errors, each reading as a sentence a person can act on.

Every error carries `code`, `status` and `message` (Dify's own, when Dify answered), `hint` (what to
do), `may_have_been_processed` (True when the request reached Dify and was not resent), `attempts`
and `timing`. `str(error)` is the full sentence. No error ever holds the API key: messages built
from server text are redacted by the client before they get here.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .timing import Timing

MAY_HAVE_BEEN_PROCESSED = (
    "Dify may already have processed this request (and billed its tokens); it was not sent again, "
    "to avoid a duplicate. Check the conversation history (messages) or the workflow run before retrying."
)


class DifyError(Exception):
    """Base of every error the client raises."""

    def __init__(
        self,
        summary: str,
        *,
        hint: str = "",
        code: str | None = None,
        status: int | None = None,
        message: str | None = None,
        route: str | None = None,
        may_have_been_processed: bool = False,
        retry_after: float | None = None,
        partial: str | None = None,
    ) -> None:
        self.summary = summary
        self.hint = hint
        self.code = code
        self.status = status
        self.message = message if message is not None else summary
        self.route = route  # e.g. "POST /chat-messages"
        self.may_have_been_processed = may_have_been_processed
        self.retry_after = retry_after
        self.partial = partial  # streams: the answer received before the failure
        self.attempts = 0
        self.timing: Timing | None = None
        super().__init__(self.sentence())

    def sentence(self) -> str:
        parts = [self.summary.rstrip(".") + "."]
        if self.hint:
            parts.append(self.hint.rstrip(".") + ".")
        if self.may_have_been_processed:
            parts.append(MAY_HAVE_BEEN_PROCESSED)
        return " ".join(parts)

    def __str__(self) -> str:
        return self.sentence()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, status={self.status!r}, message={self.message!r})"

    def __reduce__(self) -> tuple[Any, ...]:  # picklable across processes, keeping the fields
        return (_rebuild, (type(self), self.__dict__.copy()))


def _rebuild(cls: type[DifyError], state: dict[str, Any]) -> DifyError:
    err = cls.__new__(cls)
    err.__dict__.update(state)
    Exception.__init__(err, err.sentence())
    return err


# -- Dify answered with an error status -----------------------------------------------------------


class DifyAPIError(DifyError):
    """Dify (or a proxy in front of it) answered with an HTTP error."""


class BadRequestError(DifyAPIError):
    pass


class InvalidParamError(BadRequestError):
    pass


class AppModeError(BadRequestError):
    """This endpoint does not serve the key's app mode (not_chat_app, not_workflow_app, app_unavailable)."""


class ConversationCompletedError(BadRequestError):
    pass


class ModelError(BadRequestError):
    """The model provider failed or is not configured (provider_*, completion_request_error, ...)."""


class AuthenticationError(DifyAPIError):
    pass


class PermissionDeniedError(DifyAPIError):
    pass


class NotFoundError(DifyAPIError):
    pass


class ConversationNotFoundError(NotFoundError):
    pass


class PayloadError(DifyAPIError):
    """413/415: a file or body too large or of a type Dify does not take."""


class RateLimitError(DifyAPIError):
    pass


class ServerError(DifyAPIError):
    pass


class GatewayError(ServerError):
    """502/503/504, usually from a proxy in front of Dify."""


class NotDifyAPIError(DifyError):
    """The answer was not Dify's JSON (an HTML page, a plain text body): the base URL is wrong."""


class ProtocolError(DifyError):
    """The answer broke the Service API contract in a way the client cannot read past."""


# -- mid-stream failures ---------------------------------------------------------------------------


class StreamError(DifyError):
    """Dify sent an `error` event mid-stream: the model (or a workflow node) failed."""


class RunFailedError(DifyError):
    """A workflow or chatflow run failed inside Dify: a node raised (HTTP 200 workflow with status
    `failed`, a chatflow's 400 "Run failed: ...", or a stream ending `workflow_finished` failed).
    `node_title`/`node_id`/`node_type` name the failed node when Dify said which; `message` is Dify's own.
    `result` is the typed result of what arrived (a WorkflowResult with status `failed`, or for a chatflow
    stream the ChatResult so far) when there is one; `partial` the answer text received."""

    def __init__(
        self,
        summary: str,
        *,
        node_id: str | None = None,
        node_title: str | None = None,
        node_type: str | None = None,
        workflow_run_id: str | None = None,
        result: Any = None,
        **kwargs: Any,
    ) -> None:
        self.node_id = node_id
        self.node_title = node_title
        self.node_type = node_type
        self.workflow_run_id = workflow_run_id
        self.result = result
        super().__init__(summary, **kwargs)


class StreamInterruptedError(DifyError):
    """The stream broke before its final event (connection cut, or closed early)."""


# -- transport ---------------------------------------------------------------------------------------


class DifyConnectionError(DifyError):
    """Could not reach Dify, or the connection failed before an answer."""


class DifyTimeoutError(DifyConnectionError):
    pass


class ConnectTimeoutError(DifyTimeoutError):
    pass


class FirstEventTimeoutError(DifyTimeoutError):
    """No response, or no first event, within `Timeouts.first_event`."""


class IdleTimeoutError(DifyTimeoutError):
    """A stream sent nothing, not even a ping, for `Timeouts.idle` seconds."""


class DeadlineExceededError(DifyTimeoutError):
    """The call ran past `Timeouts.total`."""


class CircuitOpenError(DifyError):
    """The circuit breaker is open: the client fails fast instead of calling a failing Dify."""


class InvalidRequestError(DifyError, ValueError):
    """The request cannot be built as given (a base URL that does not parse, text that is not valid
    Unicode): nothing was sent. Also a ValueError, as a bad base URL always was."""


# -- Dify's error envelope -> error class and hint ---------------------------------------------------

API_KEY_HINT = (
    "Check the app's API key: in Dify open the app, then API Access, and copy its key (it starts with 'app-'); "
    "a knowledge-base key (dataset-...) does not work here"
)
CONVERSATION_HINT = (
    "Start a new conversation (send no conversation_id), or check `user`: a conversation belongs to the "
    "user who started it and to one app"
)
MODE_HINT = (
    "This key's app has another mode: use chat/stream_chat for chatbot, agent and chatflow apps, "
    "complete/stream_completion for text generators, run_workflow/stream_workflow for workflows "
    "(info() tells the mode)"
)
BASE_URL_HINT = "This URL does not look like a Dify API: the base URL should end in /v1, e.g. https://api.dify.ai/v1"

_BY_CODE: dict[str, tuple[type[DifyAPIError], str]] = {
    "invalid_param": (InvalidParamError, "Fix the request as Dify's message says"),
    "bad_request": (BadRequestError, "Dify could not read the request"),
    "no_file_uploaded": (BadRequestError, "Attach a file: upload_file() sends it as the multipart field 'file'"),
    "method_not_allowed": (DifyAPIError, "This Dify does not take this HTTP method on this route: check the Dify version"),
    "not_chat_app": (AppModeError, MODE_HINT),
    "not_workflow_app": (AppModeError, MODE_HINT),
    "not_completion_app": (AppModeError, MODE_HINT),
    "app_unavailable": (AppModeError, "Check the app's configuration in Dify (model, published workflow); "
                                      "if it is not a text generator: " + MODE_HINT),
    "conversation_completed": (ConversationCompletedError, "Start a new conversation (send no conversation_id)"),
    "provider_not_initialize": (ModelError, "Configure the model provider's credentials in Dify: Settings, Model Provider"),
    "provider_quota_exceeded": (ModelError, "The model provider's quota is used up: add credit or switch provider in Dify"),
    "model_currently_not_support": (ModelError, "Pick another model for this app in Dify"),
    "completion_request_error": (ModelError, "The model failed; retry later or check the provider's status"),
    "unauthorized": (AuthenticationError, API_KEY_HINT),
    "forbidden": (PermissionDeniedError, "The app was deleted, is disabled, or its API access is switched off: check it in Dify"),
    "too_many_requests": (RateLimitError, "The app is at its concurrency limit: send fewer requests at once, "
                                          "or raise the app's limit in Dify"),
    "rate_limit_error": (RateLimitError, "The model provider (or the Dify Cloud plan) is rate limiting: slow down and retry later"),
    "file_too_large": (PayloadError, "Send a smaller file (defaults: 15 MB documents, 10 MB images)"),
    "audio_too_large": (PayloadError, "Send a shorter audio file (max 30 MB)"),
    "unsupported_file_type": (PayloadError, "Send a file type the app accepts"),
    "unsupported_audio_type": (PayloadError, "Send mp3, m4a, wav, amr or mpga audio"),
    "unsupported_media_type": (PayloadError, "Send the body as application/json"),
    "end_user_not_found": (NotFoundError, "Check the end-user id"),
    "file_not_found": (NotFoundError, "Check the file id, and the user that uploaded it"),
}

_BY_STATUS: dict[int, tuple[type[DifyAPIError], str]] = {
    400: (BadRequestError, "Fix the request"),
    401: (AuthenticationError, API_KEY_HINT),
    403: (PermissionDeniedError, "The key may not use this app or endpoint: check the app in Dify"),
    404: (NotFoundError, "Check the id, and the `user`: Dify scopes conversations, messages and files to one user"),
    413: (PayloadError, "The body is too large for Dify or a proxy in front of it (nginx client_max_body_size)"),
    415: (PayloadError, "Dify does not take this content type"),
    429: (RateLimitError, "Too many requests: slow down and retry later"),
}


def api_error(status: int, code: str | None, message: str, *, route: str | None = None) -> DifyError:
    """The typed error for Dify's JSON error envelope `{code, message, status}`: a DifyAPIError, or a
    RunFailedError for a chatflow's "Run failed: ..." (a node failed, not the request)."""
    cls, hint = _BY_CODE.get(code or "", (None, ""))
    if cls is None:
        if status >= 500:
            cls, hint = ServerError, "Dify failed on its side; retry later, and if it persists check Dify's logs"
        else:
            cls, hint = _BY_STATUS.get(status, (DifyAPIError, ""))
    on = f" on {route}" if route else ""
    summary = f"Dify answered {status} {code or 'error'}{on}: {message}"
    if status == 404 and message.startswith("Conversation Not Exists"):
        cls, hint = ConversationNotFoundError, CONVERSATION_HINT
    elif status == 404 and message.startswith("The requested URL was not found"):
        hint = route_hint(route)
    elif code == "invalid_param":
        if "blocking mode" in message:
            hint = "Agent apps only stream: use stream_chat (or stream_chat(...).collect())"
        elif message.startswith("Run failed:"):
            # A chatflow's node failed (Dify 1.12 answers a blocking chatflow run this way): not bad inputs.
            return run_failed(message, code=code, status=status, route=route, mode="chatflow")
        elif "validation errors for ModelConfigEntity" in message or "validation error for ModelConfigEntity" in message:
            # Dify validates the app's model settings as if they were the request's: none is configured.
            return ModelError(
                f"This app has no model configured in Dify (Dify answered {status} {code}{on}: {_first_line(message)})",
                hint=NO_MODEL_HINT, code=code, status=status, message=message, route=route,
            )
        elif "input form" in message:  # "topic is required in input form", "... must be less than 100 characters"
            hint = INPUTS_HINT
    elif code == "bad_request" and "Suggested Questions Is Disabled" in message:
        hint = "Turn on follow-up suggestions (suggested questions after answer) in the app's features in Dify"
    return cls(summary, hint=hint, code=code, status=status, message=message, route=route)


INPUTS_HINT = "Fix the request: check the inputs against parameters() (user_input_form)"
NO_MODEL_HINT = (
    "In Dify open the app and pick a model in its model settings (add a model provider first under "
    "Settings, Model Provider); the request itself is fine"
)


def route_hint(route: str | None) -> str:
    """What to check when Dify has no such route (its HTML or JSON 404)."""
    if route == "GET /workflow/{id}/events":
        return "Re-opening a run's event stream needs Dify 1.13 or newer"
    return "Check the base URL (it should end in /v1) and the Dify version"


def _first_line(text: str) -> str:
    return text.strip().split("\n", 1)[0]


def run_failed(
    message: str, *, code: str | None = None, status: int | None = None, route: str | None = None, mode: str = "workflow",
    node_id: str | None = None, node_title: str | None = None, node_type: str | None = None,
    workflow_run_id: str | None = None,
) -> RunFailedError:
    """The RunFailedError for a run that failed inside Dify: names the failed node when known, keeps Dify's message."""
    where = f" in node '{node_title or node_id}'" + (f" ({node_type})" if node_type else "") if (node_title or node_id) else ""
    text = message.removeprefix("Run failed:").strip() or "no reason given"
    hint = (
        "Open the run in Dify (Logs) to see the node's inputs and error, fix the node or what it calls, then run again"
        if where else "Open the run in Dify (Logs) to see which node failed and why, fix it, then run again"
    )
    if code and _BY_CODE.get(code, (None,))[0] is ModelError:
        hint = "The model failed: retry later or check the model provider in Dify; " + hint[0].lower() + hint[1:]
    return RunFailedError(
        f"The {mode} run failed{where}: {text}", hint=hint, code=code, status=status, message=message, route=route,
        node_id=node_id, node_title=node_title, node_type=node_type, workflow_run_id=workflow_run_id,
    )


# -- the client's own sentences: one function per situation, so every summary and hint lives here ------
# Arguments are already redacted (server text, transport details): none of these sees the key.

GATEWAY_TIMEOUT_HINT = "A proxy gave up waiting for the blocking answer; use streaming for long generations"


def base_url_scheme(base_url: str) -> InvalidRequestError:
    return InvalidRequestError(f"base_url must start with http:// or https:// (got {base_url!r})", hint="e.g. https://api.dify.ai/v1")


def base_url_invalid(base_url: str, exc: Exception) -> InvalidRequestError:
    return InvalidRequestError(f"base_url {base_url!r} is not a valid URL ({exc})", hint=BASE_URL_HINT)


def lone_surrogate(route: str, where: str) -> InvalidRequestError:
    return InvalidRequestError(
        f"{route} was not sent: {where} holds a lone surrogate, text that is not valid Unicode (often half of an emoji cut in two)",
        hint="Remove the broken character, or decode the text with errors='replace' before sending it", route=route,
    )


def unencodable(route: str, detail: str) -> InvalidRequestError:
    return InvalidRequestError(
        f"{route} was not sent: the request cannot be encoded ({detail})",
        hint="Pass JSON-serialisable values (str, numbers, bools, lists, dicts) and text headers", route=route,
    )


def connect_timeout(host: str, seconds: float | None, route: str) -> ConnectTimeoutError:
    return ConnectTimeoutError(
        f"Could not connect to {host} within {seconds} s", hint="Check the base URL, the network and that Dify is up", route=route,
    )


def connect_failed(host: str, detail: str, route: str) -> DifyConnectionError:
    return DifyConnectionError(f"Could not connect to {host} ({detail})", hint="Check the base URL and that Dify is running", route=route)


def answer_timeout(host: str, route: str, budgets: str, *, may_have_been_processed: bool) -> FirstEventTimeoutError:
    """No answer (headers, or a blocking call's body) in time; `budgets` names the timeouts in force."""
    return FirstEventTimeoutError(
        f"Dify at {host} did not answer {route} in time ({budgets})",
        hint="Raise Timeouts.first_event, or use streaming for long generations", route=route,
        may_have_been_processed=may_have_been_processed,
    )


def timeouts_in_force(first_event: float | None, idle: float | None, total: float | None) -> str:
    """"Timeouts: first_event 100 s, idle 30 s": the limits an answer_timeout ran under (None or 0: not shown)."""
    parts = [f"first_event {first_event:g} s" if first_event else "", f"idle {idle:g} s" if idle else "",
             f"total {total:g} s" if total else ""]
    return "Timeouts: " + ", ".join(p for p in parts if p)


def base_url_unusable(detail: str, route: str) -> DifyConnectionError:
    return DifyConnectionError(f"The base URL is not usable ({detail})", hint=BASE_URL_HINT, route=route)


def connection_failed(host: str, route: str, detail: str, *, may_have_been_processed: bool) -> DifyConnectionError:
    return DifyConnectionError(
        f"The connection to {host} failed before Dify answered {route} ({detail})",
        hint="Check the network or a proxy between the client and Dify", route=route,
        may_have_been_processed=may_have_been_processed,
    )


def retry_after_too_long(hint: str, retry_after: float | None) -> str:
    """`hint` extended to say why a retryable answer was not retried."""
    return (hint + "; " if hint else "") + f"the server asked to wait {retry_after:g} s, longer than RetryPolicy.max_retry_after"


def no_such_route(route: str, status: int, snippet: str) -> NotFoundError:
    """Dify's own (Flask's) HTML 404: this Dify has no such route (an older version, or a wrong base URL)."""
    return NotFoundError(
        f"Dify answered 404 Not Found on {route}: it has no such route", hint=route_hint(route),
        status=status, message=snippet, route=route,
    )


def not_dify_answer(status: int, reason: str, snippet: str, route: str, base_url: str, ctype: str) -> DifyError:
    """An HTTP error whose body is not Dify's JSON envelope: a proxy's page, a plain-text 429, or not a Dify API."""
    what = f"{status} {reason}" + (f" ({snippet})" if snippet else "")
    if status == 429:
        return RateLimitError(f"Too many requests: {what}", hint="Slow down and retry later", status=status, code="too_many_requests",
                              message=snippet, route=route)
    if status in (502, 503, 504):
        return GatewayError(
            f"Dify, or a proxy in front of it, answered {what} on {route}",
            hint="Dify is unreachable or overloaded behind its proxy; retry later", status=status, message=snippet, route=route,
        )
    if status == 413:
        return PayloadError(
            f"The request is too large for a proxy in front of Dify: {what}",
            hint="Send a smaller body or file, or raise the proxy's limit (nginx client_max_body_size)",
            status=status, message=snippet, route=route,
        )
    return NotDifyAPIError(
        f"{base_url} answered {what} with {ctype or 'no content type'} instead of Dify's JSON",
        hint=BASE_URL_HINT, status=status, message=snippet, route=route,
    )


def circuit_open(base_url: str, last: str | None, at: str, wait: float, *, probing: bool, route: str) -> CircuitOpenError:
    """The breaker refuses a call: `at` is the wall-clock time it lets one through, `wait` the seconds until then."""
    failed = f"Dify at {base_url} failed repeatedly" + (f" (last: {last})" if last else "")
    if probing:
        return CircuitOpenError(
            failed + "; one probe call is in flight to check whether it is back, and other calls fail fast until it "
            f"reports (at the latest at {at}, in {wait:.1f} s)",
            hint="Retry in a moment: the circuit closes as soon as the probe succeeds", code="circuit_open",
            route=route, retry_after=wait,
        )
    return CircuitOpenError(
        failed + f"; the client is not calling it until {at} (in {wait:.1f} s)",
        hint="Wait and try again then, or check that Dify is up", code="circuit_open", route=route, retry_after=wait,
    )


def deadline_exceeded(route: str, total: float | None, doing: str) -> DeadlineExceededError:
    return DeadlineExceededError(
        f"{route} ran past its total deadline of {total:g} s while {doing}", hint="Raise Timeouts.total, or lower the load", route=route,
    )


def not_json(route: str) -> ProtocolError:
    return ProtocolError(f"Dify's answer to {route} is not valid JSON", hint=BASE_URL_HINT, route=route)


def off_contract(route: str, exc: Exception) -> ProtocolError:
    return ProtocolError(f"Dify's answer to {route} does not match the Service API: {exc}", route=route)


def not_event_stream(base_url: str, route: str, ctype: str) -> NotDifyAPIError:
    return NotDifyAPIError(
        f"{base_url} answered {route} with {ctype or 'no content type'} instead of an event stream", hint=BASE_URL_HINT, route=route,
    )


def unknown_workflow_run(workflow_run_id: str) -> NotFoundError:
    return NotFoundError(
        f"Dify has no workflow run {workflow_run_id!r} for this app", status=200,
        hint="Check the run id (workflow_run_id of the run's result or stream) and that it belongs to this key's app",
    )


# streams

STREAM_ENDED_EARLY = "the stream ended before its final event (message_end or workflow_finished)"


def connection_broke(detail: str) -> str:
    """Why a stream broke, for stream_interrupted."""
    return f"the connection broke ({detail})"


def stream_interrupted(route: str, events: int, why: str, *, may_have_been_processed: bool) -> StreamInterruptedError:
    return StreamInterruptedError(
        f"The stream of {route} broke after {events} events: {why}",
        hint="The answer is incomplete (the part received is in .partial)", route=route,
        may_have_been_processed=may_have_been_processed,
    )


def idle_timeout(route: str, idle: float | None, events: int, *, may_have_been_processed: bool) -> IdleTimeoutError:
    return IdleTimeoutError(
        f"The stream of {route} sent nothing, not even a ping, for {idle:g} s after {events} events",
        hint="Dify or a proxy stalled; raise Timeouts.idle if your app pauses longer", route=route,
        may_have_been_processed=may_have_been_processed,
    )


def first_event_timeout(route: str, budget: float | None, *, may_have_been_processed: bool) -> FirstEventTimeoutError:
    return FirstEventTimeoutError(
        f"Dify sent no event for {route} within {budget:g} s",
        hint="The model is slow or stuck; raise Timeouts.first_event if this app takes longer to start", route=route,
        may_have_been_processed=may_have_been_processed,
    )


def stream_deadline(route: str, total: float | None, events: int, *, may_have_been_processed: bool) -> DeadlineExceededError:
    return DeadlineExceededError(
        f"The stream of {route} ran past its total deadline of {total:g} s after {events} events",
        hint="Raise Timeouts.total", route=route, may_have_been_processed=may_have_been_processed,
    )


def stream_error(route: str, code: str | None, message: str, status: int | None) -> StreamError:
    """An `error` event that is not a failed run: the model failed mid-stream."""
    return StreamError(
        f"The model failed mid-stream on {route} ({code or 'error'}): {message}",
        hint="Retry the message, or check the model provider in Dify", code=code, status=status, message=message, route=route,
    )
