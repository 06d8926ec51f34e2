"""Every Service API endpoint of the contract, written once for both clients.

Each method builds a `Spec` and hands it to `self._call` (blocking: the typed result) or
`self._stream` (an event stream). DifyClient runs them synchronously; on AsyncDifyClient the same
methods return coroutines (await them) and async event streams (`async for`). Return types are
written for the sync client; async_endpoints.py declares the same methods with the async client's
types (what a type checker sees on AsyncDifyClient).

Every method also takes `headers=` (extra request headers, e.g. the simulator's X-Sim-Fault) and
`timeouts=` (a `Timeouts` for this call only).
"""
from __future__ import annotations

import mimetypes
import os
from collections.abc import Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Literal, Unpack
from urllib.parse import quote

from .core import CallOptions, Spec, drop_none
from .errors import unknown_workflow_run
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
    HumanInputForm,
    Message,
    NumberedPage,
    Page,
    Success,
    UploadedFile,
    WorkflowResult,
    WorkflowRun,
)

if TYPE_CHECKING:
    from .event_streams import EventStream

FileLike = str | os.PathLike | bytes | IO[bytes] | tuple
FileInput = dict | UploadedFile


def _id(value: str) -> str:
    return quote(str(value), safe="")


def _files(files: Sequence[FileInput] | None) -> list[dict[str, Any]] | None:
    if files is None:
        return None
    return [f.as_input() if isinstance(f, UploadedFile) else f for f in files]


def _read_file(file: FileLike, filename: str | None, mime_type: str | None) -> tuple[str, bytes, str]:
    """Read the whole file now, so a retried upload can send it again."""
    if isinstance(file, tuple):
        name, content, *rest = file
        return name, content if isinstance(content, bytes) else content.read(), rest[0] if rest else mime_type or _guess(name)
    if isinstance(file, (str, os.PathLike)):
        path = Path(file)
        name = filename or path.name
        return name, path.read_bytes(), mime_type or _guess(name)
    if isinstance(file, (bytes, bytearray)):
        name = filename or "upload.bin"
        return name, bytes(file), mime_type or _guess(name)
    name = filename or Path(getattr(file, "name", "upload.bin")).name
    return name, file.read(), mime_type or _guess(name)


def _guess(name: str) -> str:
    return mimetypes.guess_type(name)[0] or "application/octet-stream"


def _success(data: Any) -> Success:
    return Success.model_validate(data or {"result": "success"})


def _chat_result(d: dict[str, Any]) -> ChatResult:
    return ChatResult.model_validate({**d, "usage": (d.get("metadata") or {}).get("usage")})


def _completion_result(d: dict[str, Any]) -> CompletionResult:
    return CompletionResult.model_validate({**d, "usage": (d.get("metadata") or {}).get("usage")})


def _workflow_result(d: dict[str, Any]) -> WorkflowResult:
    data = dict(d.get("data") or {})
    data.pop("id", None)
    run_id = d.get("workflow_run_id") or (d.get("data") or {}).get("id")
    return WorkflowResult.model_validate({**data, "task_id": d.get("task_id"), "workflow_run_id": run_id})


class Endpoints:
    """The Service API surface; `_call` and `_stream` are the client's I/O."""

    def _call(self, spec: Spec, options: CallOptions) -> Any:
        raise NotImplementedError

    def _stream(self, spec: Spec, options: CallOptions) -> EventStream:
        raise NotImplementedError

    # -- app information (all modes) --------------------------------------------------------------------

    def info(self, **options: Unpack[CallOptions]) -> AppInfo:
        """GET /info: name, description, tags and mode of the key's app."""
        return self._call(Spec("GET", "/info", "GET /info", parse=AppInfo.model_validate, idempotent=True), options)

    def parameters(self, **options: Unpack[CallOptions]) -> AppParameters:
        """GET /parameters: the input form, opening statement, suggested questions, features."""
        return self._call(Spec("GET", "/parameters", "GET /parameters", parse=AppParameters.model_validate, idempotent=True), options)

    def meta(self, **options: Unpack[CallOptions]) -> AppMeta:
        return self._call(Spec("GET", "/meta", "GET /meta", parse=AppMeta.model_validate, idempotent=True), options)

    def site(self, **options: Unpack[CallOptions]) -> AppSite:
        return self._call(Spec("GET", "/site", "GET /site", parse=AppSite.model_validate, idempotent=True), options)

    def end_user(self, end_user_id: str, **options: Unpack[CallOptions]) -> EndUser:
        spec = Spec("GET", f"/end-users/{_id(end_user_id)}", "GET /end-users/{id}", parse=EndUser.model_validate, idempotent=True)
        return self._call(spec, options)

    # -- chat, agent and chatflow apps ---------------------------------------------------------------------

    def _chat_spec(self, query: str, user: str, inputs: dict | None, conversation_id: str | None, files: Sequence[FileInput] | None,
                   auto_generate_name: bool | None, workflow_id: str | None, streaming: bool) -> Spec:
        body = drop_none({
            "query": query, "inputs": inputs or {}, "user": user, "response_mode": "streaming" if streaming else "blocking",
            "conversation_id": conversation_id or None, "files": _files(files), "auto_generate_name": auto_generate_name,
            "workflow_id": workflow_id,
        })
        return Spec("POST", "/chat-messages", "POST /chat-messages", json=body, parse=_chat_result, generation=True,
                    kind="stream" if streaming else "json", stream_mode="chat", user=user)

    def chat(self, query: str, *, user: str, inputs: dict | None = None, conversation_id: str | None = None,
             files: Sequence[FileInput] | None = None, auto_generate_name: bool | None = None, workflow_id: str | None = None,
             **options: Unpack[CallOptions]) -> ChatResult:
        """POST /chat-messages, blocking. Agent apps refuse blocking: use stream_chat(...).collect()."""
        return self._call(self._chat_spec(query, user, inputs, conversation_id, files, auto_generate_name, workflow_id, False), options)

    def stream_chat(self, query: str, *, user: str, inputs: dict | None = None, conversation_id: str | None = None,
                    files: Sequence[FileInput] | None = None, auto_generate_name: bool | None = None, workflow_id: str | None = None,
                    **options: Unpack[CallOptions]) -> EventStream:
        """POST /chat-messages, streaming: an EventStream of typed events (AsyncEventStream on the async client)."""
        return self._stream(self._chat_spec(query, user, inputs, conversation_id, files, auto_generate_name, workflow_id, True), options)

    def stop_chat(self, task_id: str, *, user: str, **options: Unpack[CallOptions]) -> Success:
        return self._call(Spec("POST", f"/chat-messages/{_id(task_id)}/stop", "POST /chat-messages/{task_id}/stop",
                               json={"user": user}, parse=_success, idempotent=True), options)

    # -- completion apps ---------------------------------------------------------------------------------------

    def _completion_spec(self, inputs: dict | None, user: str, query: str | None, files: Sequence[FileInput] | None,
                         streaming: bool) -> Spec:
        body = drop_none({"inputs": inputs or {}, "user": user, "query": query, "files": _files(files),
                          "response_mode": "streaming" if streaming else "blocking"})
        return Spec("POST", "/completion-messages", "POST /completion-messages", json=body, parse=_completion_result,
                    generation=True, kind="stream" if streaming else "json", stream_mode="completion", user=user)

    def completion(self, inputs: dict | None = None, *, user: str, query: str | None = None,
                   files: Sequence[FileInput] | None = None, **options: Unpack[CallOptions]) -> CompletionResult:
        """POST /completion-messages, blocking (text generator apps)."""
        return self._call(self._completion_spec(inputs, user, query, files, False), options)

    def stream_completion(self, inputs: dict | None = None, *, user: str, query: str | None = None,
                          files: Sequence[FileInput] | None = None, **options: Unpack[CallOptions]) -> EventStream:
        return self._stream(self._completion_spec(inputs, user, query, files, True), options)

    def stop_completion(self, task_id: str, *, user: str, **options: Unpack[CallOptions]) -> Success:
        return self._call(Spec("POST", f"/completion-messages/{_id(task_id)}/stop", "POST /completion-messages/{task_id}/stop",
                               json={"user": user}, parse=_success, idempotent=True), options)

    # -- workflow apps -------------------------------------------------------------------------------------------

    def _workflow_spec(self, inputs: dict | None, user: str, files: Sequence[FileInput] | None, workflow_id: str | None,
                       streaming: bool) -> Spec:
        body = drop_none({"inputs": inputs or {}, "user": user, "files": _files(files),
                          "response_mode": "streaming" if streaming else "blocking"})
        if workflow_id:
            path, route = f"/workflows/{_id(workflow_id)}/run", "POST /workflows/{workflow_id}/run"
        else:
            path, route = "/workflows/run", "POST /workflows/run"
        return Spec("POST", path, route, json=body, parse=_workflow_result, generation=True,
                    kind="stream" if streaming else "json", stream_mode="workflow", user=user)

    def run_workflow(self, inputs: dict | None = None, *, user: str, files: Sequence[FileInput] | None = None,
                     workflow_id: str | None = None, **options: Unpack[CallOptions]) -> WorkflowResult:
        """POST /workflows/run (or /workflows/{workflow_id}/run), blocking. A failed run raises RunFailedError
        (its `.result` is the WorkflowResult with status 'failed'); a stopped run is a result with status 'stopped'."""
        return self._call(self._workflow_spec(inputs, user, files, workflow_id, False), options)

    def stream_workflow(self, inputs: dict | None = None, *, user: str, files: Sequence[FileInput] | None = None,
                        workflow_id: str | None = None, **options: Unpack[CallOptions]) -> EventStream:
        return self._stream(self._workflow_spec(inputs, user, files, workflow_id, True), options)

    def stop_workflow(self, task_id: str, *, user: str, **options: Unpack[CallOptions]) -> Success:
        return self._call(Spec("POST", f"/workflows/tasks/{_id(task_id)}/stop", "POST /workflows/tasks/{task_id}/stop",
                               json={"user": user}, parse=_success, idempotent=True), options)

    def workflow_run(self, workflow_run_id: str, **options: Unpack[CallOptions]) -> WorkflowRun:
        """GET /workflows/run/{id}: a run's status and outputs (workflow and chatflow apps)."""
        def parse(d: Any) -> WorkflowRun:
            if isinstance(d, dict) and d.get("id") is None:  # Dify 1.12 answers an unknown id 200 with every field null
                raise unknown_workflow_run(workflow_run_id)
            return WorkflowRun.model_validate(d)

        return self._call(Spec("GET", f"/workflows/run/{_id(workflow_run_id)}", "GET /workflows/run/{id}",
                               parse=parse, idempotent=True), options)

    def workflow_logs(self, *, keyword: str | None = None, status: str | None = None, page: int | None = None,
                      limit: int | None = None, created_at__before: str | None = None, created_at__after: str | None = None,
                      created_by_end_user_session_id: str | None = None, created_by_account: str | None = None,
                      **options: Unpack[CallOptions]) -> NumberedPage[dict]:
        params = drop_none({"keyword": keyword, "status": status, "page": page, "limit": limit,
                            "created_at__before": created_at__before, "created_at__after": created_at__after,
                            "created_by_end_user_session_id": created_by_end_user_session_id, "created_by_account": created_by_account})
        return self._call(Spec("GET", "/workflows/logs", "GET /workflows/logs", params=params,
                               parse=NumberedPage[dict].model_validate, idempotent=True), options)

    def stream_workflow_events(self, workflow_run_id: str, *, user: str, include_state_snapshot: bool | None = None,
                               continue_on_pause: bool | None = None, **options: Unpack[CallOptions]) -> EventStream:
        """GET /workflow/{id}/events (Dify >= 1.13): re-open a workflow/chatflow run's event stream."""
        params = drop_none({"user": user, "include_state_snapshot": _flag(include_state_snapshot),
                            "continue_on_pause": _flag(continue_on_pause)})
        return self._stream(Spec("GET", f"/workflow/{_id(workflow_run_id)}/events", "GET /workflow/{id}/events", params=params,
                                 kind="stream", stream_mode="workflow", idempotent=True, user=user), options)

    # -- conversations and messages (chat-family apps) ---------------------------------------------------------

    def messages(self, conversation_id: str, *, user: str, first_id: str | None = None, limit: int | None = None,
                 **options: Unpack[CallOptions]) -> Page[Message]:
        """GET /messages: one page of a conversation's history, oldest first."""
        params = drop_none({"conversation_id": conversation_id, "user": user, "first_id": first_id, "limit": limit})
        spec = Spec("GET", "/messages", "GET /messages", params=params, parse=Page[Message].model_validate, idempotent=True)
        return self._call(spec, options)

    def conversations(self, *, user: str, last_id: str | None = None, limit: int | None = None,
                      sort_by: Literal["created_at", "-created_at", "updated_at", "-updated_at"] | None = None,
                      **options: Unpack[CallOptions]) -> Page[Conversation]:
        params = drop_none({"user": user, "last_id": last_id, "limit": limit, "sort_by": sort_by})
        spec = Spec("GET", "/conversations", "GET /conversations", params=params, parse=Page[Conversation].model_validate,
                    idempotent=True)
        return self._call(spec, options)

    def delete_conversation(self, conversation_id: str, *, user: str, **options: Unpack[CallOptions]) -> Success:
        return self._call(Spec("DELETE", f"/conversations/{_id(conversation_id)}", "DELETE /conversations/{id}",
                               json={"user": user}, parse=_success, idempotent=True), options)

    def rename_conversation(self, conversation_id: str, name: str | None = None, *, user: str, auto_generate: bool = False,
                            **options: Unpack[CallOptions]) -> Conversation:
        body = drop_none({"name": name, "auto_generate": auto_generate, "user": user})
        return self._call(Spec("POST", f"/conversations/{_id(conversation_id)}/name", "POST /conversations/{id}/name",
                               json=body, parse=Conversation.model_validate, idempotent=True), options)

    def conversation_variables(self, conversation_id: str, *, user: str, last_id: str | None = None, limit: int | None = None,
                               variable_name: str | None = None, **options: Unpack[CallOptions]) -> Page[ConversationVariable]:
        params = drop_none({"user": user, "last_id": last_id, "limit": limit, "variable_name": variable_name})
        return self._call(Spec("GET", f"/conversations/{_id(conversation_id)}/variables", "GET /conversations/{id}/variables",
                               params=params, parse=Page[ConversationVariable].model_validate, idempotent=True), options)

    def update_conversation_variable(self, conversation_id: str, variable_id: str, value: Any, *, user: str,
                                     **options: Unpack[CallOptions]) -> ConversationVariable:
        """PUT (not PATCH) /conversations/{id}/variables/{variable_id}."""
        return self._call(Spec("PUT", f"/conversations/{_id(conversation_id)}/variables/{_id(variable_id)}",
                               "PUT /conversations/{id}/variables/{variable_id}", json={"value": value, "user": user},
                               parse=ConversationVariable.model_validate, idempotent=True), options)

    def feedback(self, message_id: str, rating: Literal["like", "dislike"] | None, *, user: str, content: str | None = None,
                 **options: Unpack[CallOptions]) -> Success:
        """POST /messages/{id}/feedbacks; rating None revokes."""
        body: dict[str, Any] = {"rating": rating, "user": user}
        if content is not None:
            body["content"] = content
        return self._call(Spec("POST", f"/messages/{_id(message_id)}/feedbacks", "POST /messages/{id}/feedbacks",
                               json=body, parse=_success, idempotent=True), options)

    def app_feedbacks(self, *, page: int | None = None, limit: int | None = None, **options: Unpack[CallOptions]) -> Page[Feedback]:
        return self._call(Spec("GET", "/app/feedbacks", "GET /app/feedbacks", params=drop_none({"page": page, "limit": limit}),
                               parse=Page[Feedback].model_validate, idempotent=True), options)

    def suggested(self, message_id: str, *, user: str, **options: Unpack[CallOptions]) -> list[str]:
        """GET /messages/{id}/suggested: follow-up questions (empty if the model failed)."""
        return self._call(Spec("GET", f"/messages/{_id(message_id)}/suggested", "GET /messages/{id}/suggested",
                               params={"user": user}, parse=lambda d: list(d.get("data") or []), idempotent=True), options)

    # -- files and audio ---------------------------------------------------------------------------------------

    def upload_file(self, file: FileLike, *, user: str, filename: str | None = None, mime_type: str | None = None,
                    **options: Unpack[CallOptions]) -> UploadedFile:
        """POST /files/upload. `file`: a path, bytes, a binary file object or (name, bytes[, mime])."""
        part = _read_file(file, filename, mime_type)
        return self._call(Spec("POST", "/files/upload", "POST /files/upload", files={"file": part}, data={"user": user},
                               parse=UploadedFile.model_validate), options)

    def file_preview(self, file_id: str, *, user: str | None = None, as_attachment: bool = False,
                     **options: Unpack[CallOptions]) -> bytes:
        params = drop_none({"user": user, "as_attachment": "true" if as_attachment else None})
        return self._call(Spec("GET", f"/files/{_id(file_id)}/preview", "GET /files/{id}/preview", params=params,
                               kind="bytes", idempotent=True), options)

    def audio_to_text(self, file: FileLike, *, user: str, filename: str | None = None, mime_type: str | None = None,
                      **options: Unpack[CallOptions]) -> AudioText:
        part = _read_file(file, filename, mime_type)
        return self._call(Spec("POST", "/audio-to-text", "POST /audio-to-text", files={"file": part}, data={"user": user},
                               parse=AudioText.model_validate), options)

    def text_to_audio(self, *, user: str, text: str | None = None, message_id: str | None = None, voice: str | None = None,
                      **options: Unpack[CallOptions]) -> bytes:
        """POST /text-to-audio: MP3 bytes. `message_id` wins over `text`."""
        body = drop_none({"user": user, "text": text, "message_id": message_id, "voice": voice})
        return self._call(Spec("POST", "/text-to-audio", "POST /text-to-audio", json=body, kind="bytes"), options)

    # -- annotations (chat-family apps) ------------------------------------------------------------------------

    def annotations(self, *, page: int | None = None, limit: int | None = None, keyword: str | None = None,
                    **options: Unpack[CallOptions]) -> NumberedPage[Annotation]:
        return self._call(Spec("GET", "/apps/annotations", "GET /apps/annotations",
                               params=drop_none({"page": page, "limit": limit, "keyword": keyword}),
                               parse=NumberedPage[Annotation].model_validate, idempotent=True), options)

    def create_annotation(self, question: str, answer: str, **options: Unpack[CallOptions]) -> Annotation:
        return self._call(Spec("POST", "/apps/annotations", "POST /apps/annotations", json={"question": question, "answer": answer},
                               parse=Annotation.model_validate), options)

    def update_annotation(self, annotation_id: str, question: str, answer: str, **options: Unpack[CallOptions]) -> Annotation:
        return self._call(Spec("PUT", f"/apps/annotations/{_id(annotation_id)}", "PUT /apps/annotations/{id}",
                               json={"question": question, "answer": answer}, parse=Annotation.model_validate, idempotent=True), options)

    def delete_annotation(self, annotation_id: str, **options: Unpack[CallOptions]) -> Success:
        return self._call(Spec("DELETE", f"/apps/annotations/{_id(annotation_id)}", "DELETE /apps/annotations/{id}",
                               parse=_success, idempotent=True), options)

    def annotation_reply(self, action: Literal["enable", "disable"], *, embedding_provider_name: str, embedding_model_name: str,
                         score_threshold: float, **options: Unpack[CallOptions]) -> AnnotationJob:
        body = {"embedding_provider_name": embedding_provider_name, "embedding_model_name": embedding_model_name,
                "score_threshold": score_threshold}
        return self._call(Spec("POST", f"/apps/annotation-reply/{_id(action)}", "POST /apps/annotation-reply/{action}",
                               json=body, parse=AnnotationJob.model_validate), options)

    def annotation_reply_status(self, action: Literal["enable", "disable"], job_id: str, **options: Unpack[CallOptions]) -> AnnotationJob:
        return self._call(Spec("GET", f"/apps/annotation-reply/{_id(action)}/status/{_id(job_id)}",
                               "GET /apps/annotation-reply/{action}/status/{job_id}", parse=AnnotationJob.model_validate,
                               idempotent=True), options)

    # -- human input (Dify >= 1.13) ------------------------------------------------------------------------------

    def human_input_form(self, form_token: str, **options: Unpack[CallOptions]) -> HumanInputForm:
        return self._call(Spec("GET", f"/form/human_input/{_id(form_token)}", "GET /form/human_input/{token}",
                               parse=HumanInputForm.model_validate, idempotent=True), options)

    def submit_human_input(self, form_token: str, inputs: dict, action: str, *, user: str, **options: Unpack[CallOptions]) -> Success:
        return self._call(Spec("POST", f"/form/human_input/{_id(form_token)}", "POST /form/human_input/{token}",
                               json={"inputs": inputs, "action": action, "user": user}, parse=_success), options)

    # -- the stop endpoint that matches a stream -------------------------------------------------------------

    def _stop_for(self, spec: Spec, task_id: str) -> Success:
        user = spec.user or ""
        if spec.stream_mode == "chat":
            return self.stop_chat(task_id, user=user)
        if spec.stream_mode == "completion":
            return self.stop_completion(task_id, user=user)
        return self.stop_workflow(task_id, user=user)


def _flag(v: bool | None) -> str | None:
    return None if v is None else ("true" if v else "false")
