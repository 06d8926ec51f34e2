"""The console run locally, supervised (`make run`, via scripts/run_console.py): the Dify simulator, the
gateway, Prometheus and the Streamlit app.

Each service runs in its own process group, so Ctrl-C or SIGTERM stops every process the supervisor
started, grandchildren included, and frees the ports. To run another service, add a `Service` to
`services()`.

Environment: SIMULATOR_PORT (5001), GATEWAY_PORT (8080), PROMETHEUS_PORT (9090), STREAMLIT_PORT (8501),
CONSOLE_METRICS_PORT (9464, the app's own /metrics), SIMULATOR_ARGS (extra simulator flags, e.g.
"--fast"); DIFY_API_BASE/DIFY_API_KEY make a real Dify app the default target and the gateway's
upstream (else the gateway fronts the simulator's chat app); GATEWAY_API_KEYS (default
`demo:gw-demo-key`); PROMETHEUS_URL uses a Prometheus already running instead of starting one;
PROMETHEUS_DATA_DIR (data/prometheus) holds its storage.

Prometheus is not essential: if it dies, the rest keeps running and it is restarted with backoff
(1 s, 2 s, 4 s ... 30 s; from 1 s again after it stayed up a minute). Each stop and return is written to
PROMETHEUS_DATA_DIR/status.json, which the Metrics page reads to say what happened. Any other service
dying stops everything (exit 1), as its absence would make the console lie.

services.py   what is started (Service, services(), the gateway's upstream, Prometheus's config)
processes.py  Supervisor (start, watch, stop) and Keeper (restarts Prometheus with backoff)
main.py       main(): ports checked, services started in order, the banner, Ctrl-C
"""
