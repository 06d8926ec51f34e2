"""Workload input, one reader for every caller: the Playground batch, the benchmark CLI and page, and Locust.

- `read_table` / `read_path`: a CSV (header row; `,`, `;` or tab), TSV, JSONL (one object a line) or JSON
  (an array of objects) as rows of column -> value. UTF-8, with or without a BOM; anything else, and every
  other bad file, is a WorkloadFileError whose message is the sentence to show.
- `cases`: a table as (query, inputs) cases: the `query` column is the query and every other column an
  input (empty cells left out); a JSONL row `{"query": "...", "inputs": {...}}` keeps its nested inputs.
- `fill_required`: inputs for every required field of the app's form (`/parameters` user_input_form,
  flattened by `Parameters.input_fields()`) that a case leaves empty, so one query works for any app.
"""
from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

CSV_SUFFIXES = (".csv", ".tsv", ".txt")
JSONL_SUFFIXES = (".jsonl", ".ndjson")
SPREADSHEET_SUFFIXES = (".xlsx", ".xls", ".xlsm", ".ods", ".numbers")
TEXT_CONTROLS = frozenset({"text-input", "paragraph"})


class WorkloadFileError(ValueError):
    """A workload file could not be read; str() says which file, where and what to do."""


@dataclass
class Table:
    columns: list[str]  # every column or key, in the order first seen
    rows: list[dict[str, Any]]
    name: str = ""  # the file's, for sentences

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows, columns=self.columns)

    def flat(self) -> Table:
        """The table with nested `inputs` (JSONL) as columns of their own."""
        return _table(self.name, [flat(r) for r in self.rows])


@dataclass
class Case:
    query: str | None
    inputs: dict[str, Any] = field(default_factory=dict)


def decode(name: str, data: bytes) -> str:
    """The text of a file's bytes: UTF-8, a BOM (as Excel writes it) dropped."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise WorkloadFileError(f"The file {name} is not UTF-8 text ({exc.reason} at byte {exc.start}): "
                                "save it as UTF-8 (CSV or JSONL) and try again.") from None


def read_path(path: str | Path, *, max_rows: int | None = None) -> Table:
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise WorkloadFileError(f"Cannot read the file {path}: {exc.strerror or exc}.") from None
    return read_table(path.name, data, max_rows=max_rows)


def read_table(name: str, data: bytes, *, max_rows: int | None = None) -> Table:
    """The rows of a file, its format chosen by the name's suffix (else by its first character)."""
    lower = name.lower()
    if lower.endswith(SPREADSHEET_SUFFIXES):
        raise WorkloadFileError(f"{name} is a spreadsheet: save it as a .csv (or write a .jsonl) and use that.")
    text = decode(name, data)
    start = text.lstrip()[:1]
    if lower.endswith(JSONL_SUFFIXES):
        rows = _jsonl_rows(name, text)
    elif lower.endswith(".json"):  # an array of objects, or JSONL under a .json name
        rows = _json_rows(name, text) if start == "[" else _jsonl_rows(name, text)
    elif lower.endswith(CSV_SUFFIXES):
        rows = _csv_rows(name, text, "\t" if lower.endswith(".tsv") else None)
    else:  # no known suffix (a CLI path such as `prompts`): look at the text
        rows = _jsonl_rows(name, text) if start == "{" else _json_rows(name, text) if start == "[" else _csv_rows(name, text, None)
    if not rows:
        raise WorkloadFileError(f"{name} has no rows.")
    if max_rows is not None and len(rows) > max_rows:
        raise WorkloadFileError(f"{name} has {len(rows)} rows; at most {max_rows} are taken.")
    return _table(name, rows)


def _table(name: str, rows: list[dict[str, Any]]) -> Table:
    columns: list[str] = []
    for row in rows:
        columns += [c for c in row if c not in columns]
    return Table(columns, rows, name)


def _csv_rows(name: str, text: str, delimiter: str | None) -> list[dict[str, Any]]:
    if delimiter is None:
        # Sniffed on the header line only (the header names the columns, so it holds the delimiters): a
        # `;` or `,` in the text of a one-column file is then not taken for one. A header with none is one
        # column: a unit separator, which text does not hold, keeps each line whole (quotes still parse).
        try:
            delimiter = csv.Sniffer().sniff(text.split("\n", 1)[0], delimiters=",;\t").delimiter
        except csv.Error:
            delimiter = "\x1f"
    reader = csv.DictReader(io.StringIO(text), delimiter=delimiter)
    if not reader.fieldnames or not any(f and f.strip() for f in reader.fieldnames):
        raise WorkloadFileError(f"{name} has no header row: its first line must name the columns (e.g. query,topic).")
    rows = []
    for row in reader:
        if row.get(None):  # type: ignore[call-overload,unused-ignore]  # DictReader's restkey: cells past the header's columns
            raise WorkloadFileError(f"{name}, line {reader.line_num}: more cells than the header has columns; "
                                    "put a cell that holds the delimiter in double quotes.")
        clean = {str(k).strip(): (v if v is not None else "") for k, v in row.items() if k is not None and str(k).strip()}
        if any(str(v).strip() for v in clean.values()):  # skip blank lines
            rows.append(clean)
    return rows


def _jsonl_rows(name: str, text: str) -> list[dict[str, Any]]:
    rows = []
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except ValueError as exc:
            raise WorkloadFileError(f"{name}, line {n}: not valid JSON ({getattr(exc, 'msg', exc)}).") from None
        if not isinstance(obj, dict):
            raise WorkloadFileError(f"{name}, line {n}: each line must be a JSON object like {{\"query\": \"...\"}}.")
        if "inputs" in obj and not isinstance(obj["inputs"], dict):
            raise WorkloadFileError(f"{name}, line {n}: `inputs` must be an object like {{\"topic\": \"rivers\"}}.")
        rows.append(obj)
    return rows


def _json_rows(name: str, text: str) -> list[dict[str, Any]]:
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise WorkloadFileError(f"{name}: not valid JSON ({getattr(exc, 'msg', exc)}).") from None
    if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
        raise WorkloadFileError(f"{name}: a .json file must be an array of objects; or use JSONL, one object a line.")
    return data


def flat(row: Mapping[str, Any]) -> dict[str, Any]:
    """A row with nested `inputs` as columns of their own (the row's own keys win on a clash)."""
    nested = row.get("inputs")
    if not isinstance(nested, dict):
        return dict(row)
    return {**nested, **{k: v for k, v in row.items() if k != "inputs"}}


def cases(table: Table) -> list[Case]:
    """The `query` column as the query, the other columns (or the nested `inputs`) as inputs; empty cells
    are left out and rows with neither are skipped."""
    out = []
    for row in table.rows:
        row = dict(row)
        query = row.pop("query", None)
        nested = row.pop("inputs", None)
        inputs = nested if isinstance(nested, dict) else row
        inputs = {k: v for k, v in inputs.items() if v not in (None, "")}
        query = str(query).strip() if query is not None else ""
        if query or inputs:
            out.append(Case(query=query or None, inputs=dict(inputs)))
    if not out:
        raise WorkloadFileError(f"{table.name or 'The file'} has no row with a query or an input value.")
    return out


def placeholder(spec: Mapping[str, Any], query: str) -> Any:
    """A value for a required field no case fills: the query for text, else the default, else the first
    option, else a harmless value of the field's type (None: no value fits, e.g. a file)."""
    control = spec.get("control", "")
    if control in TEXT_CONTROLS and query:
        return query
    if spec.get("default") not in (None, ""):
        return spec["default"]
    if spec.get("options"):
        return spec["options"][0]
    return {"number": 1, "checkbox": False, "json_object": {}}.get(control)


def fill_required(fields: Iterable[Mapping[str, Any]], inputs: Mapping[str, Any], query: str,
                  base_inputs: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """`base_inputs` under `inputs`, and every required field of `fields` left empty given `placeholder`."""
    out = {**(base_inputs or {}), **inputs}
    for spec in fields:
        var = spec.get("variable")
        if not var or not spec.get("required") or out.get(var) not in (None, ""):
            continue
        value = placeholder(spec, query)
        if value is not None:
            out[var] = value
    return out
