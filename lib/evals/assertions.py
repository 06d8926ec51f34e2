"""Assertions: what a case's answer must satisfy, each giving pass/fail and a reason a person can read.

In a suite each assertion is a one-key mapping, `- contains: "refund"`, or with options, `- contains: {value:
"refund", ignore-case: true}`. Kinds:

    text       contains, not-contains, starts-with, equals, regex (a list for contains/not-contains: all of them)
    shape      is-json, json-schema (a JSON Schema the answer, parsed as JSON, must match), min-length, max-length
    language   language (ISO 639-1 code, e.g. en, th; langdetect), script (latin, thai, chinese, japanese, korean,
               cyrillic, arabic, hebrew, greek, devanagari: the letters' dominant writing system)
    reference  similar: {reference: TEXT, min: 0.8, method: ratio | partial_ratio | token_sort_ratio | token_set_ratio}
               (rapidfuzz scores, case and punctuation ignored)
    workflow   outputs.FIELD: VALUE (equals), or outputs.FIELD: {equals | not-equals | contains | regex | exists: ...}
    cost/time  max-ttft-ms, max-total-ms, max-tokens, max-cost (in the answer's currency)
    judge      judge: {target: NAME, rubric: TEXT}: another Dify app grades the answer (see judge_prompt)

Text assertions look at the answer; for a workflow that is its streamed text, else its `text`, `answer` or
`output` output, else all outputs as JSON.
"""
from __future__ import annotations

import difflib
import json
import re
import threading
import unicodedata
from dataclasses import dataclass, field
from typing import Any

import jsonschema
from rapidfuzz import fuzz, utils

TEXT_KINDS = ("contains", "not-contains", "starts-with", "equals", "regex")
LIMIT_KINDS = {  # kind -> (Observation attribute, unit shown, scale from the suite's unit)
    "max-ttft-ms": ("ttft_s", "ms", 1000.0),
    "max-total-ms": ("total_s", "ms", 1000.0),
    "max-tokens": ("tokens", "tokens", 1.0),
    "max-cost": ("cost", "", 1.0),
}
SIMILARITY_METHODS = ("ratio", "partial_ratio", "token_sort_ratio", "token_set_ratio")
SCRIPTS = ("latin", "thai", "chinese", "japanese", "korean", "cyrillic", "arabic", "hebrew", "greek", "devanagari")
KINDS = (*TEXT_KINDS, "is-json", "json-schema", "min-length", "max-length", "language", "script", "similar",
         "outputs.FIELD", *LIMIT_KINDS, "judge")
OUTPUT_OPS = ("equals", "not-equals", "contains", "regex", "exists")


class AssertionSpecError(ValueError):
    """An assertion in the suite is malformed; `subpath` locates the bad part inside it."""

    def __init__(self, message: str, subpath: tuple = ()) -> None:
        self.subpath = subpath
        super().__init__(message)


@dataclass
class Observation:
    """What one answer produced, as the assertions see it."""

    query: str = ""
    answer: str = ""
    outputs: dict[str, Any] | None = None  # workflow outputs (None for chat and completion apps)
    ttft_s: float | None = None
    total_s: float | None = None
    tokens: int | None = None
    cost: float | None = None
    currency: str = "USD"


@dataclass
class CheckResult:
    kind: str
    passed: bool
    reason: str  # why it failed, or what was found when it passed
    label: str = ""  # the assertion as written, short

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "passed": self.passed, "reason": self.reason, "label": self.label}


@dataclass
class Assertion:
    kind: str
    value: Any = None
    ignore_case: bool = False
    options: dict[str, Any] = field(default_factory=dict)
    target: str | None = None  # judge only
    label: str = ""

    def check(self, obs: Observation) -> CheckResult:
        """Every kind but judge (the runner asks the judge, then calls `verdict_result`)."""
        passed, reason = _CHECKS[self.kind.split(".")[0] if self.kind.startswith("outputs.") else self.kind](self, obs)
        return CheckResult(self.kind, passed, reason, self.label)


# -- parsing ---------------------------------------------------------------------------------------------------


def parse_assertion(raw: Any) -> Assertion:
    if not isinstance(raw, dict) or len(raw) != 1:
        raise AssertionSpecError("an assertion is a one-key mapping such as `- contains: \"text\"`; known kinds: "
                                 + ", ".join(KINDS))
    (kind, value), = raw.items()
    kind = str(kind).strip()
    label = f"{kind}: {_short(value)}"
    if kind in TEXT_KINDS:
        text, opts = _with_options(kind, value, ("ignore-case",))
        texts = text if isinstance(text, list) else [text]
        if kind not in ("contains", "not-contains") and isinstance(text, list):
            raise AssertionSpecError(f"`{kind}` takes one text, not a list")
        if not texts or not all(isinstance(t, (str, int, float)) for t in texts):
            raise AssertionSpecError(f"`{kind}` takes text (or {{value: TEXT, ignore-case: true}})")
        texts = [str(t) for t in texts]
        if kind == "regex":
            try:
                re.compile(texts[0])
            except re.error as exc:
                raise AssertionSpecError(f"`regex` is not a valid regular expression: {exc}") from None
        return Assertion(kind, texts if kind in ("contains", "not-contains") else texts[0],
                         bool(opts.get("ignore-case")), label=label)
    if kind == "is-json":
        if value is not True:
            raise AssertionSpecError("`is-json` takes `true`")
        return Assertion(kind, True, label=label)
    if kind == "json-schema":
        if not isinstance(value, dict):
            raise AssertionSpecError("`json-schema` takes a JSON Schema (a mapping)")
        try:
            jsonschema.validators.validator_for(value).check_schema(value)
        except jsonschema.SchemaError as exc:
            raise AssertionSpecError(f"`json-schema` is not a valid JSON Schema: {exc.message}") from None
        return Assertion(kind, value, label="json-schema")
    if kind in ("min-length", "max-length"):
        return Assertion(kind, _number(kind, value, integer=True), label=label)
    if kind in LIMIT_KINDS:
        return Assertion(kind, _number(kind, value), label=label)
    if kind == "language":
        if not (isinstance(value, str) and re.fullmatch(r"[a-z]{2,3}(-[a-z]{2,4})?", value.strip().lower())):
            raise AssertionSpecError("`language` takes a language code such as en, th, ja or zh-cn")
        return Assertion(kind, value.strip().lower(), label=label)
    if kind == "script":
        if value not in SCRIPTS:
            raise AssertionSpecError(f"`script` is one of {', '.join(SCRIPTS)}; got {value!r}")
        return Assertion(kind, value, label=label)
    if kind == "similar":
        return _similar(value, label)
    if kind.startswith("outputs.") and len(kind) > len("outputs."):
        return _output(kind, value, label)
    if kind == "judge":
        return _judge(value)
    close = difflib.get_close_matches(kind, [k for k in KINDS if k != "outputs.FIELD"], n=1)
    meant = f" (did you mean {close[0]!r}?)" if close else ""
    raise AssertionSpecError(f"unknown assertion {kind!r}{meant}; known: {', '.join(KINDS)}")


def _with_options(kind: str, value: Any, allowed: tuple[str, ...]) -> tuple[Any, dict]:
    if not isinstance(value, dict):
        return value, {}
    unknown = [k for k in value if k not in ("value", *allowed)]
    if unknown or "value" not in value:
        raise AssertionSpecError(f"`{kind}` with options takes {{value: ..., {', '.join(allowed)}}}; "
                                 + (f"unknown key {unknown[0]!r}" if unknown else "`value` is missing"))
    return value["value"], value


def _number(kind: str, value: Any, integer: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0 or (integer and value != int(value)):
        raise AssertionSpecError(f"`{kind}` takes a {'whole ' if integer else ''}number >= 0, got {value!r}")
    return int(value) if integer else float(value)


def _similar(value: Any, label: str) -> Assertion:
    if isinstance(value, str):
        value = {"reference": value}
    if not isinstance(value, dict) or not isinstance(value.get("reference"), str):
        raise AssertionSpecError("`similar` takes {reference: TEXT, min: 0.8, method: ratio}")
    unknown = [k for k in value if k not in ("reference", "min", "method")]
    if unknown:
        raise AssertionSpecError(f"`similar`: unknown key {unknown[0]!r} (reference, min, method)")
    minimum = value.get("min", 0.8)
    if isinstance(minimum, bool) or not isinstance(minimum, (int, float)) or not 0 <= minimum <= 100:
        raise AssertionSpecError(f"`similar.min` is a score from 0 to 1 (or a percentage), got {minimum!r}", ("min",))
    method = value.get("method", "ratio")
    if method not in SIMILARITY_METHODS:
        raise AssertionSpecError(f"`similar.method` is one of {', '.join(SIMILARITY_METHODS)}", ("method",))
    threshold = minimum / 100 if minimum > 1 else float(minimum)
    return Assertion("similar", value["reference"], False,
                     {"min": threshold, "method": method}, label=f"similar ({method} >= {threshold:.2f})")


def _output(kind: str, value: Any, label: str) -> Assertion:
    if isinstance(value, dict):
        ops = [k for k in value if k in OUTPUT_OPS]
        if len(ops) != 1 or len(value) != 1:
            raise AssertionSpecError(f"`{kind}` takes a value (equals) or one of {{{': ..., '.join(OUTPUT_OPS)}: ...}}")
        op, operand = ops[0], value[ops[0]]
    else:
        op, operand = "equals", value
    if op == "regex":
        try:
            re.compile(str(operand))
        except re.error as exc:
            raise AssertionSpecError(f"`{kind}.regex` is not a valid regular expression: {exc}") from None
    return Assertion(kind, operand, options={"op": op, "path": kind.split(".")[1:]}, label=label)


def _judge(value: Any) -> Assertion:
    if isinstance(value, str):
        value = {"rubric": value}
    if not isinstance(value, dict) or not isinstance(value.get("rubric"), str) or not value["rubric"].strip():
        raise AssertionSpecError("`judge` takes {target: NAME, rubric: TEXT} (the target is a Dify app that grades)")
    unknown = [k for k in value if k not in ("target", "rubric")]
    if unknown:
        raise AssertionSpecError(f"`judge`: unknown key {unknown[0]!r} (target, rubric)")
    target = value.get("target")
    if target is not None and not isinstance(target, str):
        raise AssertionSpecError("`judge.target` is a target's name", ("target",))
    return Assertion("judge", value["rubric"].strip(), target=target, label=f"judge: {_short(value['rubric'])}")


def _short(value: Any, limit: int = 60) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


# -- checking ------------------------------------------------------------------------------------------------


def _fold(a: Assertion, text: str) -> str:
    return text.casefold() if a.ignore_case else text


def _contains(a: Assertion, o: Observation) -> tuple[bool, str]:
    missing = [t for t in a.value if _fold(a, t) not in _fold(a, o.answer)]
    return (not missing, f"the answer does not contain {_short(missing[0])!r}" if missing else "found")


def _not_contains(a: Assertion, o: Observation) -> tuple[bool, str]:
    found = [t for t in a.value if _fold(a, t) in _fold(a, o.answer)]
    return (not found, f"the answer contains {_short(found[0])!r}" if found else "absent")


def _starts_with(a: Assertion, o: Observation) -> tuple[bool, str]:
    ok = _fold(a, o.answer.lstrip()).startswith(_fold(a, a.value))
    return ok, "ok" if ok else f"the answer starts with {_short(o.answer.lstrip()[: len(a.value) + 10])!r}"


def _equals(a: Assertion, o: Observation) -> tuple[bool, str]:
    ok = _fold(a, o.answer.strip()) == _fold(a, a.value.strip())
    return ok, "equal" if ok else f"the answer is {_short(o.answer.strip())!r}"


def _regex(a: Assertion, o: Observation) -> tuple[bool, str]:
    m = re.search(a.value, o.answer, re.IGNORECASE if a.ignore_case else 0)
    return (m is not None, f"matched {_short(m.group(0))!r}" if m else f"no match for /{a.value}/")


def _parse_json(answer: str) -> tuple[Any, str | None]:
    text = answer.strip()
    fenced = re.fullmatch(r"```(?:json)?\s*(.*?)\s*```", text, re.DOTALL)  # models often fence JSON
    try:
        return json.loads(fenced.group(1) if fenced else text), None
    except json.JSONDecodeError as exc:
        return None, f"the answer is not JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"


def _is_json(a: Assertion, o: Observation) -> tuple[bool, str]:
    _, problem = _parse_json(o.answer)
    return problem is None, problem or "valid JSON"


def _json_schema(a: Assertion, o: Observation) -> tuple[bool, str]:
    data, problem = _parse_json(o.answer)
    if problem:
        return False, problem
    error = jsonschema.exceptions.best_match(jsonschema.validators.validator_for(a.value)(a.value).iter_errors(data))
    if error is None:
        return True, "matches the schema"
    where = "/".join(str(p) for p in error.absolute_path) or "(the whole answer)"
    return False, f"at {where}: {error.message}"


def _length(a: Assertion, o: Observation) -> tuple[bool, str]:
    n = len(o.answer)
    ok = n >= a.value if a.kind == "min-length" else n <= a.value
    return ok, f"{n} characters ({'at least' if a.kind == 'min-length' else 'at most'} {a.value} wanted)"


_profiles_loaded = threading.Event()
_profiles_lock = threading.Lock()
_preload_lock = threading.Lock()
_profiles_preloading = False


def load_language_profiles() -> None:
    """Load langdetect's profiles (~0.5 s of CPU, once per process); a second caller waits for the first."""
    with _profiles_lock:
        if not _profiles_loaded.is_set():
            from langdetect import detect

            detect("warm up the language profiles")
            _profiles_loaded.set()


def preload_language_profiles() -> None:
    """Start loading the profiles in the background, so a run started later does not wait for them (the page
    calls this while its form is read)."""
    global _profiles_preloading
    with _preload_lock:  # one thread, however many reruns come while it loads
        if _profiles_preloading or _profiles_loaded.is_set():
            return
        _profiles_preloading = True
    threading.Thread(target=load_language_profiles, name="langdetect-profiles", daemon=True).start()


def needs_language_profiles(assertions: list[Assertion]) -> bool:
    return any(a.kind == "language" for a in assertions) and not _profiles_loaded.is_set()


def warm_up(assertions: list[Assertion]) -> None:
    """Load the language profiles before answers are timed, not in the middle."""
    if any(a.kind == "language" for a in assertions):
        load_language_profiles()


def _language(a: Assertion, o: Observation) -> tuple[bool, str]:
    # langdetect (a port of Google's language-detection) is probabilistic: a fixed seed makes it repeatable.
    from langdetect import DetectorFactory, LangDetectException, detect

    DetectorFactory.seed = 0
    try:
        found = detect(o.answer)
    except LangDetectException:
        return False, "the answer has no text whose language can be told"
    ok = found.lower() == a.value or found.lower().split("-")[0] == a.value
    return ok, f"detected {found}"


def dominant_script(text: str) -> str | None:
    """The writing system most letters of `text` belong to (from their Unicode names), None with no letters.
    Kana marks Japanese even among kanji; hangul Korean; CJK ideographs alone Chinese."""
    counts: dict[str, int] = {}
    for ch in text[:5000]:
        if not ch.isalpha():
            continue
        name = unicodedata.name(ch, "")
        if name.startswith(("HIRAGANA", "KATAKANA")):
            script = "japanese"
        elif name.startswith("HANGUL"):
            script = "korean"
        elif name.startswith("CJK"):
            script = "cjk"
        else:
            script = name.split(" ")[0].lower()
        counts[script] = counts.get(script, 0) + 1
    if not counts:
        return None
    if "cjk" in counts:  # ideographs count for Japanese or Korean when kana or hangul are present
        host = "japanese" if "japanese" in counts else "korean" if "korean" in counts else "chinese"
        counts[host] = counts.get(host, 0) + counts.pop("cjk")
    return max(counts, key=lambda k: counts[k])


def _script(a: Assertion, o: Observation) -> tuple[bool, str]:
    found = dominant_script(o.answer)
    return found == a.value, f"the answer is written in {found or 'no letters'}"


def _similar_check(a: Assertion, o: Observation) -> tuple[bool, str]:
    # rapidfuzz's default_process lowercases and drops punctuation: wording is what is compared, not commas.
    score = getattr(fuzz, a.options["method"])(o.answer, a.value, processor=utils.default_process) / 100
    return score >= a.options["min"], f"similarity {score:.2f} ({a.options['method']}, {a.options['min']:.2f} wanted)"


_MISSING = object()


def _output_check(a: Assertion, o: Observation) -> tuple[bool, str]:
    field_name = ".".join(["outputs", *a.options["path"]])
    if o.outputs is None:
        return False, f"{field_name}: this app has no workflow outputs (only workflow apps do)"
    value: Any = o.outputs
    for part in a.options["path"]:
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            value = _MISSING
            break
    op, want = a.options["op"], a.value
    if op == "exists":
        ok = (value is not _MISSING) == bool(want)
        return ok, f"{field_name} {'is present' if value is not _MISSING else 'is absent'}"
    if value is _MISSING:
        return False, f"{field_name} is absent (outputs: {', '.join(o.outputs) or 'none'})"
    shown = _literal(value)
    if op == "equals":
        return value == want, f"{field_name} is {shown}" + ("" if value == want else f", not {_literal(want)}")
    if op == "not-equals":
        return value != want, f"{field_name} is {shown}"
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    if op == "contains":
        ok = str(want) in text
        return ok, f"{field_name} {'contains' if ok else 'does not contain'} {_short(str(want))!r} (it is {shown})"
    m = re.search(str(want), text)
    return m is not None, (f"{field_name} matched {_short(m.group(0))!r}" if m
                           else f"{field_name} has no match for /{want}/ (it is {shown})")


def _literal(value: Any) -> str:
    """A value as the suite would write it, short: a text quoted, anything else as JSON."""
    return repr(_short(value)) if isinstance(value, str) else _short(value)


def _limit(a: Assertion, o: Observation) -> tuple[bool, str]:
    attr, unit, scale = LIMIT_KINDS[a.kind]
    value = getattr(o, attr)
    unit = unit or o.currency
    if value is None and attr == "cost" and "+" in (o.currency or ""):
        return False, f"the answer's nodes were priced in several currencies ({o.currency}): no one figure to limit"
    if value is None:
        what = {"ttft_s": "no first token arrived", "total_s": "the answer did not finish",
                "tokens": "Dify reported no token usage", "cost": "Dify reported no price"}[attr]
        return False, what
    shown = value * scale
    fmt = f"{shown:.0f}" if unit in ("ms", "tokens") else f"{shown:.6f}"
    return shown <= a.value, f"{fmt} {unit} (limit {a.value:g})"


_CHECKS = {
    "contains": _contains, "not-contains": _not_contains, "starts-with": _starts_with, "equals": _equals,
    "regex": _regex, "is-json": _is_json, "json-schema": _json_schema, "min-length": _length, "max-length": _length,
    "language": _language, "script": _script, "similar": _similar_check, "outputs": _output_check,
    **{k: _limit for k in LIMIT_KINDS},
}


# -- judge -------------------------------------------------------------------------------------------------


def judge_prompt(rubric: str, obs: Observation) -> str:
    """What the judge app is asked. Its answer is read by parse_verdict."""
    return (
        "You are grading an answer of an AI assistant against a rubric.\n"
        f"Rubric: {rubric}\n\n"
        f"Question: {obs.query}\n\n"
        f"Answer to grade:\n{obs.answer}\n\n"
        'Reply with JSON only: {"pass": true or false, "reason": "one sentence"}. '
        "Alternatively start your reply with the word PASS or FAIL, then the reason."
    )


_VERDICT_WORDS = {"pass": True, "passed": True, "yes": True, "true": True, "fail": False, "failed": False,
                  "no": False, "false": False}


def parse_verdict(text: str) -> tuple[bool, str] | None:
    """(passed, reason) from a judge's answer, or None when it holds no verdict.

    Read in order: a JSON object anywhere in it (keys pass/passed/verdict/result and reason/explanation), then
    a first word PASS or FAIL (markdown and punctuation around it ignored), the rest being the reason."""
    text = (text or "").strip()
    for match in re.finditer(r"\{.*?\}", text, re.DOTALL):
        try:
            data = json.loads(match.group(0))
        except json.JSONDecodeError:
            continue
        if not isinstance(data, dict):
            continue
        for key in ("pass", "passed", "verdict", "result"):
            if key in data:
                raw = data[key]
                verdict = raw if isinstance(raw, bool) else _VERDICT_WORDS.get(str(raw).strip().lower())
                if verdict is not None:
                    reason = str(data.get("reason") or data.get("explanation") or "").strip()
                    return verdict, reason or "(no reason given)"
    m = re.match(r"^[\s*_#>`\"']*(PASS(?:ED)?|FAIL(?:ED)?)\b[\s*_`\"'.:;,)\-–—]*(.*)$", text, re.IGNORECASE | re.DOTALL)
    if m:
        return m.group(1).lower().startswith("pass"), m.group(2).strip() or "(no reason given)"
    return None


def verdict_result(a: Assertion, judge_answer: str) -> CheckResult:
    verdict = parse_verdict(judge_answer)
    if verdict is None:
        return CheckResult("judge", False, (
            f"the judge ({a.target}) answered something that is not a verdict, so the case cannot pass: expected "
            f'JSON {{"pass": true|false, "reason": ...}} or a first word PASS or FAIL; it said {_short(judge_answer, 160)!r}'),
            a.label)
    passed, reason = verdict
    return CheckResult("judge", passed, f"{a.target}: {'PASS' if passed else 'FAIL'}, {reason}", a.label)
