"""Eval runs in the background of a long-lived process (the Streamlit server).

The page starts a job and keeps only its id in the session; the job lives in this module's registry, so
it survives reruns, page changes and closed tabs. Its thread runs the suite in its own event loop and
writes each result to the store as it ends; it never touches Streamlit. The page's live fragment reads
`Job.progress`. Several eval jobs may run at once (unlike load runs, they do not measure each other much).
"""
from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from lib.settings import Target

from .runner import CannotRunError, Progress, new_run_id, run_suite
from .store import EvalStore
from .suite import Suite

_lock = threading.Lock()
_jobs: dict[str, Job] = {}


@dataclass
class Job:
    id: str  # also the run's id in the store
    suite: str
    targets: list[str]
    progress: Progress = field(default_factory=Progress)
    cancel: threading.Event = field(default_factory=threading.Event)
    error: str | None = None
    thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self.thread is not None and self.thread.is_alive()


def start_job(suite: Suite, targets: Sequence[Target], store_path: str | Path, *, concurrency: int = 4,
              repeats: int | None = None, resolve: Callable[[str], Target] | None = None) -> Job:
    job = Job(new_run_id(), suite.name, [t.name for t in targets])
    job.progress.run_id = job.id

    def work() -> None:
        try:
            run_suite(suite, list(targets), store=EvalStore(store_path), concurrency=concurrency, repeats=repeats,
                      resolve=resolve, progress=job.progress, cancel=job.cancel, run_id=job.id)
        except CannotRunError as exc:
            job.error = str(exc)
        except BaseException as exc:  # noqa: BLE001 -- shown on the page; the store marks the run failed
            job.error = f"{type(exc).__name__}: {exc}"
        finally:
            job.progress.finished = True

    job.thread = threading.Thread(target=work, name=f"eval-job-{job.id}", daemon=True)
    with _lock:
        _jobs[job.id] = job
    job.thread.start()
    return job


def get_job(job_id: str | None) -> Job | None:
    return _jobs.get(job_id) if job_id else None
