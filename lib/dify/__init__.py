"""The resilient Dify Service API client: every page, benchmark, notebook and the gateway use it.

    from lib.dify import DifyClient, AsyncDifyClient

    client = DifyClient("http://127.0.0.1:5001/v1", "app-...")
    result = client.chat("Hello", user="alice")            # ChatResult: answer, conversation_id, usage, timing
    for event in client.stream_chat("Hello", user="alice"):  # typed events, ending with message_end
        print(event.event, event.text)

See design.md "Rules of the client" for what is retried, the timeouts and the breaker.
"""
from .client import AsyncDifyClient, DifyClient
from .core import Spec
from .errors import (
    AppModeError,
    AuthenticationError,
    BadRequestError,
    CircuitOpenError,
    ConnectTimeoutError,
    ConversationCompletedError,
    ConversationNotFoundError,
    DeadlineExceededError,
    DifyAPIError,
    DifyConnectionError,
    DifyError,
    DifyTimeoutError,
    FirstEventTimeoutError,
    GatewayError,
    IdleTimeoutError,
    InvalidParamError,
    InvalidRequestError,
    ModelError,
    NotDifyAPIError,
    NotFoundError,
    PayloadError,
    PermissionDeniedError,
    ProtocolError,
    RateLimitError,
    RunFailedError,
    ServerError,
    StreamError,
    StreamInterruptedError,
)
from .event_streams import AsyncEventStream, EventStream
from .events import (
    AgentMessageEvent,
    AgentThoughtEvent,
    ErrorEvent,
    Event,
    MessageEndEvent,
    MessageEvent,
    MessageFileEvent,
    MessageReplaceEvent,
    NodeEvent,
    ReasoningChunkEvent,
    TextChunkEvent,
    TTSMessageEvent,
    UnknownEvent,
    WorkflowEvent,
    WorkflowFinishedEvent,
    parse_event,
)
from .hooks import Hooks
from .keys import ApiKey, mask, redact_tokens
from .models import (
    Annotation,
    AnnotationJob,
    AppInfo,
    AppMeta,
    AppParameters,
    AppSite,
    AudioText,
    ChatResult,
    CompletionResult,
    Conversation,
    ConversationVariable,
    EndUser,
    Feedback,
    Message,
    NumberedPage,
    Page,
    Success,
    UploadedFile,
    WorkflowResult,
    WorkflowRun,
)
from .options import ClientOptions
from .resilience import (
    CircuitBreaker,
    ConcurrencyLimit,
    RetryPolicy,
    Timeouts,
    TokenBucket,
)
from .timing import NodeSpan, Timing
from .transport import FastTransport
from .usage import Usage

__all__ = [
    "AgentMessageEvent", "AgentThoughtEvent", "Annotation", "AnnotationJob", "ApiKey", "AppInfo", "AppMeta",
    "AppModeError", "AppParameters", "AppSite", "AsyncDifyClient", "AsyncEventStream", "AudioText",
    "AuthenticationError", "BadRequestError", "ChatResult", "CircuitBreaker", "CircuitOpenError", "ClientOptions",
    "CompletionResult", "ConcurrencyLimit", "ConnectTimeoutError", "Conversation", "ConversationCompletedError",
    "ConversationNotFoundError", "ConversationVariable", "DeadlineExceededError", "DifyAPIError", "DifyClient",
    "DifyConnectionError", "DifyError", "DifyTimeoutError", "EndUser", "ErrorEvent", "Event", "EventStream",
    "FastTransport", "Feedback", "FirstEventTimeoutError", "GatewayError", "Hooks", "IdleTimeoutError",
    "InvalidParamError", "InvalidRequestError", "Message", "MessageEndEvent", "MessageEvent", "MessageFileEvent",
    "MessageReplaceEvent", "ModelError", "NodeEvent", "NodeSpan", "NotDifyAPIError", "NotFoundError", "NumberedPage", "Page",
    "PayloadError", "PermissionDeniedError", "ProtocolError", "RateLimitError", "ReasoningChunkEvent", "RetryPolicy",
    "RunFailedError", "ServerError", "Spec", "StreamError", "StreamInterruptedError", "Success", "TTSMessageEvent",
    "TextChunkEvent", "Timeouts", "Timing", "TokenBucket", "UnknownEvent", "UploadedFile", "Usage", "WorkflowEvent",
    "WorkflowFinishedEvent", "WorkflowResult", "WorkflowRun", "mask", "parse_event", "redact_tokens",
]
