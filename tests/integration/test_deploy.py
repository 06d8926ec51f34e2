"""deploy/: Kubernetes manifests, Dockerfiles and the Grafana dashboard, checked by parsing (no Docker
engine or cluster here): kinds, probes, the Dify key from a Secret, selectors, the HPA, non-root images."""
from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from lib.metrics.grafana import GRAFANA_SELECTOR, GRAFANA_WINDOW
from lib.metrics.panels import PANELS, render
from tests.support.procs import ROOT  # noqa: E402

K8S = ROOT / "deploy" / "k8s"


def manifests() -> list[dict]:
    docs = []
    for path in sorted(K8S.glob("*.yaml")):
        docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


def find(kind: str, name: str) -> dict:
    matches = [d for d in manifests() if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(matches) == 1, f"expected one {kind} {name}, found {len(matches)}"
    return matches[0]


def test_every_manifest_parses_with_api_version_kind_and_name():
    docs = manifests()
    assert {"Deployment", "Service", "HorizontalPodAutoscaler", "Secret", "ConfigMap"} <= {d["kind"] for d in docs}
    for d in docs:
        assert d["apiVersion"] and d["kind"] and d["metadata"]["name"], d


def test_gateway_deployment_probes_secret_and_security():
    deployment = find("Deployment", "dify-gateway")
    assert deployment["apiVersion"] == "apps/v1"
    spec = deployment["spec"]
    assert spec["selector"]["matchLabels"].items() <= spec["template"]["metadata"]["labels"].items()
    pod = spec["template"]["spec"]
    (container,) = pod["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"http": 8080}
    assert container["livenessProbe"]["httpGet"] == {"path": "/health", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/ready", "port": "http"}
    assert "lib.gateway" in container["args"] and "0.0.0.0" in container["args"]
    env = {e["name"]: e for e in container["env"]}
    secret = find("Secret", "dify-gateway")
    for name in ("DIFY_API_KEY", "GATEWAY_API_KEYS"):
        ref = env[name]["valueFrom"]["secretKeyRef"]
        assert ref["name"] == "dify-gateway" and ref["key"] in secret["stringData"]
        assert "value" not in env[name]  # never a literal key in the Deployment
    config = find("ConfigMap", container["envFrom"][0]["configMapRef"]["name"])
    assert "DIFY_API_KEY" not in config["data"] and config["data"]["DIFY_API_BASE"].startswith("https://")
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0
    assert container["securityContext"]["allowPrivilegeEscalation"] is False


@pytest.mark.parametrize("name", ["dify-gateway", "dify-console"])
def test_services_select_their_deployments_pods(name):
    service, deployment = find("Service", name), find("Deployment", name)
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    container_ports = {p["name"] for c in deployment["spec"]["template"]["spec"]["containers"] for p in c["ports"]}
    for port in service["spec"]["ports"]:
        assert port["targetPort"] in container_ports


def test_hpa_scales_the_gateway_deployment():
    hpa = find("HorizontalPodAutoscaler", "dify-gateway")
    assert hpa["apiVersion"] == "autoscaling/v2"
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["apiVersion"], target["kind"], target["name"]) == ("apps/v1", "Deployment", "dify-gateway")
    assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
    (metric,) = hpa["spec"]["metrics"]
    assert metric["type"] == "Resource" and metric["resource"]["target"]["type"] == "Utilization"


def test_console_deployment_reads_the_key_from_the_secret():
    (container,) = find("Deployment", "dify-console")["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e for e in container["env"]}
    assert env["DIFY_API_KEY"]["valueFrom"]["secretKeyRef"]["name"] == "dify-gateway"
    assert container["livenessProbe"]["httpGet"]["path"] == "/_stcore/health"


def dockerfile(name: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    text = (ROOT / "deploy" / name).read_text().replace("\\\n", " ")
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


@pytest.mark.parametrize("name, module, port", [
    ("Dockerfile.gateway", ["python", "-m", "lib.gateway"], "8080"),
    ("Dockerfile.console", ["python", "-m", "streamlit", "run", "app.py"], "8501"),
])
def test_dockerfiles_are_well_formed(name, module, port):
    steps = dockerfile(name)
    assert steps[0][0] == "FROM" and steps[0][1].startswith("python:3.11")
    instructions = [s[0] for s in steps]
    assert set(instructions) <= {"FROM", "ENV", "WORKDIR", "COPY", "RUN", "USER", "EXPOSE", "HEALTHCHECK", "CMD", "ARG", "LABEL"}
    copies = [shlex.split(args) for word, args in steps if word == "COPY"]
    assert ["requirements.txt", "."] in copies
    for *sources, _dest in copies:  # every copied path exists in the build context (the repo root)
        for source in sources:
            assert (ROOT / source).exists(), f"{name} copies {source}, which does not exist"
    runs = " ".join(args for word, args in steps if word == "RUN")
    assert "pip install -r requirements.txt" in runs
    # requirements are installed before the code is copied: a code change keeps the dependency layer
    assert instructions.index("RUN") < max(i for i, s in enumerate(steps) if s[0] == "COPY")
    users = [args for word, args in steps if word == "USER"]
    assert users and users[-1] not in ("root", "0")
    assert instructions.index("USER") < instructions.index("CMD")
    assert port in " ".join(args for word, args in steps if word == "EXPOSE").split()
    (cmd,) = [args for word, args in steps if word == "CMD"]
    argv = json.loads(cmd)  # exec form: signals reach the server, not a shell
    assert argv[:len(module)] == module and "0.0.0.0" in " ".join(argv)


def test_dockerignore_keeps_secrets_and_the_venv_out():
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".venv/", ".env", ".streamlit/secrets.toml", "data/"} <= set(ignored)


def test_grafana_dashboard_matches_the_panels(tmp_path):
    path = ROOT / "deploy" / "grafana-dashboard.json"
    fresh = tmp_path / "dashboard.json"  # what the documented command writes today
    run = subprocess.run([sys.executable, "-m", "lib.metrics.grafana", "--output", str(fresh)], cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0 and str(fresh) in run.stdout, run.stderr
    assert path.read_text() == fresh.read_text(), "deploy/grafana-dashboard.json is stale: run python -m lib.metrics.grafana"
    board = json.loads(path.read_text())
    exprs = [t["expr"] for p in board["panels"] for t in p["targets"]]
    assert exprs == [render(q.expr, GRAFANA_SELECTOR, GRAFANA_WINDOW) for p in PANELS for q in p.queries]
    assert [p["title"] for p in board["panels"]] == [p.title for p in PANELS]
    assert {v["name"] for v in board["templating"]["list"]} == {"datasource", "job", "instance"}


def test_console_keeps_benchmark_runs_on_a_volume():
    deployment = find("Deployment", "dify-console")
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    (mount,) = [m for m in container["volumeMounts"] if env["BENCH_DB"].startswith(m["mountPath"] + "/")]
    (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    claim = find("PersistentVolumeClaim", volume["persistentVolumeClaim"]["claimName"])
    assert "ReadWriteOnce" in claim["spec"]["accessModes"]
    assert deployment["spec"]["strategy"]["type"] == "Recreate"  # one pod holds the RWO volume at a time
    assert pod["securityContext"]["fsGroup"] == pod["securityContext"]["runAsUser"]


def test_shipped_prometheus_is_the_one_the_console_reads_and_scrapes_the_annotated_pods():
    (container,) = find("Deployment", "dify-console")["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    service = find("Service", "prometheus")
    (port,) = service["spec"]["ports"]
    assert env["PROMETHEUS_URL"] == f"http://{service['metadata']['name']}:{port['port']}"
    prom = find("Deployment", "prometheus")["spec"]["template"]["spec"]
    assert prom["serviceAccountName"] == find("RoleBinding", "prometheus")["subjects"][0]["name"]
    config = yaml.safe_load(find("ConfigMap", "prometheus-config")["data"]["prometheus.yml"])
    (job,) = config["scrape_configs"]
    assert job["kubernetes_sd_configs"][0]["role"] == "pod"
    # Debian's promtool is built without Kubernetes discovery, so the relabelling is checked by applying it to
    # the labels Prometheus would discover for each Deployment's pod.
    for d in [d for d in manifests() if d["kind"] == "Deployment"]:
        meta = d["spec"]["template"]["metadata"]
        port = next(p["containerPort"] for p in d["spec"]["template"]["spec"]["containers"][0]["ports"])
        discovered = {"__address__": f"10.0.0.7:{port}", "__metrics_path__": "/metrics", "__meta_kubernetes_pod_name": "pod-1"}
        discovered.update({f"__meta_kubernetes_pod_annotation_{_label(k)}": v for k, v in meta.get("annotations", {}).items()})
        discovered.update({f"__meta_kubernetes_pod_label_{_label(k)}": v for k, v in meta["labels"].items()})
        kept = _relabel(discovered, job["relabel_configs"])
        name = d["metadata"]["name"]
        if name in ("dify-console", "dify-gateway"):
            annotations = meta["annotations"]
            assert kept is not None, name
            assert kept["job"] == name.removeprefix("dify-")  # the job names the Metrics page groups by
            assert kept["__address__"] == f"10.0.0.7:{annotations['prometheus.io/port']}"
            assert kept["__metrics_path__"] == annotations["prometheus.io/path"]
        else:
            assert kept is None, name


def _label(key: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in key)


def _relabel(labels: dict[str, str], rules: list[dict]) -> dict[str, str] | None:
    """Prometheus' `keep` and `replace` relabel actions (anchored regexes, `;`-joined sources)."""
    import re

    labels = dict(labels)
    for rule in rules:
        value = ";".join(labels.get(s, "") for s in rule["source_labels"])
        match = re.fullmatch(rule.get("regex", "(.*)"), value)
        if rule.get("action", "replace") == "keep":
            if not match:
                return None
        elif match:
            labels[rule["target_label"]] = match.expand(rule.get("replacement", "$1").replace("$", "\\"))
    return labels
