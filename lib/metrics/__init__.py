"""Prometheus for the console: what it exports, what it queries, and the server it runs.

    buckets.py             histogram buckets sized for LLM latencies (no side effects: the simulator and
    labels.py              the gateway import these two without registering the console's metrics)
    client.py              ClientMetrics: the dify_client_* metrics on a registry, and lib.dify Hooks into them
    exporter.py            the console process's /metrics endpoint (CONSOLE_METRICS_PORT)
    panels.py              the Metrics page's panels (PromQL), shared by the page, tests and Grafana
    queries.py             Prom: queries and panels -> pandas DataFrames
    grafana.py             deploy/grafana-dashboard.json from the panels (python -m lib.metrics.grafana)
    prometheus_process.py  find and run a real Prometheus; make run's status file about it

This file imports nothing, so `import lib.metrics.buckets` registers no metric.
"""
