"""Benchmark runs started from the page, each in a worker process of its own (lib.bench.worker), one at a time.

The page starts a job and keeps only its id in the session; the job lives here, in a module-level
registry of the server process, so it survives reruns, page changes and closed tabs. The run itself is
`python -m lib.bench.worker`: the same engine as the CLI in a process where Streamlit cannot stall its
event loop (issue 12: in the server's own process every page run was client-bound). The worker writes
to the store as it goes and reports progress lines, which a reader thread here turns into
`Job.progress` for the page's live fragment. One job at a time: two load runs on one machine would
measure each other.

Lifetime: the worker's stdin stays open while this process lives. Cancel writes `cancel` to it (the run
is saved as cancelled), then terminates and kills it if it does not stop; this process's exit cancels
and stops every worker (atexit), and if this process dies without that, the end of file on the worker's
stdin cancels it (see lib.bench.worker).
"""
from __future__ import annotations

import atexit
import collections
import json
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from .config import RunConfig
from .engine import TargetSpec, new_run_id
from .store import BenchStore

ROOT = Path(__file__).resolve().parents[2]
CANCEL_GRACE_S = 10.0  # a cancelled run drains nothing (its requests are cancelled): it stops within a second
KILL_GRACE_S = 5.0

_lock = threading.Lock()
_jobs: dict[str, Job] = {}


@dataclass
class JobProgress:
    """The worker's last progress line (lib.bench.worker.snapshot), read by the live panel."""

    run_id: str = ""
    run_ids: list[str] = field(default_factory=list)
    step: int = 1
    steps: int = 1
    label: str = ""
    phase: str = "starting"
    sent: int = 0
    done: int = 0
    ok: int = 0
    failed: int = 0
    measured_sent: int = 0
    measured_done: int = 0
    in_flight: int = 0
    last_error: str | None = None
    elapsed_s: float = 0.0
    fraction_done: float = 0.0
    finished: bool = False

    def overall(self) -> float:
        return 1.0 if self.finished else self.fraction_done

    def update(self, snap: dict[str, Any]) -> None:
        for name, value in snap.items():
            if name == "overall":
                self.fraction_done = float(value)
            elif hasattr(self, name):
                setattr(self, name, value)


@dataclass
class Job:
    id: str
    kind: str  # run | sweep | compare
    config: RunConfig
    store_path: Path
    targets: list[str]
    progress: JobProgress = field(default_factory=JobProgress)
    error: str | None = None
    started_at: float = field(default_factory=time.time)
    proc: subprocess.Popen | None = field(default=None, repr=False)
    ended: threading.Event = field(default_factory=threading.Event, repr=False)
    cancel_requested: bool = False
    _stderr: collections.deque = field(default_factory=lambda: collections.deque(maxlen=20), repr=False)

    @property
    def running(self) -> bool:
        """Until the worker has exited and its last line was read (so the results are complete)."""
        return not self.ended.is_set()

    @property
    def run_ids(self) -> list[str]:
        return list(self.progress.run_ids)

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def cancel(self) -> None:
        """Ask the worker to stop (it saves the run as cancelled); force it if it does not."""
        if self.cancel_requested or not self.running:
            return
        self.cancel_requested = True
        _send(self.proc.stdin if self.proc is not None else None, "cancel\n")
        threading.Thread(target=self._force_stop, args=(CANCEL_GRACE_S,), name=f"bench-cancel-{self.id}", daemon=True).start()

    def _force_stop(self, grace_s: float) -> None:
        proc = self.proc
        if proc is None:
            return
        for step in (None, proc.terminate, proc.kill):  # ask (done), then SIGTERM (also a cancel), then SIGKILL
            if step is not None:
                step()
            try:
                proc.wait(grace_s if step is None else KILL_GRACE_S)
                return
            except subprocess.TimeoutExpired:
                continue

    def wait(self, timeout: float | None = None) -> bool:
        return self.ended.wait(timeout)


class JobBusyError(RuntimeError):
    """Another benchmark is running in this process."""


def start_job(config: RunConfig, targets: Sequence[TargetSpec], store: BenchStore) -> Job:
    """Start the run (a sweep when config.sweep, a comparison when two or more targets) in a worker process."""
    with _lock:
        busy = [j for j in _jobs.values() if j.running]
        if busy:
            raise JobBusyError(f"A benchmark is already running ({busy[0].config.describe()}): wait for it or cancel it.")
        kind = "compare" if len(targets) > 1 else ("sweep" if config.sweep else "run")
        cfg = config.model_copy(update={"target": targets[0].name, "base_url": targets[0].base_url}) if len(targets) == 1 else config
        job = Job(new_run_id(), kind, cfg, store.path, [t.name for t in targets])
        job.progress.steps = len(targets) if kind == "compare" else max(1, len(cfg.sweep))
        job.proc = subprocess.Popen(
            [sys.executable, "-m", "lib.bench.worker"], cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, encoding="utf-8", errors="replace", bufsize=1,
        )
        request = {"config": cfg.model_dump(mode="json"), "store": str(store.path),
                   "targets": [{"name": t.name, "base_url": t.base_url, "api_key": t.api_key} for t in targets]}
        _send(job.proc.stdin, json.dumps(request) + "\n")  # the keys go by stdin, never argv or the environment
        threading.Thread(target=_read_stderr, args=(job,), name=f"bench-stderr-{job.id}", daemon=True).start()
        threading.Thread(target=_follow, args=(job,), name=f"bench-job-{job.id}", daemon=True).start()
        _jobs[job.id] = job
        return job


def _send(stream: IO[str] | None, text: str) -> None:
    try:
        if stream is not None:
            stream.write(text)
            stream.flush()
    except (BrokenPipeError, ValueError, OSError):  # the worker already ended
        pass


def _started(job: Job) -> subprocess.Popen:
    """The job's worker process: the readers start only after start() set it."""
    if job.proc is None:
        raise RuntimeError(f"benchmark job {job.id} has no worker process")
    return job.proc


def _read_stderr(job: Job) -> None:
    proc = _started(job)
    for line in proc.stderr or ():
        if line.strip():
            job._stderr.append(line.rstrip())


def _follow(job: Job) -> None:
    """The worker's stdout: progress lines, then its outcome. Ends the job when the worker has exited."""
    done: dict[str, Any] | None = None
    try:
        proc = _started(job)
        for line in proc.stdout or ():
            try:
                message = json.loads(line)
            except ValueError:  # a library printing to stdout: not ours to parse
                continue
            if "progress" in message:
                job.progress.update(message["progress"])
            elif "done" in message:
                done = message["done"]
        code = proc.wait()
        if done is not None:
            job.error = done.get("error")
            if done.get("run_ids"):
                job.progress.run_ids = list(done["run_ids"])
        elif not job.cancel_requested:
            tail = " ".join(list(job._stderr)[-3:])
            job.error = f"The benchmark process stopped unexpectedly (exit code {code}). {tail}".strip()
    finally:
        job.progress.finished, job.progress.phase = True, "done"
        job.ended.set()


def get_job(job_id: str | None) -> Job | None:
    return _jobs.get(job_id) if job_id else None


def running_job() -> Job | None:
    with _lock:
        return next((j for j in _jobs.values() if j.running), None)


@atexit.register
def stop_all(timeout_s: float = KILL_GRACE_S) -> None:
    """The console is exiting: cancel every running worker and make sure none outlives it."""
    running = [j for j in list(_jobs.values()) if j.running]
    for job in running:
        job.cancel_requested = True
        _send(job.proc.stdin if job.proc is not None else None, "cancel\n")
    for job in running:
        job._force_stop(timeout_s)
