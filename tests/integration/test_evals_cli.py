"""`python -m lib.evals` as CI runs it: each exit code, --json, --junit, --min-pass-rate and --baseline."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

from tests.support.procs import ROOT

CHAT = "Simulator · chat"


@pytest.fixture
def evals(tmp_path, sim):
    """Run the CLI with a store of the test's own; the simulator's targets point at `sim`."""
    env = {**os.environ, "SIMULATOR_URL": sim.url, "DIFY_API_BASE": "", "DIFY_API_KEY": "",
           "EVALS_DB": str(tmp_path / "evals.sqlite")}

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "lib.evals", *args], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=120, check=False)

    return run


def test_exit_0_when_every_case_passes_and_json_is_the_only_stdout(evals):
    r = evals("run", "examples/simulator-chat.yaml", "--target", CHAT, "--target", "Simulator · advanced-chat", "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["passed"] is True and doc["run"]["total"] == 8 and doc["run"]["pass_rate"] == 1.0
    assert {x["target"] for x in doc["results"]} == {CHAT, "Simulator · advanced-chat"}
    first = doc["results"][0]
    assert first["answer"].startswith("You asked:") and first["ttft_s"] is not None and first["turns"][0]["timing"]
    assert "passed: 8/8" in r.stderr


def test_exit_1_on_a_failure_with_a_junit_file_ci_reads(evals, tmp_path):
    report = tmp_path / "reports" / "evals.xml"
    r = evals("run", "examples/simulator-fails.yaml", "--target", CHAT, "--junit", str(report))
    assert r.returncode == 1, r.stderr
    assert "FAILED: 1/5 cases passed" in r.stdout and "wrong-language" in r.stdout
    assert "[simulated fault]" in r.stdout  # rich markup does not eat the error's brackets
    root = ET.parse(report).getroot()
    assert root.tag == "testsuites" and root.get("tests") == "5"
    assert (root.get("failures"), root.get("errors")) == ("3", "1")
    cases = {c.get("name"): c for c in root.iter("testcase")}
    assert set(cases) == {"passes", "wrong-language", "too-long", "server-error", "judged"}
    assert cases["passes"].find("failure") is None and cases["passes"].find("error") is None
    failure = cases["wrong-language"].find("failure")
    assert "script: thai: the answer is written in latin" in failure.text
    assert cases["server-error"].find("error").get("type") == "StreamError"
    assert cases["passes"].find("system-out").text.startswith('You asked: "Hello"')


def test_min_pass_rate_turns_a_partial_failure_into_a_pass(evals):
    assert evals("run", "examples/simulator-fails.yaml", "-t", CHAT, "--min-pass-rate", "0.2").returncode == 0
    r = evals("run", "examples/simulator-fails.yaml", "-t", CHAT, "--min-pass-rate", "50", "--json")
    assert r.returncode == 1 and json.loads(r.stdout)["min_pass_rate"] == 0.5


def test_exit_2_for_a_bad_suite_with_its_line(evals, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\ncases:\n  - query: hi\n    assert:\n      - max-lenght: 10\n")
    r = evals("run", str(bad), "--target", CHAT)
    assert r.returncode == 2
    assert "bad suite file: bad.yaml line 5: cases[0].assert[0]: unknown assertion 'max-lenght'" in r.stderr
    assert "Traceback" not in r.stderr
    r = evals("run", str(tmp_path / "absent.yaml"), "--target", CHAT)
    assert r.returncode == 2 and "no such file" in r.stderr
    r = evals("run", "examples/simulator-chat.yaml", "--target", "No such target")
    assert r.returncode == 2 and "No target named 'No such target'" in r.stderr


def test_exit_3_when_the_suite_cannot_run(evals, sim):
    r = evals("run", "examples/simulator-chat.yaml", "--base-url", sim.url, "--api-key", "app-wrong-key-9876")
    assert r.returncode == 3, r.stdout + r.stderr
    assert "could not run the suite" in r.stderr and "401" in r.stderr
    assert "app-wrong-key-9876" not in r.stdout + r.stderr and "app-…9876" in r.stderr
    r = evals("run", "examples/simulator-chat.yaml", "--base-url", "http://127.0.0.1:9/v1", "--api-key", "app-x-12345678")
    assert r.returncode == 3 and "Could not connect" in r.stderr


def test_baseline_diff_list_and_show(evals, tmp_path):
    first = json.loads(evals("run", "examples/simulator-chat.yaml", "-t", CHAT, "--json").stdout)["run"]["id"]
    suite = tmp_path / "changed.yaml"
    suite.write_text((ROOT / "examples" / "simulator-chat.yaml").read_text().replace(
        "- script: thai", "- script: latin"))
    r = evals("run", str(suite), "-t", CHAT, "--baseline", first, "--json")
    assert r.returncode == 1
    diff = json.loads(r.stdout)["diff"]
    assert diff["baseline"] == first and [c["cell"] for c in diff["newly_failing"]] == ["thai · Simulator · chat"]
    second = json.loads(r.stdout)["run"]["id"]
    r = evals("diff", first, second)
    assert r.returncode == 1 and "1 newly failing" in r.stdout and "thai" in r.stdout
    listed = evals("list")
    assert first in listed.stdout and second in listed.stdout and "4/4" in listed.stdout
    shown = evals("show", first, "--json")
    assert json.loads(shown.stdout)["run"]["passed"] == 4
    assert evals("run", "examples/simulator-chat.yaml", "-t", CHAT, "--baseline", "eval-nope").returncode == 2


def test_junit_names_repeats_and_groups_variants(evals, tmp_path):
    report = tmp_path / "wf.xml"
    r = evals("run", "examples/simulator-workflow.yaml", "-t", "Simulator · workflow", "--repeats", "2", "--junit", str(report))
    assert r.returncode == 0, r.stdout + r.stderr
    root = ET.parse(report).getroot()
    suites = [s.get("name") for s in root.iter("testsuite")]
    assert suites == ["Simulator workflow smoke · Simulator · workflow · engineers",
                      "Simulator workflow smoke · Simulator · workflow · students"]
    names = sorted(c.get("name") for c in root.iter("testcase"))
    assert names == sorted(["topic-in-output #1", "topic-in-output #2", "thai-topic #1", "thai-topic #2"] * 2)
    assert root.get("tests") == "8" and root.get("failures") == "0"


def test_a_killed_run_keeps_its_answers_and_lists_as_crashed(sim_factory, tmp_path):
    import time

    from lib.evals import EvalStore

    slow = sim_factory("--ttft-ms", "300", "--tokens-per-s", "100", "--jitter", "0")
    suite = tmp_path / "many.yaml"
    suite.write_text("cases:\n" + "".join(f"  - {{id: c{i}, query: 'question {i}'}}\n" for i in range(30)))
    db = tmp_path / "evals.sqlite"
    env = {**os.environ, "EVALS_DB": str(db)}
    proc = subprocess.Popen([sys.executable, "-m", "lib.evals", "run", str(suite), "--base-url", slow.url,
                             "--api-key", "app-sim-chat", "--concurrency", "1"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # until the first answers are saved
            runs = EvalStore(db).runs() if db.exists() else []
            if runs and len(EvalStore(db).get_run(runs[0].id).results) >= 2:
                break
            time.sleep(0.1)
        proc.kill()
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    (run,) = EvalStore(db).runs()
    assert run.status == "crashed"
    saved = EvalStore(db).get_run(run.id)
    assert 2 <= len(saved.results) < 30 and all(r.passed for r in saved.results)
