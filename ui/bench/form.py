"""The Benchmark page's run form: widgets -> a validated RunConfig and its targets (or a message why not).

The widgets' values go to lib.bench.form.config_from_form, which parses and validates them.
"""
from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from lib.bench import prompts as P
from lib.bench.config import RunConfig
from lib.bench.engine import TargetSpec
from lib.bench.form import FormError, FormFields, FormIncomplete, config_from_form
from lib.bench.guard import confirmation_needed
from lib.bench.jobs import JobBusyError, start_job
from lib.bench.store import BenchStore
from lib.settings import Target
from ui.target import all_targets

K = "bench_form_"  # widget keys
NEW_RUN_OPEN = "bench_new_run_open"  # the "New run" expander's state (ui/bench/page.py)


@dataclass
class FormResult:
    config: RunConfig | None
    targets: list[TargetSpec]
    problem: str | None = None  # why the run cannot start (shown instead of starting)
    needs_confirmation: str | None = None


def _follow_sidebar(current: Target | None, names: list[str]) -> None:
    """The form's targets start as the sidebar's and follow it when it changes (so the page's header and
    the form agree); a selection of the user's own stays until then. Names no longer offered drop out."""
    key, seen = K + "targets", K + "sidebar_target"
    here = current.name if current is not None and current.name in names else (names[0] if names else None)
    if key not in st.session_state or st.session_state.get(seen) != here:
        st.session_state[key] = [here] if here else []
    else:
        st.session_state[key] = [n for n in st.session_state[key] if n in names]
    st.session_state[seen] = here


def run_form(current: Target | None) -> FormResult:
    """Draw the form; return what it describes. Nothing is started here."""
    targets = all_targets()  # the sidebar's list: configured targets and those added in the Playground
    names = [t.name for t in targets]
    _follow_sidebar(current, names)
    chosen = st.multiselect("Targets", names, key=K + "targets",
                            help="One target runs the workload; two or more run it against each, one after the other, and rank them.")
    c1, c2, c3 = st.columns(3)
    app = c1.selectbox("App endpoint", ["auto", "chat", "completion", "workflow"], key=K + "app",
                       help="auto asks Dify for the app's mode (GET /info).")
    mode = c2.radio("Response mode", ["streaming", "blocking"], horizontal=True, key=K + "mode")
    load = c3.radio("Load", ["closed loop", "open loop"], horizontal=True, key=K + "load",
                    help="Closed: N users, each sending when its last answer ends. Open: arrivals at a rate, whatever the answers do; "
                         "latency counts from each request's scheduled time.")
    c1, c2, c3 = st.columns(3)
    if load == "closed loop":
        concurrency = c1.number_input("Concurrent users", 1, 5000, 4, key=K + "concurrency")
        rate, arrival, cap = 1.0, "poisson", 0
    else:
        concurrency = 1
        rate = c1.number_input("Rate (requests/s)", 0.01, 10000.0, 2.0, key=K + "rate")
        arrival = c2.selectbox("Arrivals", ["poisson", "constant"], key=K + "arrival")
        cap = c3.number_input("Max in flight (0 = no cap)", 0, 100000, 0, key=K + "cap")
    sweep_text = st.text_input("Sweep levels (optional)", key=K + "sweep", placeholder="e.g. 1, 2, 4, 8",
                               help="One run per level of concurrency (closed) or rate (open); charts throughput against latency.")
    c1, c2, c3 = st.columns(3)
    stop = c1.radio("Stop after", ["duration", "requests"], horizontal=True, key=K + "stop")
    if stop == "duration":
        duration, count = c2.number_input("Seconds measured", 0.5, 86400.0, 10.0, key=K + "duration"), None
    else:
        duration, count = None, c2.number_input("Measured requests", 1, 10_000_000, 50, key=K + "requests")
    warmup = c3.number_input("Warm-up seconds", 0.0, 3600.0, 0.0, key=K + "warmup", help="Sent but not counted.")

    source = st.radio("Prompts", ["one query", "a list", "a file"], horizontal=True, key=K + "source")
    upload = None
    if source == "one query":
        query = st.text_input("Query", key=K + "query", placeholder=P.from_query(None)[0].query or "")
    elif source == "a list":
        query = st.text_area("Queries, one a line", key=K + "list")
    else:
        query = ""
        upload = st.file_uploader("CSV or JSONL (a `query` column; other columns fill the app's inputs)",
                                  type=["csv", "jsonl", "ndjson", "json"], key=K + "file")
    inputs_text = st.text_input("Inputs for every request (JSON, optional)", key=K + "inputs", placeholder='{"topic": "rivers"}')

    st.caption("SLO (0 = none): goodput counts requests within the per-request limits; the run passes when each is met at p95.")
    c1, c2, c3 = st.columns(3)
    slo_ttft = c1.number_input("TTFT p95 limit (ms)", 0.0, 1e7, 0.0, key=K + "slo_ttft")
    slo_e2e = c2.number_input("End-to-end p95 limit (ms)", 0.0, 1e7, 0.0, key=K + "slo_e2e")
    slo_ok = c3.number_input("Min success rate", 0.0, 1.0, 0.0, key=K + "slo_ok")
    with st.expander("Advanced"):
        c1, c2, c3 = st.columns(3)
        seed = c1.number_input("Seed (arrivals, prompt order)", 0, 2**31 - 1, 0, key=K + "seed")
        timeout = c2.number_input("Timeout (s): first event, and longest silence", 0.1, 3600.0, 120.0, key=K + "timeout")
        retries = c3.number_input("Client retries", 0, 10, 0, key=K + "retries", help="0: see every failure as it happened.")
        name = st.text_input("Run name", key=K + "name")
        headers_text = st.text_area("Extra headers (Name: value, one a line)", key=K + "headers", height=68)

    by_name = {t.name: t for t in targets}
    specs = [TargetSpec(n, by_name[n].base_url, by_name[n].api_key) for n in chosen]
    fields = FormFields(
        targets=[(s.name, s.base_url) for s in specs], app=app, mode=mode, load=load, concurrency=int(concurrency),
        rate=float(rate), arrival=arrival, cap=int(cap), sweep=sweep_text, stop=stop, duration=duration,
        requests=int(count) if count else None, warmup=float(warmup), source=source, query=query or "",
        upload_name=upload.name if upload is not None else None,
        upload=upload.getvalue() if upload is not None else None,
        inputs=inputs_text, slo_ttft=slo_ttft, slo_e2e=slo_e2e, slo_ok=slo_ok, seed=int(seed), timeout=float(timeout),
        retries=int(retries), name=name, headers=headers_text,
    )
    try:
        config = config_from_form(fields)
    except FormIncomplete as exc:
        return FormResult(None, specs, str(exc))
    except FormError as exc:
        return FormResult(None, specs, f"Cannot start. {exc}")
    why = next((w for w in (confirmation_needed(config.model_copy(update={"base_url": s.base_url})) for s in specs) if w), None)
    return FormResult(config, specs, needs_confirmation=why)


def start_run(form: FormResult, store: BenchStore) -> None:
    """The Start button's callback: start the job, remember its id in the session."""
    if form.config is None:
        return
    try:
        job = start_job(form.config, form.targets, store)
    except JobBusyError as exc:
        st.session_state["bench_start_error"] = str(exc)
        return
    st.session_state["bench_job"] = job.id
    st.session_state[NEW_RUN_OPEN] = False  # fold the form away: the live panel and then the results come first
