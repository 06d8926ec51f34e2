"""The Metrics page: live Prometheus charts of the console's client, the gateway and the simulator, and a
PromQL box. pages/metrics.py calls `metrics_page()` once it is inside app.py's shell."""
from __future__ import annotations

from datetime import timedelta

import streamlit as st

from lib.charts.metrics import result_figure, timeseries_figure
from lib.metrics.panels import PANELS_BY_KEY, rate_window, selector, step_seconds
from lib.metrics.prometheus_process import read_status
from lib.metrics.queries import Prom, PrometheusUnavailable, PromQLError, prometheus_url, query_range_any, utcnow
from ui.clients import ensure_metrics_server
from ui.target import current_target

RANGES = {"5 minutes": 300, "15 minutes": 900, "1 hour": 3600, "6 hours": 6 * 3600, "24 hours": 24 * 3600}
REFRESH = {"Off": None, "2 s": 2, "5 s": 5, "10 s": 10, "30 s": 30}
GRID = [("request_rate", "error_ratio"), ("latency", "ttft"), ("output_tokens", "in_flight"),
        ("retries", "rate_limits"), ("breaker", None)]


def metrics_page() -> None:
    ensure_metrics_server()  # this process's own client metrics, scraped as job "console"
    url = prometheus_url()
    # Streamlit fades a fragment's elements while it reruns: with a refresh every few seconds the charts would
    # be dimmed much of the time. The live panels (a container keyed `metrics_live`) keep full opacity; their
    # caption's "Updated" time says when they last changed.
    st.html("<style>.st-key-metrics_live [data-stale='true'] {opacity: 1 !important; transition: none !important;}</style>")

    target = current_target()

    st.title("Metrics")
    st.caption(f"Live from Prometheus at {url}: the console's client (job `console`), the gateway and the simulator.")
    if target:  # the console's own calls carry it as the `target` label of the dify_client_* series
        st.markdown(f"Target: **{target.name}**")

    c_range, c_refresh, c_jobs, c_targets = st.columns([1, 1, 2, 2])
    range_s = RANGES[c_range.selectbox("Time range", list(RANGES), index=1, key="metrics_range")]
    every = REFRESH[c_refresh.selectbox("Refresh", list(REFRESH), index=2, key="metrics_refresh")]

    try:
        with Prom(url, timeout=3) as prom:
            targets = prom.targets()
    except PrometheusUnavailable as exc:
        _wait_for_prometheus(url, str(exc))
        return

    jobs = c_jobs.multiselect("Jobs", sorted(targets["job"].unique()), key="metrics_jobs", placeholder="All jobs")
    shown = targets[targets["job"].isin(jobs)] if jobs else targets
    instances = c_targets.multiselect("Targets", sorted(shown["instance"].unique()), key="metrics_instances",
                                      placeholder="All targets")
    sel = selector(jobs, instances)

    st.fragment(run_every=every)(_live_panels)(url, sel, range_s, every)
    # A fragment too: "Run query" reruns the box alone, not the nine panels' queries and charts above it (a
    # page rerun made the result wait seconds for them).
    st.fragment(_promql_box)(url, range_s)


def supervisor_news(unreachable: str | None = None) -> None:
    """What `make run` says about the Prometheus it runs (it died, it is restarting, it came back); else,
    when Prometheus does not answer, why and how to fix it."""
    status = read_status()  # None unless make run started Prometheus
    news = status.sentence() if status else None
    if news and status.state != "running":
        st.warning(news, icon=":material/restart_alt:")
    elif unreachable:
        st.error(f"**Prometheus is unreachable.** {unreachable}", icon=":material/error:")
    elif news:
        st.info(news, icon=":material/history:")


@st.fragment(run_every=5)
def _wait_for_prometheus(url: str, unreachable: str) -> None:
    """Come back by itself once Prometheus answers (it may be starting, or being restarted by make run)."""
    if Prom(url, timeout=2).ready():
        st.rerun(scope="app")
    supervisor_news(unreachable)
    st.caption("Checking again every 5 s ...")


def _live_panels(url: str, sel: str, range_s: int, every: int | None) -> None:
    """A fragment (run every `every` s): only this reruns on each refresh, not the page (whose PromQL
    result stays as it is)."""
    with st.container(key="metrics_live"):
        _panels(url, sel, range_s, every)


def _panels(url: str, sel: str, range_s: int, every: int | None) -> None:
    end = utcnow()
    start = end - timedelta(seconds=range_s)
    step, window = step_seconds(range_s), rate_window(range_s)
    try:
        with Prom(url, timeout=5) as prom:
            frames = {key: prom.panel(PANELS_BY_KEY[key], sel, start, end, step, window)
                      for row in GRID for key in row if key}
            up = prom.targets()
    except PrometheusUnavailable as exc:
        supervisor_news(str(exc))
        return
    except PromQLError as exc:
        st.error(f"**Prometheus query failed.** {exc}", icon=":material/error:")
        return
    supervisor_news()
    for row in GRID:
        cols = st.columns(2)
        for col, key in zip(cols, row, strict=True):
            if key is None:
                continue
            panel = PANELS_BY_KEY[key]
            col.plotly_chart(timeseries_figure(frames[key], panel.title, panel.unit, x_range=(start, end)), key=f"metrics_chart_{key}",
                             width="stretch", config={"displaylogo": False})
            col.caption(panel.help)
    with cols[1]:
        st.markdown("**Scrape targets**")
        st.dataframe(up[["job", "instance", "health", "last_error"]], hide_index=True, width="stretch")
    st.caption(f"Updated {end:%H:%M:%S} UTC · rate window {window} · step {step:g} s"
               + (f" · refreshing every {every} s" if every else ""))


def _promql_box(url: str, range_s: int) -> None:
    st.subheader("PromQL")
    with st.form("metrics_promql"):
        # Keyed, no value=: the box keeps what was typed. (A value= of the last query gave the widget a new
        # identity on each run, so every other edit came back as the query before.)
        query = st.text_area("Query", key="metrics_promql_query",
                             placeholder='sum by (job, route) (rate(dify_gateway_requests_total[1m]))', height=80)
        shape = st.radio("Result as", ["Chart over the time range", "Table, now"], horizontal=True, key="metrics_promql_as")
        as_chart = shape == "Chart over the time range"
        if st.form_submit_button("Run query") and query.strip():
            st.session_state["metrics_promql_last"] = (query.strip(), as_chart)

    if last := st.session_state.get("metrics_promql_last"):
        expr, as_chart = last
        try:
            with Prom(url, timeout=10) as prom:
                end = utcnow()
                start = end - timedelta(seconds=range_s)
                if as_chart:
                    frame = query_range_any(prom, expr, start, end, step_seconds(range_s))
                else:
                    frame = prom.instant(expr)
        except PromQLError as exc:
            st.error(f"Prometheus rejected the query: {exc}")
        except PrometheusUnavailable as exc:
            st.error(str(exc))
        else:
            if frame.empty:
                st.info("The query returned no series.")
            elif as_chart:
                st.plotly_chart(result_figure(frame, expr, x_range=(start, end)), key="metrics_promql_chart", width="stretch")
                with st.expander("Data"):
                    st.dataframe(frame, hide_index=True, width="stretch")
            else:
                st.dataframe(frame, hide_index=True, width="stretch")
