"""AsyncDifyClient's typed surface: Endpoints' methods as a type checker should see them on the async client.

At run time AsyncDifyClient inherits `Endpoints` (every endpoint is written once, for both clients), whose
annotations are the sync client's: `info()` "returns" AppInfo, though on the async client it returns a
coroutine. A type checker sees this class in Endpoints' place instead: the blocking endpoints as coroutines
of their result types, the streaming ones as an `AsyncEventStream` (`async for` yields the typed events of
events.py; `await .collect()` gives the result). Declarations only, never imported at run time; see Endpoints
for what each method does. tests/unit/test_async_surface.py checks that every method here has Endpoints'
parameters, so the two cannot drift apart.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any, Literal, Unpack

    from .core import CallOptions, Spec
    from .endpoints import FileInput, FileLike
    from .event_streams import AsyncEventStream
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

    class AsyncEndpoints:
        """The Service API surface of AsyncDifyClient (types only)."""

        async def _call(self, spec: Spec, options: CallOptions) -> Any: ...

        def _stream(self, spec: Spec, options: CallOptions) -> AsyncEventStream: ...

        # -- app information (all modes) ------------------------------------------------------------------

        async def info(self, **options: Unpack[CallOptions]) -> AppInfo: ...

        async def parameters(self, **options: Unpack[CallOptions]) -> AppParameters: ...

        async def meta(self, **options: Unpack[CallOptions]) -> AppMeta: ...

        async def site(self, **options: Unpack[CallOptions]) -> AppSite: ...

        async def end_user(self, end_user_id: str, **options: Unpack[CallOptions]) -> EndUser: ...

        # -- chat, agent and chatflow apps -----------------------------------------------------------------

        async def chat(self, query: str, *, user: str, inputs: dict | None = None, conversation_id: str | None = None,
                       files: Sequence[FileInput] | None = None, auto_generate_name: bool | None = None,
                       workflow_id: str | None = None, **options: Unpack[CallOptions]) -> ChatResult: ...

        def stream_chat(self, query: str, *, user: str, inputs: dict | None = None, conversation_id: str | None = None,
                        files: Sequence[FileInput] | None = None, auto_generate_name: bool | None = None,
                        workflow_id: str | None = None, **options: Unpack[CallOptions]) -> AsyncEventStream: ...

        async def stop_chat(self, task_id: str, *, user: str, **options: Unpack[CallOptions]) -> Success: ...

        # -- completion apps -------------------------------------------------------------------------------

        async def completion(self, inputs: dict | None = None, *, user: str, query: str | None = None,
                             files: Sequence[FileInput] | None = None, **options: Unpack[CallOptions]) -> CompletionResult: ...

        def stream_completion(self, inputs: dict | None = None, *, user: str, query: str | None = None,
                              files: Sequence[FileInput] | None = None, **options: Unpack[CallOptions]) -> AsyncEventStream: ...

        async def stop_completion(self, task_id: str, *, user: str, **options: Unpack[CallOptions]) -> Success: ...

        # -- workflow apps ---------------------------------------------------------------------------------

        async def run_workflow(self, inputs: dict | None = None, *, user: str, files: Sequence[FileInput] | None = None,
                               workflow_id: str | None = None, **options: Unpack[CallOptions]) -> WorkflowResult: ...

        def stream_workflow(self, inputs: dict | None = None, *, user: str, files: Sequence[FileInput] | None = None,
                            workflow_id: str | None = None, **options: Unpack[CallOptions]) -> AsyncEventStream: ...

        async def stop_workflow(self, task_id: str, *, user: str, **options: Unpack[CallOptions]) -> Success: ...

        async def workflow_run(self, workflow_run_id: str, **options: Unpack[CallOptions]) -> WorkflowRun: ...

        async def workflow_logs(self, *, keyword: str | None = None, status: str | None = None, page: int | None = None,
                                limit: int | None = None, created_at__before: str | None = None,
                                created_at__after: str | None = None, created_by_end_user_session_id: str | None = None,
                                created_by_account: str | None = None, **options: Unpack[CallOptions]) -> NumberedPage[dict]: ...

        def stream_workflow_events(self, workflow_run_id: str, *, user: str, include_state_snapshot: bool | None = None,
                                   continue_on_pause: bool | None = None, **options: Unpack[CallOptions]) -> AsyncEventStream: ...

        # -- conversations and messages (chat-family apps) -------------------------------------------------

        async def messages(self, conversation_id: str, *, user: str, first_id: str | None = None, limit: int | None = None,
                           **options: Unpack[CallOptions]) -> Page[Message]: ...

        async def conversations(self, *, user: str, last_id: str | None = None, limit: int | None = None,
                                sort_by: Literal["created_at", "-created_at", "updated_at", "-updated_at"] | None = None,
                                **options: Unpack[CallOptions]) -> Page[Conversation]: ...

        async def delete_conversation(self, conversation_id: str, *, user: str, **options: Unpack[CallOptions]) -> Success: ...

        async def rename_conversation(self, conversation_id: str, name: str | None = None, *, user: str,
                                      auto_generate: bool = False, **options: Unpack[CallOptions]) -> Conversation: ...

        async def conversation_variables(self, conversation_id: str, *, user: str, last_id: str | None = None,
                                         limit: int | None = None, variable_name: str | None = None,
                                         **options: Unpack[CallOptions]) -> Page[ConversationVariable]: ...

        async def update_conversation_variable(self, conversation_id: str, variable_id: str, value: Any, *, user: str,
                                               **options: Unpack[CallOptions]) -> ConversationVariable: ...

        async def feedback(self, message_id: str, rating: Literal["like", "dislike"] | None, *, user: str,
                           content: str | None = None, **options: Unpack[CallOptions]) -> Success: ...

        async def app_feedbacks(self, *, page: int | None = None, limit: int | None = None,
                                **options: Unpack[CallOptions]) -> Page[Feedback]: ...

        async def suggested(self, message_id: str, *, user: str, **options: Unpack[CallOptions]) -> list[str]: ...

        # -- files and audio -------------------------------------------------------------------------------

        async def upload_file(self, file: FileLike, *, user: str, filename: str | None = None, mime_type: str | None = None,
                              **options: Unpack[CallOptions]) -> UploadedFile: ...

        async def file_preview(self, file_id: str, *, user: str | None = None, as_attachment: bool = False,
                               **options: Unpack[CallOptions]) -> bytes: ...

        async def audio_to_text(self, file: FileLike, *, user: str, filename: str | None = None, mime_type: str | None = None,
                                **options: Unpack[CallOptions]) -> AudioText: ...

        async def text_to_audio(self, *, user: str, text: str | None = None, message_id: str | None = None,
                                voice: str | None = None, **options: Unpack[CallOptions]) -> bytes: ...

        # -- annotations (chat-family apps) ----------------------------------------------------------------

        async def annotations(self, *, page: int | None = None, limit: int | None = None, keyword: str | None = None,
                              **options: Unpack[CallOptions]) -> NumberedPage[Annotation]: ...

        async def create_annotation(self, question: str, answer: str, **options: Unpack[CallOptions]) -> Annotation: ...

        async def update_annotation(self, annotation_id: str, question: str, answer: str,
                                    **options: Unpack[CallOptions]) -> Annotation: ...

        async def delete_annotation(self, annotation_id: str, **options: Unpack[CallOptions]) -> Success: ...

        async def annotation_reply(self, action: Literal["enable", "disable"], *, embedding_provider_name: str,
                                   embedding_model_name: str, score_threshold: float,
                                   **options: Unpack[CallOptions]) -> AnnotationJob: ...

        async def annotation_reply_status(self, action: Literal["enable", "disable"], job_id: str,
                                          **options: Unpack[CallOptions]) -> AnnotationJob: ...

        # -- human input (Dify >= 1.13) --------------------------------------------------------------------

        async def human_input_form(self, form_token: str, **options: Unpack[CallOptions]) -> HumanInputForm: ...

        async def submit_human_input(self, form_token: str, inputs: dict, action: str, *, user: str,
                                     **options: Unpack[CallOptions]) -> Success: ...

        # -- the stop endpoint that matches a stream -------------------------------------------------------

        async def _stop_for(self, spec: Spec, task_id: str) -> Success: ...
