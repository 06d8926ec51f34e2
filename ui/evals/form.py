"""The New run form: a suite (from examples/ or uploaded), the targets, concurrency and repeats."""
from __future__ import annotations

from pathlib import Path

import streamlit as st

from lib.evals import Suite, SuiteError, load_suite, parse_suite
from lib.evals.jobs import start_job
from lib.evals.store import EvalStore
from lib.settings import Target, find_target
from ui.target import all_targets

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
UPLOAD = "Upload a file…"


def _examples() -> list[Path]:
    return sorted(p for p in EXAMPLES.glob("*") if p.suffix.lower() in (".yaml", ".yml", ".json"))


def _suite() -> Suite | None:
    options = [p.name for p in _examples()] + [UPLOAD]
    choice = st.selectbox("Suite", options, key="evals_suite",
                          help="A YAML or JSON file of cases and assertions (README, Evals). The examples run on the simulator.")
    try:
        if choice != UPLOAD:
            return load_suite(EXAMPLES / choice)
        upload = st.file_uploader("Suite file", type=["yaml", "yml", "json"], key="evals_upload")
        if upload is None:
            return None
        text = upload.getvalue().decode("utf-8")
        return parse_suite(text, source=upload.name, json_syntax=upload.name.lower().endswith(".json"))
    except SuiteError as exc:
        st.error(f"This suite cannot run: {exc}", icon=":material/error:")
    except UnicodeDecodeError:
        st.error("This suite cannot run: the file is not UTF-8 text.", icon=":material/error:")
    return None


def _start(suite: Suite, targets: list[Target], known: list[Target], store: EvalStore, concurrency: int,
           repeats: int | None, job_key: str) -> None:
    job = start_job(suite, targets, store.path, concurrency=concurrency, repeats=repeats,
                    resolve=lambda name: find_target(known, name))
    st.session_state[job_key] = job.id


def run_form(store: EvalStore, current: Target | None, job_key: str) -> None:
    suite = _suite()
    known = all_targets()
    names = [t.name for t in known]
    if "evals_targets" not in st.session_state:
        st.session_state["evals_targets"] = [current.name] if current is not None and current.name in names else names[:1]
    st.session_state["evals_targets"] = [n for n in st.session_state["evals_targets"] if n in names]
    chosen = st.multiselect("Targets", names, key="evals_targets", help="Each case runs against every target: the matrix's columns.")
    c1, c2 = st.columns(2)
    concurrency = c1.number_input("Cases at once", 1, 32, 4, key="evals_concurrency")
    repeats = c2.number_input("Repeats (0: as the suite says)", 0, 20, 0, key="evals_repeats")
    if suite is not None:
        n_cases = sum(c.repeats if not repeats else repeats for c in suite.cases) * len(suite.variants)
        st.caption(f"**{suite.name}**: {len(suite.cases)} case(s), {len(suite.variants)} variant(s): "
                   f"{n_cases * max(len(chosen), 1)} answer(s) to get. {suite.description}")
    targets = [t for t in known if t.name in chosen]
    st.button("Run suite", type="primary", key="evals_start", icon=":material/play_arrow:",
              disabled=suite is None or not targets, on_click=_start,
              args=(suite, targets, known, store, int(concurrency), int(repeats) or None, job_key))
    if suite is not None and not targets:
        st.caption("Pick at least one target.")
