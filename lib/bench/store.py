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
import socket
import sqlite3
import sys
import threading
import time
from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
    "error_phase": "TEXT", "error_message": "TEXT", "waterfall": "TEXT",
}
_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY, name TEXT, group_id TEXT, group_kind TEXT, level REAL, status TEXT NOT NULL,
    target TEXT, base_url TEXT, app TEXT, mode TEXT, description TEXT,
    created_at REAL, finished_at REAL, config TEXT, environment TEXT, summary TEXT, selfcheck TEXT,
    error TEXT, pid INTEGER, host TEXT, heartbeat REAL, key INTEGER
);
CREATE INDEX IF NOT EXISTS runs_group ON runs(group_id);
CREATE TABLE IF NOT EXISTS request_rows (
    run_key INTEGER NOT NULL,
    {", ".join(f"{c} {_REQUEST_TYPES.get(c, 'REAL')}" for c in COLUMNS)},
    PRIMARY KEY (run_key, seq)
);
"""
# Rows live in a rowid table keyed by the run's small integer `key`, with the inter-chunk gaps as
# float32 (ample for ms): a streaming row takes ~0.7 KB and stays on its page. The first store layout
# (`requests`, WITHOUT ROWID, keyed by the text run id, float64 gaps) pushed rows past ~1 KB onto
# overflow pages, 4.7 KB each; it is converted on open.
PAGE_SIZE = 16384  # new stores: fuller pages for rows of this size
_JSON_FIELDS = ("config", "environment", "summary", "selfcheck")
_INSERT = f"INSERT OR REPLACE INTO request_rows (run_key, {', '.join(COLUMNS)}) VALUES ({', '.join('?' * (len(COLUMNS) + 1))})"
ITL_DTYPE = "<f4"
READ_BATCH = 10_000


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
            with self._connect(fresh=True) as db:
                db.executescript(_SCHEMA)
                _add_new_columns(db)
                _convert_old_rows(db)
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot open the run store {self.path}: {exc}") from None

    def _connect(self, fresh: bool = False) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=30.0)
        if fresh:
            db.execute(f"PRAGMA page_size={PAGE_SIZE}")  # only takes effect on a new, empty file
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
                " created_at, config, environment, pid, host, heartbeat, key) VALUES (?, ?, ?, ?, ?, 'running', ?, ?, ?, ?, ?, ?,"
                " ?, ?, ?, ?, ?, (SELECT COALESCE(MAX(key), 0) + 1 FROM runs))",
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

    def run_key(self, run_id: str) -> int:
        """The run's integer key in the rows table (KeyError when there is no such run)."""
        with self._connect() as db:
            row = db.execute("SELECT key FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            raise KeyError(f"no run {run_id!r}")
        return int(row[0])

    def add_requests(self, run_id: str, records: Iterable[RequestRecord | dict[str, Any]]) -> int:
        """Write rows now (the Locust master and imports use this; the engine uses a RunWriter)."""
        key = self.run_key(run_id)
        rows = [_row(key, r) for r in records]
        with self._connect() as db:
            db.executemany(_INSERT, rows)
        return len(rows)

    def delete_run(self, run_id: str) -> bool:
        with self._connect() as db:
            row = db.execute("SELECT key FROM runs WHERE id = ?", (run_id,)).fetchone()
            if row is not None:
                db.execute("DELETE FROM request_rows WHERE run_key = ?", (row[0],))
            return db.execute("DELETE FROM runs WHERE id = ?", (run_id,)).rowcount > 0

    def checkpoint(self) -> None:
        """Fold the WAL into the database file (its size on disk is then the store's)."""
        with self._connect() as db:
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

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

    def requests(self, run_ids: str | Sequence[str], *, label: bool = False, last: int | None = None,
                 columns: Sequence[str] | None = None, seqs: Sequence[int] | None = None) -> pd.DataFrame:
        """Per-request rows of one or more runs, in order (`run_id` column first; `run` = the run's
        label when `label`; only the `last` rows by seq of each run when given, for live views; only
        `columns` when given, read column-wise: charts need a few of them and no gaps; only the rows
        numbered `seqs` when given, looked up by the primary key: a sample's gaps without reading the rest).
        `itl_ms` is decoded to a float32 array per row."""
        ids = [run_ids] if isinstance(run_ids, str) else list(run_ids)
        wanted = list(COLUMNS) if columns is None else [c for c in COLUMNS if c in set(columns) | {"seq"}]
        unknown = set(columns or ()) - set(COLUMNS) - {"run_id", "run"}
        if unknown:
            raise ValueError(f"no such request columns: {', '.join(sorted(unknown))}")
        frames = []
        with self._connect() as db:
            for rid in ids:
                row = db.execute("SELECT key FROM runs WHERE id = ?", (rid,)).fetchone()
                if row is None:
                    continue
                sql = f"SELECT {', '.join(wanted)} FROM request_rows WHERE run_key = ?"
                args: list[Any] = [row[0]]
                if seqs is not None:
                    sql += " AND seq IN (SELECT value FROM json_each(?))"
                    args.append(orjson.dumps([int(s) for s in seqs]).decode())
                if last is not None:
                    sql = f"SELECT * FROM ({sql} ORDER BY seq DESC LIMIT {int(last)})"
                cur = db.execute(sql + " ORDER BY seq", args)
                while True:  # in pieces: a long run's rows as Python tuples all at once would cost ~1 KB each
                    data = cur.fetchmany(READ_BATCH)
                    if not data:
                        break
                    frame = pd.DataFrame.from_records(data, columns=wanted, coerce_float=True)
                    if "itl_ms" in frame:
                        # float32 as stored (ample for ms; half the memory of a long run's gaps), read-only views
                        frame["itl_ms"] = [np.frombuffer(x, dtype=ITL_DTYPE) if x else np.empty(0, dtype=ITL_DTYPE)
                                           for x in frame["itl_ms"]]
                    frame.insert(0, "run_id", rid)
                    frames.append(frame)
        if not frames:
            return _empty_frame(wanted)
        frame = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
        for c in ("warmup", "ok"):
            if c in frame:
                frame[c] = frame[c].astype(bool)
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

    def has_values(self, run_id: str, column: str) -> bool:
        """Whether any row of the run holds a value in `column` (one query in SQLite, no rows read out)."""
        if column not in COLUMNS:
            raise ValueError(f"no such request column: {column}")
        with self._connect() as db:
            row = db.execute(f"SELECT EXISTS (SELECT 1 FROM request_rows WHERE run_key = (SELECT key FROM runs WHERE id = ?)"
                             f" AND {column} IS NOT NULL)", (run_id,)).fetchone()
        return bool(row[0])

    def request_count(self, run_id: str) -> int:
        with self._connect() as db:
            row = db.execute("SELECT key FROM runs WHERE id = ?", (run_id,)).fetchone()
            if row is None:
                return 0
            return int(db.execute("SELECT COUNT(*) FROM request_rows WHERE run_key = ?", (row[0],)).fetchone()[0])

    def summary(self, run_id: str) -> dict[str, Any]:
        """The saved summary, or one computed from the rows (a running or crashed run)."""
        from .config import Threshold
        from .stats import summarize

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
            self.key = self.store.run_key(self.run_id)
        except BaseException as exc:
            self.error = exc
            db.close()
            return
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
            rows.append(_row(self.key, q.popleft()))
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
    """A store written by an older version lacks the newer columns: add them (empty for old rows), and
    give every run its integer key."""
    if "key" not in {row[1] for row in db.execute("PRAGMA table_info(runs)")}:
        db.execute("ALTER TABLE runs ADD COLUMN key INTEGER")
    db.execute("UPDATE runs SET key = (SELECT COUNT(*) FROM runs r2 WHERE r2.rowid <= runs.rowid) WHERE key IS NULL")
    db.execute("CREATE UNIQUE INDEX IF NOT EXISTS runs_key ON runs(key)")
    have = {row[1] for row in db.execute("PRAGMA table_info(request_rows)")}
    for c in COLUMNS:
        if c not in have:
            db.execute(f"ALTER TABLE request_rows ADD COLUMN {c} {_REQUEST_TYPES.get(c, 'REAL')}")


def _convert_old_rows(db: sqlite3.Connection) -> None:
    """Move the rows of the first layout (`requests`: text run ids, float64 gaps) to `request_rows`, once."""
    if not db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'requests'").fetchone():
        return
    have = [row[1] for row in db.execute("PRAGMA table_info(requests)")]
    cols = [c for c in COLUMNS if c in have]
    keys = dict(db.execute("SELECT id, key FROM runs"))
    cur = db.execute(f"SELECT run_id, {', '.join(cols)} FROM requests")
    insert = f"INSERT OR REPLACE INTO request_rows (run_key, {', '.join(cols)}) VALUES ({', '.join('?' * (len(cols) + 1))})"
    at = cols.index("itl_ms") if "itl_ms" in cols else None
    while True:
        batch = cur.fetchmany(5000)
        if not batch:
            break
        rows = []
        for r in batch:
            if r[0] not in keys:
                continue
            values = list(r[1:])
            if at is not None and values[at]:
                values[at] = np.frombuffer(values[at], dtype="<f8").astype(ITL_DTYPE).tobytes()
            rows.append((keys[r[0]], *values))
        db.executemany(insert, rows)
    db.execute("DROP TABLE requests")


def _private(path: Path) -> None:
    """Create the store file readable by its owner only (0600): its runs name targets and their settings.
    SQLite gives its -wal and -shm files the database file's mode. An existing file of ours is tightened.

    An existing store is never opened here: closing any descriptor of a file drops every POSIX lock this
    process holds on it (SQLite's, held by a run's writer in another thread), and another process (the CLI)
    could then write beside that writer and corrupt the file ("database disk image is malformed", seen with
    the page and the CLI on one store). See sqlite.org/howtocorrupt.html, section 2.2."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        if path.is_dir():
            raise StoreError(f"the run store {path} is a folder: give a file path") from None
        st = path.stat()
        if st.st_uid == os.getuid() and st.st_mode & 0o077:
            os.chmod(path, 0o600)
        return
    except IsADirectoryError:
        raise StoreError(f"the run store {path} is a folder: give a file path") from None
    os.close(fd)


def _row(run_key: int, r: RequestRecord | dict[str, Any]) -> tuple[Any, ...]:
    d = r if isinstance(r, dict) else None
    values = []
    for c in COLUMNS:
        v = d.get(c) if d is not None else getattr(r, c)
        if c == "itl_ms":  # little-endian float32s: compact, ample for ms, and no JSON on the writer's path
            v = array("f", v or ()).tobytes() if sys.byteorder == "little" else np.asarray(v or (), dtype=ITL_DTYPE).tobytes()
        elif isinstance(v, bool):
            v = int(v)
        values.append(v)
    return (run_key, *values)


def _empty_frame(columns: Sequence[str] = COLUMNS) -> pd.DataFrame:
    return pd.DataFrame({"run_id": pd.Series(dtype=str), **{c: pd.Series(dtype=object) for c in columns}})


def _dumps(v: Any) -> str | None:
    return None if v is None else orjson.dumps(v, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS).decode()


def _loads(v: str | None) -> Any:
    return None if v is None else orjson.loads(v)
