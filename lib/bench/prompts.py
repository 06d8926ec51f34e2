"""Where a run's requests come from: one query, a list, or a CSV/JSONL file whose columns fill `inputs`.

File formats:
- CSV: a header row; the column `query` (if any) is the query, every other column is an input
  variable (empty cells are left out).
- JSONL: one object a line: `{"query": "...", "inputs": {...}}`, or flat `{"query": "...", "topic": "..."}`
  whose other keys are inputs.

`fill_required` gives completion and workflow apps what their form requires when the prompts do not
(the query text for a text field, the default or first option otherwise), so `--query` alone works
for every app mode. `PromptOrder` hands the prompts out in a seeded, reproducible order.
"""
from __future__ import annotations

import csv
import io
import json
import random
from pathlib import Path
from typing import Any, Iterable

from .config import DEFAULT_QUERY, Prompt


class PromptError(ValueError):
    """The prompts could not be read; the message says what is wrong and where."""


def from_query(query: str | None) -> list[Prompt]:
    return [Prompt(query=query or DEFAULT_QUERY)]


def from_list(queries: Iterable[str]) -> list[Prompt]:
    prompts = [Prompt(query=q.strip()) for q in queries if q and q.strip()]
    if not prompts:
        raise PromptError("the prompt list is empty")
    return prompts


def from_file(path: str | Path) -> list[Prompt]:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise PromptError(f"cannot read prompts file {path}: {exc.strerror or exc}") from None
    return from_text(text, path.name)


def from_text(text: str, name: str) -> list[Prompt]:
    """Parse a CSV or JSONL document (chosen by the file name's extension, else by its first character)."""
    lower = name.lower()
    is_jsonl = lower.endswith((".jsonl", ".ndjson", ".json")) or (not lower.endswith(".csv") and text.lstrip().startswith("{"))
    prompts = _jsonl(text, name) if is_jsonl else _csv(text, name)
    if not prompts:
        raise PromptError(f"{name} holds no prompts")
    return prompts


def _csv(text: str, name: str) -> list[Prompt]:
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames:
        raise PromptError(f"{name}: a CSV needs a header row (a `query` column and/or input variable names)")
    out = []
    for row in reader:
        query = (row.pop("query", None) or "").strip() or None
        inputs = {k.strip(): v for k, v in row.items() if k and v not in (None, "")}
        if query or inputs:
            out.append(Prompt(query=query, inputs=inputs))
    return out


def _jsonl(text: str, name: str) -> list[Prompt]:
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise PromptError(f"{name} line {n}: not JSON ({exc.msg})") from None
        if not isinstance(obj, dict):
            raise PromptError(f"{name} line {n}: each line must be a JSON object")
        query = obj.pop("query", None)
        inputs = obj.pop("inputs", None)
        if inputs is None:
            inputs = obj
        elif not isinstance(inputs, dict):
            raise PromptError(f"{name} line {n}: `inputs` must be an object")
        out.append(Prompt(query=str(query) if query is not None else None, inputs=dict(inputs)))
    return out


# Short common English words: each is one token in the usual BPE vocabularies, so a prompt of N of
# them is about N input tokens (a tokenizer-free estimate: the run's prompt_tokens say the truth).
_WORDS = ("time year people way day man thing woman life child world school state family student group country "
          "problem hand part place case week company system program question work government number night point "
          "home water room mother area money story fact month lot right study book eye job word business issue "
          "side kind head house service friend father power hour game line end member law car city community name "
          "team minute idea kid body back parent face others level office door health person art war history party "
          "result change morning reason research girl guy moment air teacher force education").split()


def parse_spread(text: str, what: str) -> tuple[float, float]:
    """`MEAN` or `MEAN:STD` (words), both >= 0, mean >= 1."""
    mean, _, std = text.partition(":")
    try:
        m, s = float(mean), float(std or 0)
    except ValueError:
        raise PromptError(f"{what} reads MEAN or MEAN:STD (words), e.g. 200:50; got {text!r}") from None
    if m < 1 or s < 0:
        raise PromptError(f"{what}: the mean must be at least 1 word and the spread not negative; got {text!r}")
    return m, s


def synthetic(n: int, input_words: tuple[float, float], output_words: tuple[float, float] | None = None,
              seed: int = 0) -> list[Prompt]:
    """`n` generated prompts whose lengths follow a normal distribution (mean, std; at least 1 word),
    seeded. `output_words` asks for answers of about that many words ("Reply in about N words."):
    the Service API takes no max-tokens, so the model's instructions are the only lever."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        length = max(1, round(rng.gauss(*input_words))) if input_words[1] else max(1, round(input_words[0]))
        text = " ".join(rng.choice(_WORDS) for _ in range(length))
        if output_words is not None:
            want = max(1, round(rng.gauss(*output_words))) if output_words[1] else max(1, round(output_words[0]))
            text = f"Reply in about {want} words. {text}"
        out.append(Prompt(query=text))
    return out


def read_trace(path: str | Path, unit: str = "s") -> list[float]:
    """Arrival offsets (s, from the first) from a file: one number a line (`#` comments), a CSV with a
    `timestamp`/`time`/`t`/`offset` column, or JSONL objects with such a key. `unit` "ms" for
    milliseconds (e.g. Mooncake traces). Numbers may be absolute (epoch): only the gaps matter."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise PromptError(f"cannot read trace file {path}: {exc.strerror or exc}") from None
    scale = {"s": 1.0, "ms": 0.001}.get(unit)
    if scale is None:
        raise PromptError(f"the trace unit is s or ms, not {unit!r}")
    keys = ("timestamp", "time", "t", "offset", "arrival")
    values: list[float] = []
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    if lines and lines[0].lstrip().startswith("{"):
        for n, line in enumerate(lines, 1):
            try:
                obj = json.loads(line)
                key = next(k for k in keys if k in obj)
                values.append(float(obj[key]))
            except (json.JSONDecodeError, StopIteration, TypeError, ValueError):
                raise PromptError(f"{path.name} line {n}: a JSON object with a number under one of {', '.join(keys)}") from None
    elif lines and any(c.isalpha() for c in lines[0]):
        reader = csv.DictReader(io.StringIO("\n".join(lines)))
        key = next((k for k in (reader.fieldnames or []) if k.strip().lower() in keys), None)
        if key is None:
            raise PromptError(f"{path.name}: the CSV needs a column named one of {', '.join(keys)}")
        for n, row in enumerate(reader, 2):
            try:
                values.append(float(row[key]))
            except (TypeError, ValueError):
                raise PromptError(f"{path.name} row {n}: {row.get(key)!r} is not a number") from None
    else:
        for n, line in enumerate(lines, 1):
            try:
                values.append(float(line.split(",")[0]))
            except ValueError:
                raise PromptError(f"{path.name} line {n}: {line.strip()!r} is not a number of seconds") from None
    if not values:
        raise PromptError(f"{path.name} holds no arrival times")
    first = min(values)
    return sorted((v - first) * scale for v in values)


def fill_required(prompts: list[Prompt], fields: list[dict[str, Any]], base_inputs: dict[str, Any]) -> list[Prompt]:
    """Each prompt with `base_inputs` under its own inputs, and every required form field given a
    value: the query text for a text field, else the field's default, else its first option."""
    out = []
    for p in prompts:
        inputs = {**base_inputs, **p.inputs}
        for f in fields:
            var = f.get("variable")
            if not var or not f.get("required") or inputs.get(var) not in (None, ""):
                continue
            control = f.get("control", "")
            if control in ("text-input", "paragraph") and (p.query or DEFAULT_QUERY):
                inputs[var] = p.query or DEFAULT_QUERY
            elif f.get("default") not in (None, ""):
                inputs[var] = f["default"]
            elif f.get("options"):
                inputs[var] = f["options"][0]
            elif control == "number":
                inputs[var] = 1
        out.append(Prompt(query=p.query, inputs=inputs))
    return out


class PromptOrder:
    """Prompt indexes in a seeded order: a permutation of all prompts, then another, and so on
    (each prompt used equally often); `shuffle=False` cycles them in file order."""

    def __init__(self, n: int, seed: int, shuffle: bool = True) -> None:
        self._n = n
        self._rng = random.Random(seed)
        self._shuffle = shuffle
        self._batch: list[int] = []
        self._pos = 0

    def next(self) -> int:
        if self._pos >= len(self._batch):
            self._batch = list(range(self._n))
            if self._shuffle:
                self._rng.shuffle(self._batch)
            self._pos = 0
        i = self._batch[self._pos]
        self._pos += 1
        return i
