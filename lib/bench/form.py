"""The Benchmark page's run form, without Streamlit: its raw fields -> a validated RunConfig, or a sentence why not.

The page (ui/bench/form.py) only draws widgets and collects their values into `FormFields`; parsing the
free-text fields (sweep levels, inputs JSON, extra headers), reading the prompts and turning pydantic's
errors into the sentences the page shows all happen here, so they are tested without a browser.
Keys are not part of a form: the page pairs the chosen targets with their keys itself.
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from . import prompts as P
from .config import RunConfig, Threshold


class FormError(ValueError):
    """The form cannot start a run; str() is the sentence (or sentences) to show."""


class FormIncomplete(FormError):
    """Nothing to run yet (no target, no file): a prompt to the user rather than a mistake."""


@dataclass
class FormFields:
    """The widgets' values as the page reads them (numbers already numbers, free text as typed)."""

    targets: Sequence[tuple[str, str]] = ()  # (name, base URL) of each chosen target, in order
    app: str = "auto"
    mode: str = "streaming"
    load: str = "closed loop"  # or "open loop"
    concurrency: int = 4
    rate: float = 2.0
    arrival: str = "poisson"
    cap: int = 0  # max in flight; 0: no cap
    sweep: str = ""
    stop: str = "duration"  # or "requests"
    duration: float | None = 10.0
    requests: int | None = None
    warmup: float = 0.0
    source: str = "one query"  # "a list", "a file"
    query: str = ""  # the query, or the list's text (one a line)
    upload_name: str | None = None  # an uploaded file's name and bytes (None: nothing uploaded)
    upload: bytes | None = None
    inputs: str = ""
    slo_ttft: float = 0.0
    slo_e2e: float = 0.0
    slo_ok: float = 0.0
    seed: int = 0
    timeout: float = 120.0
    retries: int = 0
    name: str = ""
    headers: str = ""


def config_from_form(fields: FormFields) -> RunConfig:
    """The run the form describes. Raises FormIncomplete or FormError with the sentence to show."""
    if not fields.targets:
        raise FormIncomplete("Pick at least one target.")
    if fields.source == "a file" and fields.upload is None:
        raise FormIncomplete("Upload a prompts file.")
    (target, base_url), many = fields.targets[0], len(fields.targets) > 1
    try:
        if fields.source == "one query":
            prompt_list, source_label = P.from_query(fields.query or None), "query"
        elif fields.source == "a list":
            prompt_list, source_label = P.from_list(fields.query.splitlines()), "list"
        else:
            prompt_list = P.from_bytes(fields.upload or b"", fields.upload_name or "uploaded")
            source_label = f"file:{fields.upload_name}"
        slo = [Threshold(metric="ttft_ms.p95", limit=fields.slo_ttft)] if fields.slo_ttft else []
        slo += [Threshold(metric="e2e_ms.p95", limit=fields.slo_e2e)] if fields.slo_e2e else []
        slo += [Threshold(metric="success_rate", op=">=", limit=fields.slo_ok)] if fields.slo_ok else []
        closed = fields.load == "closed loop"
        config = RunConfig(
            name=fields.name, target=target, base_url=base_url, app=fields.app, mode=fields.mode,
            load="closed" if closed else "open", concurrency=int(fields.concurrency) if closed else 1,
            rate=float(fields.rate) if not closed else 1.0, arrival=fields.arrival if not closed else "poisson",
            max_in_flight=(int(fields.cap) or None) if not closed else None, sweep=parse_levels(fields.sweep),
            duration_s=fields.duration if fields.stop == "duration" else None,
            requests=int(fields.requests) if fields.stop == "requests" and fields.requests else None,
            warmup_s=float(fields.warmup), prompts=prompt_list, prompts_source=source_label,
            inputs=parse_inputs(fields.inputs), seed=int(fields.seed), timeout_s=float(fields.timeout),
            retries=int(fields.retries), slo=slo, headers=parse_headers(fields.headers),
        )
        if many and config.sweep:
            raise ValueError("Compare targets or sweep levels, not both in one run: pick one target or clear the sweep levels.")
    except (ValueError, P.PromptError) as exc:
        raise FormError(message(exc)) from None
    return config


def parse_levels(text: str) -> list[float]:
    """`1, 2, 4` (commas or semicolons) -> [1.0, 2.0, 4.0]."""
    levels = []
    for item in (x.strip() for x in text.replace(";", ",").split(",")):
        if not item:
            continue
        try:
            levels.append(float(item))
        except ValueError:
            raise ValueError(
                f"Sweep levels are numbers separated by commas, such as 1, 2, 4, 8: \u201c{item}\u201d is not a number."
            ) from None
    return levels


def parse_inputs(text: str) -> dict:
    if not text.strip():
        return {}
    try:
        inputs = json.loads(text)
    except json.JSONDecodeError as exc:
        where = f" (line {exc.lineno}, column {exc.colno})"
        raise ValueError(f'Inputs must be a JSON object such as {{"topic": "rivers"}}; this one is not valid JSON{where}.') from None
    if not isinstance(inputs, dict):
        raise ValueError('Inputs must be a JSON object such as {"topic": "rivers"}, not a list or a single value.')
    return inputs


def parse_headers(text: str) -> dict[str, str]:
    """`Name: value`, one a line (blank lines skipped)."""
    out = {}
    for line in text.splitlines():
        if line.strip():
            name, sep, value = line.partition(":")
            if not sep or not name.strip():
                raise ValueError(f"Each extra header reads Name: value, one a line; \u201c{line.strip()}\u201d has no colon.")
            out[name.strip()] = value.strip()
    return out


def message(exc: Exception) -> str:
    """A sentence for the form, never pydantic's or Python's raw wording."""
    errors = getattr(exc, "errors", None)
    if callable(errors):  # pydantic: one sentence per problem, naming the field as the form does
        return " ".join(_sentence(_field(e) + _plain(e["msg"])) for e in errors())
    return _sentence(str(exc))


_FIELDS = {"sweep": "Sweep levels: ", "prompts": "Prompts: ", "headers": "Extra headers: ", "inputs": "Inputs: ",
           "rate": "Rate: ", "concurrency": "Concurrent users: ", "duration_s": "Seconds measured: "}


def _field(error: dict) -> str:
    name = _FIELDS.get(str(error["loc"][0]) if error.get("loc") else "", "")
    return "" if name.rstrip(": ").lower() in error["msg"].lower() else name


def _plain(msg: str) -> str:
    return msg.removeprefix("Value error, ").removeprefix("Assertion failed, ")


def _sentence(text: str) -> str:
    text = text.strip()
    if not text:
        return text
    text = text[0].upper() + text[1:]
    return text if text[-1] in ".!?" else text + "."
