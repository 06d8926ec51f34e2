"""Benchmark runs in the background of a long-lived process (the Streamlit server), one at a time.

The page starts a job and keeps only its id in the session; the job lives here, in a module-level
registry of the server process, so it survives reruns, page changes and closed tabs. The job's
thread runs the engine in its own event loop and writes to the store; it never touches Streamlit
(a thread of our own has no ScriptRunContext). The page's live fragment reads `Job.progress` and
the store. One job at a time: two load runs on one machine would measure each other.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from .config import RunConfig
from .engine import Progress, RunOutcome, TargetSpec, compare_targets, new_run_id, run_benchmark
from .store import BenchStore

_lock = threading.Lock()
_jobs: dict[str, Job] = {}


@dataclass
class Job:
    id: str
    kind: str  # run | sweep | compare
    config: RunConfig
    store_path: Path
    targets: list[str]
    progress: Progress = field(default_factory=Progress)
    cancel: threading.Event = field(default_factory=threading.Event)
    outcomes: list[RunOutcome] = field(default_factory=list)
    error: str | None = None
    started_at: float = field(default_factory=time.time)
    thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self.thread is not None and self.thread.is_alive()

    @property
    def run_ids(self) -> list[str]:
        return list(self.progress.run_ids)


class JobBusyError(RuntimeError):
    """Another benchmark is running in this process."""


def start_job(config: RunConfig, targets: Sequence[TargetSpec], store: BenchStore) -> Job:
    """Start the run (a sweep when config.sweep, a comparison when two or more targets) in a thread."""
    with _lock:
        busy = [j for j in _jobs.values() if j.running]
        if busy:
            raise JobBusyError(f"a benchmark is already running ({busy[0].config.describe()}): wait for it or cancel it")
        kind = "compare" if len(targets) > 1 else ("sweep" if config.sweep else "run")
        cfg = config.model_copy(update={"target": targets[0].name, "base_url": targets[0].base_url}) if len(targets) == 1 else config
        job = Job(new_run_id(), kind, cfg, store.path, [t.name for t in targets])
        job.thread = threading.Thread(target=_work, args=(job, list(targets)), name=f"bench-job-{job.id}", daemon=True)
        _jobs[job.id] = job
        job.thread.start()
        return job


def _work(job: Job, targets: list[TargetSpec]) -> None:
    store = BenchStore(job.store_path)
    try:
        if job.kind == "compare":
            result: Any = compare_targets(job.config, targets, store=store, progress=job.progress, cancel=job.cancel)
        else:
            result = run_benchmark(job.config, targets[0].api_key, store=store, progress=job.progress, cancel=job.cancel)
        job.outcomes = result if isinstance(result, list) else [result]
        failed = [o for o in job.outcomes if o.status == "failed"]
        if failed:
            job.error = failed[0].error
    except BaseException as exc:  # shown on the page; the store keeps the rows and marks the run
        job.error = f"{type(exc).__name__}: {exc}"
    finally:
        job.progress.finished = True
        job.progress.phase = "done"


def get_job(job_id: str | None) -> Job | None:
    return _jobs.get(job_id) if job_id else None


def running_job() -> Job | None:
    with _lock:
        return next((j for j in _jobs.values() if j.running), None)
