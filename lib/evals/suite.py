"""Eval suites: a YAML or JSON file of cases, each with assertions, and defaults for all of them.

    name: Support bot smoke
    defaults:                       # every case gets these (a case's own inputs/headers win, assertions add up)
      inputs: {tone: Formal}
      assert:
        - max-total-ms: 20000
    variants:                       # optional: the whole suite once per variant, its inputs on top
      - {name: formal, inputs: {tone: Formal}}
    cases:
      - id: greeting
        query: Hello
        assert:
          - contains: "Hello"
      - id: follow-up
        turns: ["What is Dify?", "And its API?"]   # one conversation; the case's assertions judge the last turn
        assert: [{max-length: 4000}]

A problem is a SuiteError whose message starts with the file and line: "suite.yaml line 12: cases[1].assert[0]:
unknown assertion 'contain'; known: ...". Lines come from PyYAML's node marks (JSON is read by the same parser,
being YAML, after json.loads has checked its syntax), and pydantic's error locations are walked down the node
tree to the line they point at.
"""
from __future__ import annotations

import difflib
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .assertions import Assertion, AssertionSpecError, parse_assertion

APP_KINDS = ("auto", "chat", "completion", "workflow")


class SuiteError(ValueError):
    """The suite file is unreadable or invalid; `line` (1-based, or None) and `path` say where."""

    def __init__(self, message: str, *, source: str = "suite", line: int | None = None, where: str = "") -> None:
        self.source, self.line, self.where, self.detail = source, line, where, message
        at = f"{source} line {line}" if line else source
        super().__init__(f"{at}: {where + ': ' if where else ''}{message}")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class TurnSpec(_Model):
    query: str
    inputs: dict[str, Any] = Field(default_factory=dict)
    files: list[dict[str, Any]] = Field(default_factory=list)
    assert_: list[Any] = Field(default_factory=list, alias="assert")


class CaseSpec(_Model):
    id: str | None = None
    description: str = ""
    query: str = ""
    inputs: dict[str, Any] = Field(default_factory=dict)
    files: list[dict[str, Any]] = Field(default_factory=list)
    turns: list[TurnSpec | str] = Field(default_factory=list)
    headers: dict[str, str] = Field(default_factory=dict)
    repeats: int | None = Field(default=None, ge=1, le=100)
    tags: list[str] = Field(default_factory=list)
    assert_: list[Any] = Field(default_factory=list, alias="assert")


class DefaultsSpec(_Model):
    inputs: dict[str, Any] = Field(default_factory=dict)
    headers: dict[str, str] = Field(default_factory=dict)
    user: str = "evals"
    repeats: int = Field(default=1, ge=1, le=100)
    timeout: float = Field(default=120.0, gt=0, description="seconds for one answer, retries included")
    app: Literal["auto", "chat", "completion", "workflow"] = "auto"
    judge: str | None = Field(default=None, description="the target that grades `judge` assertions without one")
    assert_: list[Any] = Field(default_factory=list, alias="assert")


class VariantSpec(_Model):
    name: str
    inputs: dict[str, Any] = Field(default_factory=dict)


class SuiteSpec(_Model):
    name: str = ""
    description: str = ""
    defaults: DefaultsSpec = Field(default_factory=DefaultsSpec)
    variants: list[VariantSpec] = Field(default_factory=list)
    cases: list[CaseSpec] = Field(min_length=1)


# -- the parsed suite: what the runner uses ------------------------------------------------------------


@dataclass
class Turn:
    query: str
    inputs: dict[str, Any] = field(default_factory=dict)
    files: list[dict[str, Any]] = field(default_factory=list)
    assertions: list[Assertion] = field(default_factory=list)


@dataclass
class Case:
    id: str
    turns: list[Turn]  # one for a single question; the last turn is judged by `assertions`
    assertions: list[Assertion]
    headers: dict[str, str] = field(default_factory=dict)
    repeats: int = 1
    description: str = ""
    tags: list[str] = field(default_factory=list)

    @property
    def query(self) -> str:
        return self.turns[-1].query


@dataclass
class Variant:
    name: str
    inputs: dict[str, Any] = field(default_factory=dict)


@dataclass
class Suite:
    name: str
    cases: list[Case]
    variants: list[Variant]  # at least one ("default" when the file names none)
    user: str = "evals"
    timeout: float = 120.0
    app: str = "auto"
    description: str = ""
    source: str = "suite"  # the file name, for messages
    base_dir: Path | None = None  # relative `path:` files are read from here
    text: str = ""  # the file as read, stored with a run
    judge: str | None = None

    @property
    def digest(self) -> str:
        """A short hash of the file, to tell whether two runs ran the same suite."""
        return hashlib.sha256(self.text.encode()).hexdigest()[:12]

    def judge_targets(self) -> list[str]:
        names = {a.target for c in self.cases for a in _all_assertions(c) if a.kind == "judge" and a.target}
        return sorted(names)


def _all_assertions(case: Case) -> list[Assertion]:
    return case.assertions + [a for t in case.turns for a in t.assertions]


# -- loading -------------------------------------------------------------------------------------------------


def load_suite(path: str | Path) -> Suite:
    """Read and validate a suite file (.yaml, .yml or .json). Raises SuiteError naming the line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SuiteError("no such file", source=str(path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SuiteError(f"cannot read it ({exc})", source=str(path)) from None
    return parse_suite(text, source=path.name, base_dir=path.parent, json_syntax=path.suffix.lower() == ".json")


def parse_suite(text: str, *, source: str = "suite", base_dir: Path | None = None, json_syntax: bool | None = None) -> Suite:
    """Validate a suite given as text; `json_syntax` None guesses from the first character."""
    if json_syntax is None:
        json_syntax = text.lstrip().startswith("{")
    if json_syntax:
        try:
            json.loads(text)
        except json.JSONDecodeError as exc:
            raise SuiteError(f"not valid JSON: {exc.msg} (column {exc.colno})", source=source, line=exc.lineno) from None
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        raise _yaml_error(exc, source) from None
    except yaml.YAMLError as exc:
        raise SuiteError(f"not valid YAML: {exc}", source=source) from None
    if root is None or not isinstance(data, dict):
        empty = "the file is empty: " if root is None else ""
        raise SuiteError(f"{empty}a suite is a mapping with `cases:` (a list of cases), and optionally name, "
                         "description, defaults, variants (examples/ has some)",
                         source=source, line=root.start_mark.line + 1 if root is not None else None)

    def fail(loc: tuple, message: str, at_key: bool = False) -> SuiteError:
        return SuiteError(message, source=source, line=line_of(root, loc, at_key),
                          where=_dotted(loc[:-1] if at_key else loc))

    try:
        spec = SuiteSpec.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise fail(_clean_loc(first["loc"]), _pydantic_message(first)) from None

    def assertions(raw: list[Any], loc: tuple) -> list[Assertion]:
        out = []
        for i, item in enumerate(raw):
            try:
                out.append(parse_assertion(item))
            except AssertionSpecError as exc:
                inner = (next(iter(item)), *exc.subpath) if isinstance(item, dict) and len(item) == 1 else ()
                raise fail((*loc, "assert", i, *inner), str(exc), at_key=bool(inner) and not exc.subpath) from None
        return out

    def files(items: list[dict[str, Any]], loc: tuple) -> list[dict[str, Any]]:
        for k, f in enumerate(items):
            if "path" not in f:
                if "transfer_method" not in f:
                    raise fail((*loc, "files", k), "a file is {path: FILE} (uploaded first) or Dify's own "
                                                   "{type, transfer_method, url | upload_file_id}")
                continue
            path = Path(str(f["path"]))
            if base_dir is not None and not (path if path.is_absolute() else base_dir / path).is_file():
                raise fail((*loc, "files", k, "path"), f"no file {str(path)!r} (a relative path is read from the suite's folder)")
        return items

    d = spec.defaults
    default_checks = assertions(d.assert_, ("defaults",))
    cases = []
    ids: set[str] = set()
    for i, c in enumerate(spec.cases):
        if c.id is not None:
            if c.id in ids:
                raise fail(("cases", i, "id"), f"two cases have the id {c.id!r}: ids must be unique")
            ids.add(c.id)
        turns: list[Turn] = []
        if c.turns:
            if c.query:
                raise fail(("cases", i, "query"), "give `query` or `turns`, not both (the last turn is the one judged)")
            for j, t in enumerate(c.turns):
                if isinstance(t, str):
                    t = TurnSpec(query=t)
                turn_files = files(t.files, ("cases", i, "turns", j)) if t.files else files(c.files, ("cases", i))
                turns.append(Turn(t.query, {**d.inputs, **c.inputs, **t.inputs}, turn_files,
                                  assertions(t.assert_, ("cases", i, "turns", j))))
        else:
            turns.append(Turn(c.query, {**d.inputs, **c.inputs}, files(c.files, ("cases", i))))
        checks = default_checks + assertions(c.assert_, ("cases", i))
        case = Case(c.id or f"case-{i + 1}", turns, checks, {**d.headers, **c.headers}, c.repeats or d.repeats,
                    c.description, c.tags)
        for a in _all_assertions(case):
            if a.kind == "judge" and not (a.target or d.judge):
                raise fail(("cases", i, "assert"), "a `judge` assertion needs a target: `judge: {target: NAME, rubric: ...}` "
                                                   "or `defaults: {judge: NAME}`")
            if a.kind == "judge" and not a.target:
                a.target = d.judge
        cases.append(case)
    names = [v.name for v in spec.variants]
    if len(set(names)) != len(names):
        raise fail(("variants",), "two variants have the same name")
    variants = [Variant(v.name, v.inputs) for v in spec.variants] or [Variant("default")]
    return Suite(spec.name or Path(source).stem, cases, variants, d.user, d.timeout, d.app, spec.description,
                 source, base_dir, text, d.judge)


# -- line numbers --------------------------------------------------------------------------------------------


def line_of(root: yaml.Node, loc: tuple, at_key: bool = False) -> int:
    """The 1-based line of the node at `loc` (keys and indexes), or of the deepest node on the way there;
    with `at_key`, of the last key itself rather than its value."""
    node = root
    for n, part in enumerate(loc):
        child = None
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if str(key.value) == str(part):
                    last = n == len(loc) - 1
                    child = key if (at_key and last) or (isinstance(value, yaml.ScalarNode) and value.value == "") else value
                    break
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
            child = node.value[part]
        if child is None:
            break
        node = child
    return node.start_mark.line + 1


def _clean_loc(loc: tuple) -> tuple:
    # pydantic adds the union member's name to a location ("turns", 0, "TurnSpec", "query"): not a key in the file.
    return tuple(p for p in loc if not (isinstance(p, str) and (p[:1].isupper() or p in ("str",))))


def _dotted(loc: tuple) -> str:
    out = ""
    for p in loc:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


def _yaml_error(exc: yaml.MarkedYAMLError, source: str) -> SuiteError:
    """PyYAML's complaint with the line to look at: where the problem is, except when the file ended inside
    something (an unclosed quote or bracket), which is where that something began."""
    problem, context = exc.problem_mark, exc.context_mark
    at_end = any(w in (exc.problem or "") for w in ("end of stream", "stream end")) and context is not None
    mark = context if at_end else (problem or context)
    what = exc.problem or ""
    if exc.context:
        began = f" (from line {context.line + 1})" if context is not None and context is not mark else ""
        what = f"{exc.context}{began}, {what}" if what else exc.context
    if at_end:
        what += " (a quote, bracket or brace opened here is never closed)"
    return SuiteError(f"not valid YAML: {what}", source=source, line=mark.line + 1 if mark else None)


# every key a suite may hold, to suggest the one meant when a key is unknown
_KEYS = sorted({f.alias or name for m in (SuiteSpec, DefaultsSpec, CaseSpec, TurnSpec, VariantSpec)
                for name, f in m.model_fields.items()})


def _pydantic_message(error: Any) -> str:  # a pydantic ErrorDetails
    kind, msg = error["type"], error["msg"]
    if kind == "extra_forbidden":
        key = str(error["loc"][-1])
        close = difflib.get_close_matches(key, _KEYS, n=1)
        return f"unknown key {key!r}" + (f" (did you mean {close[0]!r}?)" if close else " (check its spelling)")
    if kind == "missing":
        return f"{error['loc'][-1]!r} is required"
    if kind == "too_short" and error["loc"] == ("cases",):
        return "a suite needs at least one case"
    msg = msg.removeprefix("Value error, ")
    got = error.get("input")
    shown = "" if isinstance(got, (dict, list)) else f", got {got!r}"
    return f"{msg[0].lower() + msg[1:]}{shown}"
