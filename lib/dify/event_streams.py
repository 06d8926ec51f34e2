"""EventStream and AsyncEventStream: a Dify stream read as typed events, on the clients' attempt loops.

The request is sent on the first iteration (DifyClient._run / AsyncDifyClient._run: retries, slots,
deadlines); each chunk then goes to the sans-IO `stream.StreamState`, which yields the events and keeps
the answer, ids, usage and timing read so far.
"""
from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Coroutine, Generator, Iterator
from typing import Any, Protocol, Self

import httpx

from . import deadlines
from .core import Call, Spec
from .errors import DifyError
from .events import Event
from .models import ChatResult, CompletionResult, Success, WorkflowResult
from .stream import StreamState
from .timing import Timing, clock
from .usage import Usage

Result = ChatResult | CompletionResult | WorkflowResult


class _Runner(Protocol):
    """What a sync stream needs of DifyClient."""

    def _run(self, call: Call, stream: bool) -> Any: ...

    def _stop_for(self, spec: Spec, task_id: str) -> Success: ...


class _AsyncRunner(Protocol):
    """What an async stream needs of AsyncDifyClient."""

    async def _run(self, call: Call, stream: bool) -> Any: ...

    async def _stop_for(self, spec: Spec, task_id: str) -> Success: ...


def detach(err: DifyError) -> DifyError:
    """Cut the typed error from the transport exceptions under it: httpx and aiohttp errors hold the
    request, and its headers the key. The error's own sentence says what happened."""
    err.__cause__ = None
    err.__context__ = None
    err.__suppress_context__ = True
    return err


def _chunks(response: httpx.Response) -> Iterator[bytes]:
    # The transport's own byte stream: two generator layers fewer per chunk than iter_bytes().
    return response.iter_bytes() if "content-encoding" in response.headers else iter(response.stream)  # type: ignore[arg-type]


def _achunks(response: httpx.Response) -> AsyncIterator[bytes]:
    return response.aiter_bytes() if "content-encoding" in response.headers else response.stream.__aiter__()  # type: ignore[union-attr]


class _StreamBase:
    """What sync and async streams share: the state read as the events go."""

    def __init__(self, call: Call) -> None:
        self._call = call
        self.state: StreamState | None = None

    @property
    def route(self) -> str:
        return self._call.spec.route

    @property
    def timing(self) -> Timing:
        return self._call.timing

    @property
    def answer(self) -> str:
        """The answer so far (message/agent_message pieces, or a workflow's text chunks)."""
        return self.state.answer if self.state else ""

    @property
    def conversation_id(self) -> str | None:
        return self.state.conversation_id if self.state else None

    @property
    def message_id(self) -> str | None:
        return self.state.message_id if self.state else None

    @property
    def task_id(self) -> str | None:
        return self.state.task_id if self.state else None

    @property
    def workflow_run_id(self) -> str | None:
        return self.state.workflow_run_id if self.state else None

    @property
    def usage(self) -> Usage | None:
        return self.state.usage if self.state else None

    @property
    def finished(self) -> bool:
        return bool(self.state and self.state.finished)

    def result(self) -> Result:
        """The typed result of what was received (call after the stream ended)."""
        if self.state is None:
            raise RuntimeError("the stream has not started: iterate it first")
        return self.state.result()

    def _task_to_stop(self) -> str:
        if self.task_id is None:
            raise RuntimeError("no task_id yet: stop() needs the stream's first event")
        return self.task_id

    def _abandoned(self) -> None:
        """Closed by the reader before the end: finish the call's record without an error."""
        call = self._call
        if call.timing.end is None:
            if call.core.breaker is not None and self.state is not None:
                call.core.breaker.record_success()  # Dify was streaming fine; the reader left
            call.abandoned()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(route={self.route!r}, state={self.state!r})"


class EventStream(_StreamBase):
    """Iterate for typed events; the request is sent on the first iteration. Use `with` (or
    close()) to release the connection if you stop reading early."""

    def __init__(self, client: _Runner, call: Call) -> None:
        super().__init__(call)
        self._client = client
        self._gen: Generator[Event, None, None] | None = None

    def __iter__(self) -> Iterator[Event]:
        if self._gen is None:
            self._gen = self._events()
        return self._gen

    def _events(self) -> Generator[Event, None, None]:
        try:
            response, state, release = self._client._run(self._call, stream=True)
        except BaseException as exc:
            self._call.abandoned()  # no-op after a DifyError (already recorded); closes it if interrupted
            if isinstance(exc, DifyError):
                detach(exc)
            raise
        self.state = state
        try:
            chunks = _chunks(response)
            set_deadline = deadlines.set_deadline
            try:
                while True:
                    # each read ends by the first-event deadline, then the total one (None: only idle)
                    before = set_deadline(state.deadline)
                    try:
                        chunk = next(chunks)
                    except StopIteration:
                        break
                    finally:
                        set_deadline(before)
                    yield from state.feed(chunk)
            except httpx.HTTPError as exc:
                failure = state.broken(exc)
                if failure is not None:
                    raise detach(failure) from None
            state.eof()
        except DifyError as err:
            detach(err)
            raise
        finally:
            response.close()
            release()
            self._abandoned()

    def text(self) -> Iterator[str]:
        """Only the answer text, piece by piece (for st.write_stream)."""
        for ev in self:
            t = ev.text
            if t:
                yield t

    def collect(self) -> Result:
        """Read the stream to its end; the typed result (ChatResult, CompletionResult or WorkflowResult)."""
        for _ in self:
            pass
        return self.result()

    def stop(self) -> Success:
        """Ask Dify to stop this run (POST .../{task_id}/stop)."""
        return self._client._stop_for(self._call.spec, self._task_to_stop())

    def close(self) -> None:
        if self._gen is not None:
            self._gen.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncEventStream(_StreamBase):
    """`async for` typed events; the request is sent on the first iteration. Use `async with` (or
    aclose()) to release the connection if you stop reading early."""

    def __init__(self, client: _AsyncRunner, call: Call) -> None:
        super().__init__(call)
        self._client = client
        self._gen: AsyncGenerator[Event, None] | None = None

    def __aiter__(self) -> AsyncIterator[Event]:
        if self._gen is None:
            self._gen = self._events()
        return self._gen

    async def _events(self) -> AsyncGenerator[Event, None]:
        try:
            response, state, release = await self._client._run(self._call, stream=True)
        except BaseException as exc:
            self._call.abandoned()  # no-op after a DifyError (already recorded); closes it if cancelled
            if isinstance(exc, DifyError):
                detach(exc)
            raise
        self.state = state
        chunks = _achunks(response)
        try:
            while True:
                deadline = state.deadline  # None once the first event came (unless a total deadline is set)
                try:
                    if deadline is None:
                        chunk = await chunks.__anext__()
                    else:
                        async with asyncio.timeout(max(deadline - clock(), 0.0)) as cm:
                            chunk = await chunks.__anext__()
                except StopAsyncIteration:
                    break
                except TimeoutError:
                    if deadline is None or not cm.expired():
                        raise
                    if state.finished:
                        break
                    raise state.timed_out() from None
                except httpx.HTTPError as exc:
                    failure = state.broken(exc)
                    if failure is None:
                        break
                    raise detach(failure) from None
                for ev in state.feed(chunk):
                    yield ev
            state.eof()
        except DifyError as err:
            detach(err)
            raise
        finally:
            aclose = getattr(chunks, "aclose", None)
            if aclose is not None:
                await aclose()
            await response.aclose()
            release()
            self._abandoned()

    async def text(self) -> AsyncIterator[str]:
        async for ev in self:
            t = ev.text
            if t:
                yield t

    async def collect(self) -> Result:
        async for _ in self:
            pass
        return self.result()

    def stop(self) -> Coroutine[Any, Any, Success]:
        """Ask Dify to stop this run (POST .../{task_id}/stop): await it. Raises now if no task id came yet."""
        return self._client._stop_for(self._call.spec, self._task_to_stop())

    async def aclose(self) -> None:
        if self._gen is not None:
            await self._gen.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
