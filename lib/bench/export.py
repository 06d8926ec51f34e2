"""A run out of the store, as CSV (per-request rows), JSON (everything) or Parquet (rows + metadata).

The API key is never in a run, so never in an export. In CSV the inter-chunk gaps (`itl_ms`) are a
JSON list in one column; in Parquet a list<double> column, with the run's metadata (config,
environment, summary) as JSON under the schema metadata key `bench_run`.
"""
from __future__ import annotations

import io
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd

from .store import BenchStore

FORMATS = ("csv", "json", "parquet")
MIME = {"csv": "text/csv", "json": "application/json", "parquet": "application/vnd.apache.parquet"}


def run_document(store: BenchStore, run_id: str) -> dict[str, Any]:
    """The whole run as one JSON-ready dict: metadata, config, environment, summary, self-check, rows."""
    info = store.get(run_id)
    rows = store.requests(info.id)
    meta = asdict(info)
    meta["summary"] = info.summary if info.summary is not None else store.summary(info.id)
    meta["requests"] = _records(rows)
    return meta


def export_bytes(store: BenchStore, run_id: str, fmt: str) -> bytes:
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    info = store.get(run_id)
    if fmt == "json":
        return orjson.dumps(run_document(store, info.id), option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY)
    rows = store.requests(info.id)
    if fmt == "csv":
        out = rows.copy()
        out["itl_ms"] = [orjson.dumps(np.round(np.asarray(x, dtype=float), 3).tolist()).decode() for x in out["itl_ms"]]
        return out.to_csv(index=False).encode()
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(rows, preserve_index=False)
    meta = {k: v for k, v in run_document(store, info.id).items() if k != "requests"}
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), b"bench_run": orjson.dumps(meta)})
    buf = io.BytesIO()
    pq.write_table(table, buf)
    return buf.getvalue()


def export_run(store: BenchStore, run_id: str, fmt: str, path: str | Path | None = None) -> Path:
    """Write the export to `path` (default: `<run id>.<fmt>` in the current folder)."""
    info = store.get(run_id)
    target = Path(path) if path else Path(f"{info.id}.{fmt}")
    target.write_bytes(export_bytes(store, info.id, fmt))
    return target


def read_parquet_run(path: str | Path) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The rows and the run's metadata back from a Parquet export."""
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    meta = orjson.loads((table.schema.metadata or {}).get(b"bench_run", b"{}"))
    return table.to_pandas(), meta


def _records(rows: pd.DataFrame) -> list[dict[str, Any]]:
    out = []
    for rec in rows.to_dict(orient="records"):
        out.append({k: (np.round(v.astype(float), 3).tolist() if isinstance(v, np.ndarray) else None if _isnan(v) else v)
                    for k, v in rec.items()})
    return out


def _isnan(v: Any) -> bool:
    return isinstance(v, float) and v != v
