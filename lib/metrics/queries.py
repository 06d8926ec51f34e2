"""Prometheus queries -> pandas DataFrames (prometheus-api-client), for the Metrics page, notebooks and tests.

    prom = Prom("http://127.0.0.1:9090")
    frame = prom.panel(PANELS_BY_KEY["request_rate"], selector(["gateway"]), start, end)

Every call has a timeout and no retry, so a down server fails in milliseconds instead of the
library's default 6 s of retries; failures become PrometheusUnavailable (say how to fix it) or
PromQLError (Prometheus's own message). Empty results are empty frames, never KeyError.
"""
from __future__ import annotations

import json
import os
import re
import warnings
from collections.abc import Mapping
from datetime import UTC, datetime

import pandas as pd
import requests
from prometheus_api_client import MetricRangeDataFrame, PrometheusApiClientException, PrometheusConnect
from urllib3.util.retry import Retry

from .panels import Panel, render, series_name

DEFAULT_PROMETHEUS_URL = "http://127.0.0.1:9090"
FIX = ("Start the console with `make run` (it starts Prometheus), or set PROMETHEUS_URL to a running "
       "Prometheus server and restart the console.")
RANGE_COLUMNS = ["timestamp", "value", "series"]


class PrometheusUnavailable(RuntimeError):
    """Prometheus did not answer; the message says where it was looked for and how to fix it."""


class PromQLError(ValueError):
    """Prometheus refused a query (a syntax error, an unknown function); the message is Prometheus's."""


def prometheus_url(environ: Mapping[str, str] | None = None) -> str:
    env = os.environ if environ is None else environ
    return (env.get("PROMETHEUS_URL") or DEFAULT_PROMETHEUS_URL).strip().rstrip("/")


class Prom:
    def __init__(self, url: str | None = None, timeout: float = 5.0) -> None:
        self.url = (url or prometheus_url()).rstrip("/")
        self.timeout = timeout
        self._api = PrometheusConnect(self.url, disable_ssl=True, retry=Retry(total=0), timeout=timeout)

    def close(self) -> None:
        self._api.close()

    def __enter__(self) -> Prom:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Prom({self.url!r})"

    # -- raw queries -------------------------------------------------------------------------------

    def _call(self, fn, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (requests.ConnectionError, requests.Timeout) as exc:
            reason = "timed out" if isinstance(exc, requests.Timeout) else "connection refused or unreachable"
            raise PrometheusUnavailable(f"Prometheus at {self.url} is not reachable ({reason}). {FIX}") from None
        except PrometheusApiClientException as exc:
            raise _api_error(str(exc), self.url) from None
        except requests.RequestException as exc:
            raise PrometheusUnavailable(f"Prometheus at {self.url} failed ({type(exc).__name__}). {FIX}") from None

    def ready(self) -> bool:
        """Whether Prometheus answers its readiness endpoint."""
        try:
            r = requests.get(f"{self.url}/-/ready", timeout=self.timeout)
        except requests.RequestException:
            return False
        return r.status_code == 200

    def range(self, expr: str, start: datetime, end: datetime, step: float) -> pd.DataFrame:
        """A range query as a long frame: timestamp, value, and one column per label."""
        result = self._call(self._api.custom_query_range, expr, start_time=start, end_time=end, step=f"{step:g}s")
        return range_frame(result)

    def instant(self, expr: str, at: datetime | None = None) -> pd.DataFrame:
        """An instant query as a frame: one row per series (labels + value + timestamp)."""
        params = {"time": f"{at.timestamp():.3f}"} if at else None
        result = self._call(self._api.custom_query, expr, params=params)
        return instant_frame(result)

    def targets(self) -> pd.DataFrame:
        """Prometheus's active scrape targets: job, instance, health, last_scrape, last_error."""
        data = self._call(self._api.get_targets, state="active")
        rows = [
            {
                "job": t.get("labels", {}).get("job", t.get("scrapePool", "")),
                "instance": t.get("labels", {}).get("instance", ""),
                "health": t.get("health", "unknown"),
                "last_scrape": t.get("lastScrape", ""),
                "last_error": t.get("lastError", ""),
            }
            for t in (data or {}).get("activeTargets", [])
        ]
        return pd.DataFrame(rows, columns=["job", "instance", "health", "last_scrape", "last_error"])

    # -- panels ------------------------------------------------------------------------------------

    def panel(self, panel: Panel, sel: str, start: datetime, end: datetime, step: float, window: str) -> pd.DataFrame:
        """All of a panel's queries over [start, end], one long frame with a `series` column to plot by."""
        frames = []
        for q in panel.queries:
            frame = self.range(render(q.expr, sel, window), start, end, step)
            if not frame.empty:
                labels = [c for c in frame.columns if c not in ("timestamp", "value")]
                rows = frame[labels].astype(str).itertuples(index=False)
                frame["series"] = [series_name(q.legend, dict(zip(labels, row, strict=True))) for row in rows] \
                    if labels else series_name(q.legend, {})
                frames.append(frame[RANGE_COLUMNS])
        if not frames:
            return pd.DataFrame(columns=RANGE_COLUMNS)
        return pd.concat(frames, ignore_index=True)


def range_frame(result: list[dict]) -> pd.DataFrame:
    """A query_range result as a long frame; empty (columns timestamp, value) when there is no series.

    MetricRangeDataFrame raises KeyError on an empty result, hence the guard. NaN samples (a quantile of
    no traffic) are dropped: a chart shows a gap, not a zero.
    """
    if not result:
        return pd.DataFrame(columns=["timestamp", "value"])
    with warnings.catch_warnings():  # the library's own set_index(inplace=True) warns under pandas 3
        warnings.simplefilter("ignore")
        frame = MetricRangeDataFrame(result).reset_index()
    frame = pd.DataFrame(frame)  # a plain DataFrame: the subclass' constructor expects Prometheus JSON
    frame["value"] = pd.to_numeric(frame["value"], errors="coerce")
    frame["timestamp"] = frame["timestamp"].dt.tz_localize(UTC)
    frame = frame.drop(columns=["__name__"], errors="ignore").dropna(subset=["value"])
    return frame.reset_index(drop=True)


def instant_frame(result: list[dict] | dict) -> pd.DataFrame:
    """An instant query's result (vector, scalar or string) as a frame."""
    if isinstance(result, dict) or (result and isinstance(result[0], (int, float, str))):
        # scalar/string results: [time, "value"]
        values = result["value"] if isinstance(result, dict) else result
        return pd.DataFrame([{"timestamp": _ts(values[0]), "value": _num(values[1])}])
    rows = []
    for item in result or []:
        if "values" in item:  # a range vector from a query like `up[1m]`
            for t, v in item["values"]:
                rows.append({**item.get("metric", {}), "timestamp": _ts(t), "value": _num(v)})
        else:
            t, v = item.get("value", (None, None))
            rows.append({**item.get("metric", {}), "timestamp": _ts(t), "value": _num(v)})
    return pd.DataFrame(rows, columns=None if rows else ["timestamp", "value"])


def query_range_any(prom: Prom, expr: str, start: datetime, end: datetime, step: float) -> pd.DataFrame:
    """A free-form range query (the page's PromQL box), with a `series` column naming each series by its labels."""
    frame = prom.range(expr, start, end, step)
    if frame.empty:
        return pd.DataFrame(columns=RANGE_COLUMNS)
    labels = [c for c in frame.columns if c not in ("timestamp", "value")]
    frame["series"] = (
        frame[labels].astype(str).apply(lambda r: ", ".join(f"{k}={v}" for k, v in r.items() if v and v != "nan"), axis=1)
        if labels else "value"
    )
    return frame


def _ts(t) -> pd.Timestamp | None:
    return None if t is None else pd.Timestamp(float(t), unit="s", tz="UTC")


def _num(v) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return float("nan")


def _api_error(text: str, url: str) -> Exception:
    """PrometheusApiClientException("HTTP Status Code 400 (b'{...}')") -> PromQLError with Prometheus's message."""
    status = re.search(r"HTTP Status Code (\d+)", text)
    code = int(status.group(1)) if status else 0
    message = text
    body = re.search(r"\((b?)(['\"])(.*)\2\)$", text, re.S)
    if body:
        raw = body.group(3)
        try:
            message = json.loads(raw.encode().decode("unicode_escape")).get("error", raw)
        except (ValueError, AttributeError):
            message = raw
    if code in (400, 422):
        return PromQLError(str(message))
    return PrometheusUnavailable(f"Prometheus at {url} answered HTTP {code or '?'}: {message}. {FIX}")


def utcnow() -> datetime:
    return datetime.now(UTC)
