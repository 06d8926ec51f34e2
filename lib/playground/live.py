"""A run streaming in a worker thread, so that a Streamlit rerun neither cuts it nor resends it.

Why a thread: Streamlit reruns the script on every click. With `runner.fastReruns` (the default) a
rerun does not wait for the running script: the old run gets a StopException at its next `st.*` call
while the new run is already drawing, so cleanup done in the interrupted run races the new one
(checked in a browser). Here the worker owns the HTTP stream and records everything into the Turn
(answer, ids, steps, nodes, timing, usage) whatever the script does; a script run only *follows* it
(`follow()` feeds st.write_stream) and a rerun simply follows it again. The message is sent once,
by `start()`, never by a rerun.

Stop: `stop()` calls Dify's stop endpoint for the stream's task (as soon as its first event gave the
task id); Dify then ends the stream with `message_end` (or `workflow_finished` status `stopped`) and
the turn keeps what arrived. Dify builds have answered 200 to a stop and gone on generating, so after
`stop_grace_s` the worker also closes the stream itself.

Orphans: the page calls `heartbeat()` while it shows the run. If nothing has for `orphan_after_s`
(the user stopped the script from Streamlit's menu, left the page, or closed the tab), the worker
stops the run in Dify, which keeps it from burning tokens for nobody.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from lib.dify import DifyClient, DifyError, EventStream, RunFailedError

from .app_profile import Kind, UploadRules
from .form import PendingFile
from .recorder import TurnRecorder
from .transcript import Turn
from .uploads import UploadRejected, check_attachments, field_inputs, upload_all

log = logging.getLogger("lib.playground")

ORPHAN_AFTER_S = 5.0
STOP_GRACE_S = 3.0


@dataclass
class RunRequest:
    """What to send: a chat message, a completion, or a workflow run."""

    kind: Kind
    user: str
    query: str = ""
    inputs: dict[str, Any] = field(default_factory=dict)
    conversation_id: str | None = None
    files: list[PendingFile] = field(default_factory=list)  # attachments, and files of file fields
    single_file_fields: frozenset[str] = frozenset()  # file fields that take one file (not file-list)
    upload_rules: UploadRules | None = None
    fetch_suggestions: bool = False  # GET /messages/{id}/suggested after the answer
    headers: dict[str, str] | None = None  # extra request headers (e.g. the simulator's X-Sim-*)


def open_stream(client: DifyClient, req: RunRequest, files: list[dict[str, Any]] | None, inputs: dict[str, Any]) -> EventStream:
    """The streaming call that matches the app's kind (agent apps only stream, so everything streams)."""
    opts: dict[str, Any] = {"headers": req.headers} if req.headers else {}
    if req.kind == "chat":
        return client.stream_chat(req.query, user=req.user, inputs=inputs, conversation_id=req.conversation_id,
                                  files=files or None, **opts)
    if req.kind == "completion":
        return client.stream_completion(inputs, user=req.user, query=req.query or None, files=files or None, **opts)
    return client.stream_workflow(inputs, user=req.user, files=files or None, **opts)


class LiveRun:
    """One run and its Turn. `start()` streams it in a daemon thread; `run()` in the caller's thread."""

    def __init__(self, client: DifyClient, request: RunRequest, turn: Turn, *,
                 orphan_after_s: float | None = ORPHAN_AFTER_S, stop_grace_s: float = STOP_GRACE_S) -> None:
        self.client = client
        self.request = request
        self.turn = turn
        self.recorder = TurnRecorder(turn)
        self.orphan_after_s = orphan_after_s
        self.stop_grace_s = stop_grace_s
        self.lock = threading.RLock()  # held while the worker changes the turn; hold it to read a consistent turn
        self._changed = threading.Condition(self.lock)
        self.version = 0  # bumps on every change of the turn
        self.details_version = 0  # bumps when steps, nodes or citations change
        self.done = threading.Event()
        self._stream: EventStream | None = None
        self._stop_requested_at: float | None = None
        self._stop_sent = False
        self._last_seen = time.monotonic()
        self._thread: threading.Thread | None = None

    # -- control (any thread) ------------------------------------------------------------------------

    def start(self) -> LiveRun:
        self._thread = threading.Thread(target=self.run, name=f"playground-run-{self.turn.id}", daemon=True)
        self._thread.start()
        return self

    @property
    def stop_requested(self) -> bool:
        return self._stop_requested_at is not None

    def stop(self) -> None:
        """Ask Dify to stop this run (now if the task id is known, else at the first event)."""
        if self.done.is_set():
            return
        with self.lock:
            if self._stop_requested_at is None:
                self._stop_requested_at = time.monotonic()
        self._send_stop()

    def heartbeat(self) -> None:
        """The page is showing this run: do not treat it as orphaned."""
        self._last_seen = time.monotonic()

    def wait(self, seen_version: int, timeout: float) -> int:
        """Block until the turn changed since `seen_version`, the run ended, or `timeout`; the version now."""
        with self._changed:
            if self.version == seen_version and not self.done.is_set():
                self._changed.wait(timeout)
            return self.version

    def join(self, timeout: float | None = None) -> bool:
        return self.done.wait(timeout)

    def follow(self, *, poll_s: float = 0.2, on_tick: Callable[[LiveRun], None] | None = None) -> Iterator[str]:
        """The answer text as it arrives, for st.write_stream: what came so far first, then each new piece.

        `on_tick(run)` is called every `poll_s` at most (redraw details, a waiting indicator); each call is
        also where Streamlit can interrupt the script. Ends when the run has ended.
        """
        sent, seen = 0, -1
        while True:
            finished = self.done.is_set()
            seen = self.wait(seen, poll_s)
            self.heartbeat()
            if on_tick is not None:
                on_tick(self)
            with self.lock:
                answer = self.turn.answer
            if len(answer) > sent:
                # A moderation rewrite (message_replace) can shorten it: the final redraw shows that.
                yield answer[sent:]
                sent = len(answer)
            if finished:
                return

    # -- the worker ------------------------------------------------------------------------------------

    def run(self) -> Turn:
        """Upload, stream to the end (or the stop), record; never raises: errors land in the turn."""
        req, turn = self.request, self.turn
        stream: EventStream | None = None
        error: str | None = None
        try:
            inputs = dict(req.inputs)
            files: list[dict[str, Any]] = []
            if req.files:
                if req.upload_rules is not None:
                    check_attachments(req.upload_rules, req.files)
                files, by_field = upload_all(self.client, req.files, user=req.user)
                inputs.update(field_inputs(by_field, set(req.single_file_fields)))
                req.files = []  # uploaded: do not keep the bytes in the session for the run's lifetime
            stream = self._stream = open_stream(self.client, req, files, inputs)
            for ev in stream:
                with self._changed:
                    if self.recorder.apply(ev, stream.timing):
                        self.details_version += 1
                    self.version += 1
                    self._changed.notify_all()
                if self._should_stop_reading():
                    break
        except RunFailedError as err:  # after the events: the timeline stands, with the failed node marked
            error = str(err)
            self._mark_failed_node(err)
        except DifyError as err:
            # A chatflow's failed run ends workflow_finished (failed) then an `error` event: the first says
            # which node failed and why, which a client without RunFailedError reads as a generic stream error.
            error = turn.error if self.recorder.run_failed and turn.error else str(err)
            if err.partial and len(err.partial) > len(turn.answer):
                turn.answer = err.partial
        except UploadRejected as err:
            error = str(err)
        except Exception as err:  # a bug or an unexpected library error: still a message, never a traceback
            log.exception("playground run %s failed", turn.id)
            error = f"Unexpected error ({type(err).__name__}): {err}"
        finally:
            if stream is not None:
                stream.close()  # no-op after a normal end; releases the connection after a break
            self._finish(stream, error)
        return turn

    def _mark_failed_node(self, err: RunFailedError) -> None:
        with self.lock:
            for node in self.turn.nodes:
                # NodeRun.node_id is the execution's id, not Dify's node id: match the failed node by its title.
                if node.status == "running" or (err.node_title and node.title == err.node_title and node.status != "succeeded"):
                    node.status = "failed"
                    node.error = node.error or getattr(err, "message", None) or str(err)

    def _should_stop_reading(self) -> bool:
        if self._stop_requested_at is None:
            if self.orphan_after_s is not None and time.monotonic() - self._last_seen > self.orphan_after_s:
                log.info("playground run %s: nobody is watching, stopping it", self.turn.id)
                self.stop()
            return False
        self._send_stop()  # the first event may only now have brought the task id
        return time.monotonic() - self._stop_requested_at > self.stop_grace_s

    def _send_stop(self) -> None:
        stream = self._stream
        with self.lock:
            if self._stop_sent or stream is None or stream.task_id is None:
                return
            self._stop_sent = True
        try:
            stream.stop()
        except DifyError as err:  # the stream still ends at the grace period
            log.warning("stopping playground run %s failed: %s", self.turn.id, err)

    def _finish(self, stream: EventStream | None, error: str | None) -> None:
        turn = self.turn
        suggestions: list[str] = []
        ok = error is None and not self.stop_requested and turn.status == "streaming"
        if ok and self.request.fetch_suggestions and turn.message_id:
            try:
                suggestions = self.client.suggested(turn.message_id, user=self.request.user)
            except DifyError as err:  # follow-ups are a nicety: the answer stands without them
                log.info("no suggested questions for %s: %s", turn.message_id, err)
        stopped = error is None and (self.stop_requested or turn.status == "stopped")
        with self._changed:
            self.recorder.finish(stream.timing if stream is not None else None, stream.usage if stream is not None else None,
                                 stopped=stopped)
            if stream is not None:
                turn.task_id = turn.task_id or stream.task_id
                turn.message_id = turn.message_id or stream.message_id
                turn.conversation_id = turn.conversation_id or stream.conversation_id
            if error is not None:
                turn.status, turn.error = "error", error
            elif stopped:
                turn.status = "stopped"
            else:
                turn.status = "error" if turn.error else "done"  # a failed workflow run carries its error
            turn.suggestions = [s for s in suggestions if isinstance(s, str) and s.strip()]
            self.version += 1
            self.details_version += 1
            self.done.set()
            self._changed.notify_all()
