"""The run store: every run's config, environment, per-request rows and summary in SQLite.

Path: `data/bench.sqlite`, or the `BENCH_DB` environment variable (tests, notebooks). WAL mode, so
the page can read a run while the engine writes it. Rows are written by a `RunWriter` thread in
batches as requests complete (every FLUSH_S), never by the engine's event loop, so a crash or a kill
loses at most the last half second, and the loop never waits on the disk.

A run's status: running -> finished | cancelled | failed (could not start, or the engine raised);
a run still marked running whose process is gone (or whose heartbeat stopped) reads as crashed, and
is marked so the first time it is listed. Its rows stay, and its summary is computed from them.
"""
from __future__ import annotations

import collections
import os
import sys
from array import array
import socket
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import orjson
import pandas as pd

from .config import mask_config
from .records import COLUMNS, RequestRecord

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_PATH = ROOT / "data" / "bench.sqlite"
FLUSH_S = 0.5
STALE_HEARTBEAT_S = 30.0
STATUSES = ("running", "finished", "cancelled", "failed", "crashed")

_REQUEST_TYPES = {
    "seq": "INTEGER", "warmup": "INTEGER", "worker": "INTEGER", "prompt": "INTEGER", "chunks": "INTEGER",
    "output_tokens": "INTEGER", "prompt_tokens": "INTEGER", "total_tokens": "INTEGER", "ok": "INTEGER",
    "http_status": "INTEGER", "attempts": "INTEGER", "retries": "INTEGER", "malformed": "INTEGER", "itl_ms": "BLOB",
    "output_tokens_source": "TEXT", "currency": "TEXT", "error_class": "TEXT", "error_code": "TEXT",
    "error_phase": "TEXT", "error_message": "TEXT",
}
_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY, name TEXT, group_id TEXT, group_kind TEXT, level REAL, status TEXT NOT NULL,
    target TEXT, base_url TEXT, app TEXT, mode TEXT, description TEXT,
    created_at REAL, finished_at REAL, config TEXT, environment TEXT, summary TEXT, selfcheck TEXT,
    error TEXT, pid INTEGER, host TEXT, heartbeat REAL
);
CREATE INDEX IF NOT EXISTS runs_group ON runs(group_id);
CREATE TABLE IF NOT EXISTS requests (
    run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    {", ".join(f"{c} {_REQUEST_TYPES.get(c, 'REAL')}" for c in COLUMNS)},
    PRIMARY KEY (run_id, seq)
) WITHOUT ROWID;
"""
_JSON_FIELDS = ("config", "environment", "summary", "selfcheck")
_INSERT = f"INSERT OR REPLACE INTO requests (run_id, {', '.join(COLUMNS)}) VALUES ({', '.join('?' * (len(COLUMNS) + 1))})"


class StoreError(RuntimeError):
    """The run store cannot be opened or written (a folder given for the file, no permission, not SQLite)."""


def default_path() -> Path:
    return Path(os.environ.get("BENCH_DB") or DEFAULT_PATH)


@dataclass
class RunInfo:
    """A run's row: metadata, and config/environment/summary/selfcheck as dicts."""

    id: str
    name: str
    status: str
    target: str
    base_url: str
    app: str | None
    mode: str | None
    description: str
    created_at: float
    finished_at: float | None
    group_id: str | None
    group_kind: str | None
    level: float | None
    config: dict[str, Any]
    environment: dict[str, Any]
    summary: dict[str, Any] | None
    selfcheck: dict[str, Any] | None
    error: str | None

    @property
    def label(self) -> str:
        """A short name for charts and tables: the name, else target + load."""
        return self.name or f"{self.target} · {self.description}".strip(" ·") or self.id


class BenchStore:
    """One SQLite file. Each method opens its own short connection, so a store is safe to share
    between threads (the page's script threads, the engine's writer)."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else default_path()
        if self.path.is_dir():
            raise StoreError(f"the run store {self.path} is a folder: give a file path, e.g. {self.path / 'bench.sqlite'}")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            _private(self.path)
            with self._connect() as db:
                db.executescript(_SCHEMA)
                _add_new_columns(db)
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot open the run store {self.path}: {exc}") from None

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=30.0)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("PRAGMA foreign_keys=ON")
        return db

    def __repr__(self) -> str:
        return f"BenchStore({str(self.path)!r})"

    # -- writing ------------------------------------------------------------------------------------------

    def create_run(self, run_id: str, *, config: dict[str, Any], environment: dict[str, Any], name: str = "",
                   target: str = "", base_url: str = "", app: str | None = None, mode: str | None = None,
                   description: str = "", group_id: str | None = None, group_kind: str | None = None,
                   level: float | None = None) -> None:
        now = time.time()
        with self._connect() as db:
            db.execute(
                "INSERT INTO runs (id, name, group_id, group_kind, level, status, target, base_url, app, mode, description,"
                " created_at, config, environment, pid, host, heartbeat) VALUES (?, ?, ?, ?, ?, 'running', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (run_id, name, group_id, group_kind, level, target, base_url, app, mode, description, now,
                 _dumps(config), _dumps(environment), os.getpid(), socket.gethostname(), now),
            )

    def update_run(self, run_id: str, **fields: Any) -> None:
        """Set columns of a run (JSON fields given as dicts)."""
        if not fields:
            return
        values = [_dumps(v) if k in _JSON_FIELDS else v for k, v in fields.items()]
        with self._connect() as db:
            db.execute(f"UPDATE runs SET {', '.join(f'{k} = ?' for k in fields)} WHERE id = ?", (*values, run_id))

    def finish_run(self, run_id: str, status: str, *, summary: dict[str, Any] | None = None,
                   selfcheck: dict[str, Any] | None = None, error: str | None = None) -> None:
        if status not in STATUSES:
            raise ValueError(f"unknown status {status!r}")
        self.update_run(run_id, status=status, summary=summary, selfcheck=selfcheck, error=error, finished_at=time.time())

    def writer(self, run_id: str) -> RunWriter:
        return RunWriter(self, run_id)

    def add_requests(self, run_id: str, records: Iterable[RequestRecord | dict[str, Any]]) -> int:
        """Write rows now (the Locust master and imports use this; the engine uses a RunWriter)."""
        rows = [_row(run_id, r) for r in records]
        with self._connect() as db:
            db.executemany(_INSERT, rows)
        return len(rows)

    def delete_run(self, run_id: str) -> bool:
        with self._connect() as db:
            db.execute("DELETE FROM requests WHERE run_id = ?", (run_id,))
            return db.execute("DELETE FROM runs WHERE id = ?", (run_id,)).rowcount > 0

    # -- reading ------------------------------------------------------------------------------------------

    def runs(self, *, group_id: str | None = None, limit: int | None = None) -> list[RunInfo]:
        """Runs, newest first (a group's runs in the order they ran). Marks dead `running` runs crashed."""
        sql = "SELECT * FROM runs"
        args: list[Any] = []
        if group_id is not None:
            sql += " WHERE group_id = ? ORDER BY created_at"
            args.append(group_id)
        else:
            sql += " ORDER BY created_at DESC"
        if limit:
            sql += f" LIMIT {int(limit)}"
        with self._connect() as db:
            db.row_factory = sqlite3.Row
            rows = db.execute(sql, args).fetchall()
        return [self._info(r) for r in rows]

    def get(self, run_id: str) -> RunInfo:
        """A run by id, or by a unique prefix of its id. Raises KeyError if none or ambiguous."""
        with self._connect() as db:
            db.row_factory = sqlite3.Row
            rows = db.execute("SELECT * FROM runs WHERE id = ? OR id LIKE ? LIMIT 2", (run_id, run_id + "%")).fetchall()
        exact = [r for r in rows if r["id"] == run_id]
        if exact:
            return self._info(exact[0])
        if len(rows) != 1:
            raise KeyError(f"no run {run_id!r}" if not rows else f"{run_id!r} matches several runs: give more of the id")
        return self._info(rows[0])

    def requests(self, run_ids: str | Sequence[str], *, label: bool = False, last: int | None = None) -> pd.DataFrame:
        """Per-request rows of one or more runs, in order (`run_id` column first; `run` = the run's
        label when `label`; only the `last` rows by seq of each run when given, for live views).
        `itl_ms` is decoded to a list per row."""
        ids = [run_ids] if isinstance(run_ids, str) else list(run_ids)
        if not ids:
            return _empty_frame()
        marks = ", ".join("?" * len(ids))
        sql = f"SELECT * FROM requests WHERE run_id IN ({marks})"
        params: list[Any] = list(ids)
        if last is not None:
            sql = (f"SELECT * FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY run_id ORDER BY seq DESC) AS _n FROM requests "
                   f"WHERE run_id IN ({marks})) WHERE _n <= ?")
            params.append(int(last))
        with self._connect() as db:
            frame = pd.read_sql_query(sql + " ORDER BY run_id, seq", db, params=params)
        frame = frame.drop(columns="_n", errors="ignore")
        if frame.empty:
            return _empty_frame()
        frame["itl_ms"] = [np.frombuffer(x, dtype="<f8").tolist() if x else [] for x in frame["itl_ms"]]
        for c in ("warmup", "ok"):
            frame[c] = frame[c].astype(bool)
        order = {rid: i for i, rid in enumerate(ids)}
        frame = frame.sort_values(["run_id", "seq"], key=lambda s: s.map(order) if s.name == "run_id" else s, kind="stable")
        if label:
            frame.insert(1, "run", frame["run_id"].map(self.labels(ids)))
        return frame.reset_index(drop=True)

    def labels(self, run_ids: Sequence[str]) -> dict[str, str]:
        """Each run's label for charts and tables, made unique by the end of its id where two agree."""
        infos = {rid: self.get(rid) for rid in run_ids}
        plain = {rid: i.label for rid, i in infos.items()}
        seen: dict[str, int] = {}
        for v in plain.values():
            seen[v] = seen.get(v, 0) + 1
        return {rid: (v if seen[v] == 1 else f"{v} [{infos[rid].id[-6:]}]") for rid, v in plain.items()}

    def request_count(self, run_id: str) -> int:
        with self._connect() as db:
            return int(db.execute("SELECT COUNT(*) FROM requests WHERE run_id = ?", (run_id,)).fetchone()[0])

    def summary(self, run_id: str) -> dict[str, Any]:
        """The saved summary, or one computed from the rows (a running or crashed run)."""
        from .stats import summarize
        from .config import Threshold

        info = self.get(run_id)
        if info.summary is not None:
            return info.summary
        thresholds = [Threshold.model_validate(t) for t in info.config.get("slo", [])]
        return summarize(self.requests(info.id), thresholds, streaming=info.config.get("mode", "streaming") != "blocking",
                         load=info.config.get("load"))

    def _info(self, r: sqlite3.Row) -> RunInfo:
        status, error = r["status"], r["error"]
        if status == "running" and self._dead(r):
            status, error = "crashed", error or "the process running it stopped before it finished"
            self.update_run(r["id"], status=status, error=error)
        return RunInfo(
            id=r["id"], name=r["name"] or "", status=status, target=r["target"] or "", base_url=r["base_url"] or "",
            app=r["app"], mode=r["mode"], description=r["description"] or "", created_at=r["created_at"],
            finished_at=r["finished_at"], group_id=r["group_id"], group_kind=r["group_kind"], level=r["level"],
            config=mask_config(_loads(r["config"]) or {}), environment=_loads(r["environment"]) or {},
            summary=_loads(r["summary"]), selfcheck=_loads(r["selfcheck"]), error=error,
        )

    @staticmethod
    def _dead(r: sqlite3.Row) -> bool:
        if r["host"] == socket.gethostname() and r["pid"]:
            try:
                os.kill(int(r["pid"]), 0)
            except ProcessLookupError:
                return True
            except PermissionError:
                pass
        return r["heartbeat"] is not None and time.time() - r["heartbeat"] > STALE_HEARTBEAT_S


class RunWriter:
    """Writes a run's records from a thread of its own, in batches; the engine only appends.

    `add` is called from the event loop: a deque append, no I/O. The thread commits whatever has
    arrived every FLUSH_S and refreshes the run's heartbeat. `close` writes the rest and joins.
    """

    def __init__(self, store: BenchStore, run_id: str, flush_s: float = FLUSH_S) -> None:
        self.store, self.run_id, self.flush_s = store, run_id, flush_s
        self._queue: collections.deque[RequestRecord] = collections.deque()
        self._stop = threading.Event()
        self.written = 0
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._loop, name=f"bench-writer-{run_id}", daemon=True)
        self._thread.start()

    def add(self, record: RequestRecord) -> None:
        self._queue.append(record)

    def _loop(self) -> None:
        db = self.store._connect()
        try:
            while not self._stop.wait(self.flush_s):
                self._flush(db)
            self._flush(db)
        except BaseException as exc:  # the disk is full, the file was deleted: the run reports it
            self.error = exc
        finally:
            db.close()

    def _flush(self, db: sqlite3.Connection) -> None:
        q = self._queue
        rows = []
        while q:
            rows.append(_row(self.run_id, q.popleft()))
        with db:
            if rows:
                db.executemany(_INSERT, rows)
            db.execute("UPDATE runs SET heartbeat = ? WHERE id = ?", (time.time(), self.run_id))
        self.written += len(rows)

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        if self.error is not None:
            raise RuntimeError(f"writing the run's rows to {self.store.path} failed: {self.error}") from self.error


def _add_new_columns(db: sqlite3.Connection) -> None:
    """A store written by an older version lacks the newer per-request columns: add them (empty for old rows)."""
    have = {row[1] for row in db.execute("PRAGMA table_info(requests)")}
    for c in COLUMNS:
        if c not in have:
            db.execute(f"ALTER TABLE requests ADD COLUMN {c} {_REQUEST_TYPES.get(c, 'REAL')}")


def _private(path: Path) -> None:
    """Create the store file readable by its owner only (0600): its runs name targets and their settings.
    SQLite gives its -wal and -shm files the database file's mode. An existing file of ours is tightened."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except IsADirectoryError:
        raise StoreError(f"the run store {path} is a folder: give a file path") from None
    try:
        st = os.fstat(fd)
        if st.st_uid == os.getuid() and st.st_mode & 0o077:
            os.fchmod(fd, 0o600)
    finally:
        os.close(fd)


def _row(run_id: str, r: RequestRecord | dict[str, Any]) -> tuple[Any, ...]:
    d = r if isinstance(r, dict) else None
    values = []
    for c in COLUMNS:
        v = d.get(c) if d is not None else getattr(r, c)
        if c == "itl_ms":  # little-endian float64s: compact, exact, and no JSON on the writer's path
            v = array("d", v or ()).tobytes() if sys.byteorder == "little" else np.asarray(v or (), dtype="<f8").tobytes()
        elif isinstance(v, bool):
            v = int(v)
        values.append(v)
    return (run_id, *values)


def _empty_frame() -> pd.DataFrame:
    return pd.DataFrame({"run_id": pd.Series(dtype=str), **{c: pd.Series(dtype=object) for c in COLUMNS}})


def _dumps(v: Any) -> str | None:
    return None if v is None else orjson.dumps(v, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS).decode()


def _loads(v: str | None) -> Any:
    return None if v is None else orjson.loads(v)
