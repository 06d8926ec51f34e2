"""Where a run's requests come from: one query, a list, or a CSV/JSONL file whose columns fill `inputs`.

Files are read by lib.workload (the reader the Playground batch uses too): a CSV's `query` column is the
query and every other column an input (empty cells left out); JSONL is `{"query": "...", "inputs": {...}}`
or flat `{"query": "...", "topic": "..."}` whose other keys are inputs.

`fill_required` gives completion and workflow apps what their form requires when the prompts do not
(the query text for a text field, the default or first option otherwise), so `--query` alone works
for every app mode. `PromptOrder` hands the prompts out in a seeded, reproducible order.
"""
from __future__ import annotations

import csv
import io
import json
import random
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from lib import workload as W

from .config import DEFAULT_QUERY, Prompt


class PromptError(W.WorkloadFileError):
    """The prompts could not be read; the message says what is wrong and where (a file's: WorkloadFileError)."""


def from_query(query: str | None) -> list[Prompt]:
    return [Prompt(query=query or DEFAULT_QUERY)]


def from_list(queries: Iterable[str]) -> list[Prompt]:
    prompts = [Prompt(query=q.strip()) for q in queries if q and q.strip()]
    if not prompts:
        raise PromptError("the prompt list is empty")
    return prompts


def from_file(path: str | Path) -> list[Prompt]:
    return _prompts(W.read_path(path))


def from_text(text: str, name: str) -> list[Prompt]:
    """Parse a CSV or JSONL document (chosen by the file name's extension, else by its first character)."""
    return _prompts(W.read_table(name, text.encode("utf-8")))


def from_bytes(data: bytes, name: str) -> list[Prompt]:
    """An uploaded file's prompts (lib.workload decodes it: UTF-8, a BOM dropped, else a sentence)."""
    return _prompts(W.read_table(name, data))


def _prompts(table: W.Table) -> list[Prompt]:
    return [Prompt(query=c.query, inputs=c.inputs) for c in W.cases(table)]


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
        data = path.read_bytes()
    except OSError as exc:
        raise PromptError(f"cannot read trace file {path}: {exc.strerror or exc}") from None
    text = W.decode(path.name, data)
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
        column = next((k for k in (reader.fieldnames or []) if k.strip().lower() in keys), None)
        if column is None:
            raise PromptError(f"{path.name}: the CSV needs a column named one of {', '.join(keys)}")
        for n, row in enumerate(reader, 2):
            try:
                values.append(float(row[column]))
            except (TypeError, ValueError):
                raise PromptError(f"{path.name} row {n}: {row.get(column)!r} is not a number") from None
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
    """Each prompt with `base_inputs` under its own inputs and every required form field given a value
    (lib.workload.placeholder: the query text for a text field, else the default, first option, ...)."""
    return [Prompt(query=p.query, inputs=W.fill_required(fields, p.inputs, p.query or DEFAULT_QUERY, base_inputs))
            for p in prompts]


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
