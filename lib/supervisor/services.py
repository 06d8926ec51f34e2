"""What `make run` starts, in order: the simulator, the gateway, Prometheus (unless PROMETHEUS_URL names one)
and the Streamlit app, each a `Service`; to run another service, add one to `services()`."""
from __future__ import annotations

import shlex
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from lib.gateway.config import DEMO_CALLER_KEY, parse_callers
from lib.metrics.prometheus_process import STATUS_ENV, PrometheusNotFound, prometheus_argv
from lib.settings import SettingsError, default_target, load_targets, read_secrets_file

ROOT = Path(__file__).resolve().parents[2]  # the repo: services run from here
HOST = "127.0.0.1"


@dataclass(frozen=True)
class Service:
    name: str
    argv: list[str]
    port: int
    ready_url: str  # answers 200 once the service is up
    env: dict[str, str] = field(default_factory=dict)  # on top of this process's environment
    also_binds: dict[str, int] = field(default_factory=dict)  # other ports it listens on, by their variable
    url: str = ""  # what the banner shows
    prepare: Callable[[], None] | None = None  # run just before starting it (e.g. write its config)
    status_file: Path | None = None  # set: not essential; restarted with backoff when it dies, reported here


def services(environ: Mapping[str, str]) -> list[Service]:
    """What `make run` starts, in order."""
    sim_port = _port(environ, "SIMULATOR_PORT", 5001)
    gw_port = _port(environ, "GATEWAY_PORT", 8080)
    ui_port = _port(environ, "STREAMLIT_PORT", 8501)
    metrics_port = _port(environ, "CONSOLE_METRICS_PORT", 9464)
    sim_url = f"http://{HOST}:{sim_port}/v1"
    py = sys.executable
    gateway = Service(
        "gateway",
        [py, "-m", "lib.gateway", "--host", HOST, "--port", str(gw_port)],
        gw_port,
        f"http://{HOST}:{gw_port}/health",
        env=gateway_env(environ, sim_url),
        url=f"http://{HOST}:{gw_port}/v1",
    )
    planned = [
        Service(
            "simulator",
            [py, "-m", "lib.simulator", "--host", HOST, "--port", str(sim_port),
             *shlex.split(environ.get("SIMULATOR_ARGS", ""))],
            sim_port,
            f"{sim_url}/",
            url=sim_url,
        ),
        gateway,
    ]
    prometheus_url = (environ.get("PROMETHEUS_URL") or "").strip().rstrip("/")
    status_file = ""
    if not prometheus_url:
        prom_port = _port(environ, "PROMETHEUS_PORT", 9090)
        prometheus_url = f"http://{HOST}:{prom_port}"
        data_dir = Path(environ.get("PROMETHEUS_DATA_DIR") or ROOT / "data" / "prometheus")
        try:
            argv = prometheus_argv(data_dir / "prometheus.yml", data_dir / "tsdb", prom_port, HOST)
        except PrometheusNotFound:
            argv = None  # main() says how to install it; the console runs on without it
        scrape = {"console": f"{HOST}:{metrics_port}", "gateway": f"{HOST}:{gw_port}", "simulator": f"{HOST}:{sim_port}"}
        planned.append(Service(
            "prometheus", argv or [], prom_port, f"{prometheus_url}/-/ready", url=prometheus_url,
            prepare=partial(write_prometheus_config, data_dir, scrape), status_file=data_dir / "status.json",
        ))
        status_file = str(data_dir / "status.json")
    planned.append(Service(
        "streamlit",
        [py, "-m", "streamlit", "run", "app.py", "--server.headless=true", f"--server.address={HOST}",
         f"--server.port={ui_port}", "--browser.gatherUsageStats=false"],
        ui_port,
        f"http://{HOST}:{ui_port}/_stcore/health",
        env={"SIMULATOR_URL": sim_url, "PROMETHEUS_URL": prometheus_url, "CONSOLE_METRICS_PORT": str(metrics_port),
             STATUS_ENV: status_file, **gateway_target_env(gateway)},
        also_binds={"CONSOLE_METRICS_PORT": metrics_port},
        url=f"http://{HOST}:{ui_port}",
    ))
    return planned


def gateway_env(environ: Mapping[str, str], sim_url: str) -> dict[str, str]:
    """The gateway fronts the default target when it is a real Dify app (DIFY_API_BASE/DIFY_API_KEY from
    the environment, .env or secrets.toml), else the simulator's chat app."""
    env = {"GATEWAY_API_KEYS": environ.get("GATEWAY_API_KEYS") or f"demo:{DEMO_CALLER_KEY}",
           "DIFY_API_BASE": sim_url, "DIFY_API_KEY": "app-sim-chat"}
    try:
        target = default_target(load_targets(read_secrets_file(), environ={**environ, "SIMULATOR_URL": sim_url}))
    except (SettingsError, OSError, ValueError):  # the banner and the app report the configuration problem
        return env
    if target.kind == "dify":
        env |= {"DIFY_API_BASE": target.base_url, "DIFY_API_KEY": target.api_key}
    return env


def gateway_target_env(gateway: Service) -> dict[str, str]:
    """The console's "Via gateway" target (lib.settings): the gateway started here, with its first caller key."""
    callers = parse_callers(gateway.env["GATEWAY_API_KEYS"])
    if not callers:  # the gateway refuses to start without one and says why; the console offers no target
        return {}
    return {"GATEWAY_URL": gateway.url, "GATEWAY_CALLER_KEY": callers[0].key.get_secret_value()}


# The targets deploy/prometheus.yml names, at make run's default ports.
DEPLOY_TARGETS = {"console": "127.0.0.1:9464", "gateway": "127.0.0.1:8080", "simulator": "127.0.0.1:5001"}


def write_prometheus_config(data_dir: Path, scrape: dict[str, str]) -> None:
    """deploy/prometheus.yml with make run's actual ports, as data_dir/prometheus.yml."""
    data_dir.mkdir(parents=True, exist_ok=True)
    text = (ROOT / "deploy" / "prometheus.yml").read_text()
    for job, target in scrape.items():
        text = text.replace(f"'{DEPLOY_TARGETS[job]}'", f"'{target}'")
    (data_dir / "prometheus.yml").write_text(text)


def _port(environ: Mapping[str, str], name: str, default: int) -> int:
    raw = environ.get(name) or str(default)
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise ValueError(f"{name} must be a port number, got {raw!r}.")
    return int(raw)
