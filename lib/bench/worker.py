"""One page-started benchmark in a process of its own: `python -m lib.bench.worker` (lib.bench.jobs starts it).

Why a process: inside the Streamlit server the engine's event loop shares the GIL with script reruns,
the live fragment and chart serialisation, which stalled it by 120-180 ms (issue 12): every page run was
client-bound. Here it runs the same engine (run_benchmark / compare_targets) as the CLI, alone, and
writes to the same store as it goes; the page follows the store and the progress lines.

Protocol, JSON lines:
- stdin, first line: {"config": RunConfig, "targets": [{"name", "base_url", "api_key"}], "store": path}.
  The API keys travel here, never in argv (visible to every user in `ps`) or the environment.
- stdin, later: a line `cancel` stops the run (saved as cancelled). End of file (the console that
  started us is gone) cancels too, and a hard exit follows if the run does not stop within EXIT_GRACE_S:
  a worker never outlives its console. SIGTERM and SIGINT cancel the same way.
- stdout: {"progress": {...}} every PROGRESS_S, and a last {"done": {"run_ids": [...], "error": str|null}}.
"""
from __future__ import annotations

import json
import os
import signal
import sys
import threading
from typing import Any, TextIO

from .config import RunConfig
from .engine import Progress, TargetSpec, compare_targets, run_benchmark
from .store import BenchStore

PROGRESS_S = 0.25
EXIT_GRACE_S = 15.0
PROGRESS_FIELDS = ("run_id", "step", "steps", "label", "phase", "sent", "done", "ok", "failed", "measured_sent",
                   "measured_done", "in_flight", "last_error")


def snapshot(progress: Progress) -> dict[str, Any]:
    """What the page's live panel shows, as plain JSON (the worker's clock stays here)."""
    out = {name: getattr(progress, name) for name in PROGRESS_FIELDS}
    out.update(run_ids=list(progress.run_ids), elapsed_s=progress.elapsed_s, overall=progress.overall())
    return out


class _Out:
    """stdout writes from two threads (progress ticks, the final line), one line at a time."""

    def __init__(self, stream: TextIO) -> None:
        self.stream, self.lock = stream, threading.Lock()

    def send(self, message: dict[str, Any]) -> None:
        line = json.dumps(message, default=str)
        with self.lock:
            try:
                self.stream.write(line + "\n")
                self.stream.flush()
            except (BrokenPipeError, ValueError):  # the console is gone: the run goes on to its cancel
                pass


def _watch_stdin(stream: TextIO, cancel: threading.Event) -> None:
    for line in stream:
        if line.strip() == "cancel":
            cancel.set()
    # End of file: the console is gone and nobody will read our results; stop for good even if the run hangs.
    cancel.set()
    timer = threading.Timer(EXIT_GRACE_S, os._exit, args=(3,))
    timer.daemon = True
    timer.start()


def _ticks(progress: Progress, out: _Out, stop: threading.Event) -> None:
    while not stop.wait(PROGRESS_S):
        out.send({"progress": snapshot(progress)})


def main(stdin: TextIO = sys.stdin, stdout: TextIO = sys.stdout) -> int:
    out = _Out(stdout)
    request = json.loads(stdin.readline() or "{}")
    config = RunConfig.model_validate(request["config"])
    targets = [TargetSpec(t["name"], t["base_url"], t["api_key"]) for t in request["targets"]]
    store = BenchStore(request.get("store"))
    cancel, stop = threading.Event(), threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: cancel.set())
    threading.Thread(target=_watch_stdin, args=(stdin, cancel), name="bench-worker-stdin", daemon=True).start()
    progress = Progress()
    ticker = threading.Thread(target=_ticks, args=(progress, out, stop), name="bench-worker-progress", daemon=True)
    ticker.start()
    error = None
    try:
        if len(targets) > 1:
            result: Any = compare_targets(config, targets, store=store, progress=progress, cancel=cancel)
        else:
            result = run_benchmark(config, targets[0].api_key, store=store, progress=progress, cancel=cancel)
        outcomes = result if isinstance(result, list) else [result]
        error = next((o.error for o in outcomes if o.status == "failed"), None)
    except BaseException as exc:  # the store keeps the rows and marks the run; the page shows why
        error = f"{type(exc).__name__}: {exc}"
    finally:
        stop.set()
        ticker.join()
        progress.finished, progress.phase = True, "done"
        out.send({"progress": snapshot(progress)})
        out.send({"done": {"run_ids": list(progress.run_ids), "error": error}})
    return 0 if error is None else 1


if __name__ == "__main__":
    sys.exit(main())
