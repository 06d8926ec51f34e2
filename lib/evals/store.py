"""Eval runs in SQLite, beside the benchmark runs: `data/evals.sqlite`, or the EVALS_DB environment variable.

A run's row holds the suite as it was read (so a run can be understood after the file changed), the targets'
names, URLs and masked keys (never a key), and its summary; each result is one row written as its case
ends, with its turns (timing, node events, usage) as JSON, so the page can draw a run while it goes on.
WAL mode: the page reads while the runner writes.
"""
from __future__ import annotations

import os
import socket
import sqlite3
import time
from pathlib import Path
from typing import Any

import orjson

from .records import CaseResult, EvalRun

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_PATH = ROOT / "data" / "evals.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS eval_runs (
    id TEXT PRIMARY KEY, suite TEXT, suite_text TEXT, targets TEXT, variants TEXT, status TEXT NOT NULL,
    created_at REAL, finished_at REAL, config TEXT, summary TEXT, error TEXT
);
CREATE TABLE IF NOT EXISTS eval_results (
    run_id TEXT NOT NULL REFERENCES eval_runs(id) ON DELETE CASCADE,
    seq INTEGER NOT NULL, case_id TEXT, target TEXT, variant TEXT, repeat INTEGER, passed INTEGER,
    error TEXT, ttft_s REAL, total_s REAL, tokens INTEGER, cost REAL, data TEXT,
    PRIMARY KEY (run_id, seq)
) WITHOUT ROWID;
"""


def default_path() -> Path:
    return Path(os.environ.get("EVALS_DB") or DEFAULT_PATH)


class EvalStore:
    """One SQLite file; each method opens its own short connection, so a store is safe across threads."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else default_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.executescript(_SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=30.0)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA foreign_keys=ON")
        db.row_factory = sqlite3.Row
        return db

    def __repr__(self) -> str:
        return f"EvalStore({str(self.path)!r})"

    def create_run(self, run: EvalRun, suite_text: str = "") -> None:
        with self._connect() as db:
            db.execute("INSERT INTO eval_runs (id, suite, suite_text, targets, variants, status, created_at, config) "
                       "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                       (run.id, run.suite, suite_text, _j(run.targets), _j(run.variants), run.status, run.created_at,
                        _j(run.config)))

    def add_result(self, run_id: str, r: CaseResult) -> None:
        with self._connect() as db:
            db.execute("INSERT OR REPLACE INTO eval_results VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                       (run_id, r.seq, r.case_id, r.target, r.variant, r.repeat, int(r.passed), r.error, r.ttft_s,
                        r.total_s, r.tokens, r.cost, _j(r.as_dict())))

    def finish_run(self, run: EvalRun) -> None:
        with self._connect() as db:
            db.execute("UPDATE eval_runs SET status = ?, finished_at = ?, summary = ?, error = ? WHERE id = ?",
                       (run.status, run.finished_at or time.time(), _j(run.summary()), run.error, run.id))

    def runs(self, limit: int = 100) -> list[EvalRun]:
        """Newest first, without their results."""
        with self._connect() as db:
            rows = db.execute("SELECT * FROM eval_runs ORDER BY created_at DESC LIMIT ?", (limit,)).fetchall()
        return [_run(row) for row in rows]

    def get_run(self, run_id: str) -> EvalRun | None:
        """The run with its results, or None."""
        with self._connect() as db:
            row = db.execute("SELECT * FROM eval_runs WHERE id = ?", (run_id,)).fetchone()
            if row is None:
                return None
            results = db.execute("SELECT data FROM eval_results WHERE run_id = ? ORDER BY seq", (run_id,)).fetchall()
        run = _run(row)
        run.results = [CaseResult.from_dict(orjson.loads(r["data"])) for r in results]
        return run

    def suite_text(self, run_id: str) -> str | None:
        with self._connect() as db:
            row = db.execute("SELECT suite_text FROM eval_runs WHERE id = ?", (run_id,)).fetchone()
        return row["suite_text"] if row else None

    def delete_run(self, run_id: str) -> None:
        with self._connect() as db:
            db.execute("DELETE FROM eval_runs WHERE id = ?", (run_id,))


def _j(value: Any) -> str:
    return orjson.dumps(value, default=str).decode()


def _gone(config: dict[str, Any]) -> bool:
    """The process that ran it, on this machine, has ended (a run of another host cannot be told)."""
    pid = config.get("pid")
    if not pid or config.get("host") != socket.gethostname():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, someone else's
        return False
    return False


def _run(row: sqlite3.Row) -> EvalRun:
    run = EvalRun(row["id"], row["suite"], orjson.loads(row["targets"]), orjson.loads(row["variants"]),
                   row["status"], [], row["created_at"], row["finished_at"], row["error"],
                   orjson.loads(row["config"]) if row["config"] else {},
                   orjson.loads(row["summary"]) if row["summary"] else None)
    if run.status == "running" and _gone(run.config):
        run.status = "crashed"  # killed mid-run: the results it saved are kept and shown
    return run
