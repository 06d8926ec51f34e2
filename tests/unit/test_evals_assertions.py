"""Each assertion kind on real answers: pass, fail, and the reason it gives; the judge's verdict parser."""
from __future__ import annotations

import pytest

from lib.evals.assertions import (
    AssertionSpecError,
    Observation,
    dominant_script,
    parse_assertion,
    parse_verdict,
    verdict_result,
)


def check(spec: dict, answer: str = "", **obs):
    return parse_assertion(spec).check(Observation(answer=answer, **obs))


def test_text_assertions():
    answer = 'You asked: "Hello". Here is a simulated answer.'
    assert check({"contains": ["simulated", "Hello"]}, answer).passed
    r = check({"contains": "refund"}, answer)
    assert not r.passed and r.reason == "the answer does not contain 'refund'"
    assert check({"contains": {"value": "HERE IS", "ignore-case": True}}, answer).passed
    assert not check({"contains": "HERE IS"}, answer).passed
    r = check({"not-contains": ["error", "simulated"]}, answer)
    assert not r.passed and "contains 'simulated'" in r.reason
    assert check({"starts-with": "You asked"}, "  " + answer).passed
    assert not check({"starts-with": "Sorry"}, answer).passed
    assert check({"equals": "ok"}, " ok\n").passed and not check({"equals": "ok"}, "okay").passed
    assert check({"regex": r"simulated \w+"}, answer).reason == "matched 'simulated answer'"
    assert not check({"regex": r"^\d+$"}, answer).passed


def test_json_and_schema():
    assert check({"is-json": True}, '{"a": 1}').passed
    assert check({"is-json": True}, '```json\n{"a": 1}\n```').passed  # a fenced block, as models write it
    r = check({"is-json": True}, "not json")
    assert not r.passed and "not JSON" in r.reason
    schema = {"type": "object", "required": ["name", "age"], "properties": {"age": {"type": "integer"}}}
    assert check({"json-schema": schema}, '{"name": "a", "age": 3}').passed
    r = check({"json-schema": schema}, '{"name": "a", "age": "three"}')
    assert not r.passed and r.reason.startswith("at age:") and "'three' is not of type 'integer'" in r.reason


def test_lengths_language_and_script():
    assert check({"max-length": 5}, "12345").passed and not check({"max-length": 4}, "12345").passed
    assert check({"min-length": 5}, "12345").passed and not check({"min-length": 6}, "12345").reason.startswith("6")
    english = "This answer is written in plain English so that the detector has enough words to decide."
    assert check({"language": "en"}, english).passed
    r = check({"language": "th"}, english)
    assert not r.passed and r.reason == "detected en"
    assert dominant_script("สวัสดีครับ hello") == "thai"
    assert dominant_script("これは日本語の文章です") == "japanese"
    assert dominant_script("这是中文") == "chinese"
    assert dominant_script("안녕하세요") == "korean"
    assert dominant_script("Привет, мир") == "cyrillic"
    assert dominant_script("123 !!") is None
    assert not check({"script": "latin"}, "สวัสดีครับ").passed


def test_similarity_uses_rapidfuzz_scores():
    reference = "The refund takes five business days."
    assert check({"similar": {"reference": reference, "min": 0.9}}, "The refund takes five business days!").passed
    r = check({"similar": {"reference": reference, "min": 0.9}}, "Bananas are yellow.")
    assert not r.passed and r.reason.startswith("similarity 0.") and "0.90 wanted" in r.reason
    # token_set_ratio ignores word order and extra words; percentages are accepted for `min`
    assert check({"similar": {"reference": "days five", "min": 90, "method": "token_set_ratio"}}, reference).passed


def test_workflow_output_fields():
    outputs = {"text": "Hello world", "score": 3, "items": [{"name": "a"}]}
    assert check({"outputs.score": 3}, outputs=outputs).passed
    r = check({"outputs.score": 4}, outputs=outputs)
    assert not r.passed and r.reason == "outputs.score is 3, not 4"
    assert check({"outputs.text": {"contains": "world"}}, outputs=outputs).passed
    # a failed check says what was wanted and what the field holds
    r = check({"outputs.text": {"contains": "moon"}}, outputs=outputs)
    assert not r.passed and r.reason == "outputs.text does not contain 'moon' (it is 'Hello world')"
    r = check({"outputs.text": {"regex": "^W"}}, outputs=outputs)
    assert not r.passed and r.reason == "outputs.text has no match for /^W/ (it is 'Hello world')"
    assert check({"outputs.text": "Hi"}, outputs=outputs).reason == "outputs.text is 'Hello world', not 'Hi'"
    assert check({"outputs.items.0.name": {"regex": "^a$"}}, outputs=outputs).passed
    assert check({"outputs.nope": {"exists": False}}, outputs=outputs).passed
    r = check({"outputs.nope": "x"}, outputs=outputs)
    assert not r.passed and "absent" in r.reason and "text, score, items" in r.reason
    r = check({"outputs.text": "x"}, outputs=None)
    assert not r.passed and "only workflow apps" in r.reason


def test_time_token_and_cost_limits():
    assert check({"max-ttft-ms": 500}, ttft_s=0.4).passed
    r = check({"max-ttft-ms": 500}, ttft_s=0.75)
    assert not r.passed and r.reason == "750 ms (limit 500)"
    assert not check({"max-total-ms": 1000}, total_s=None).passed
    assert check({"max-tokens": 100}, tokens=100).passed and not check({"max-tokens": 99}, tokens=100).passed
    r = check({"max-cost": 0.001}, cost=0.002, currency="USD")
    assert not r.passed and r.reason == "0.002000 USD (limit 0.001)"
    assert check({"max-cost": 0.01}, cost=None).reason == "Dify reported no price"
    mixed = check({"max-cost": 0.01}, cost=None, currency="RMB+USD")  # a workflow with a USD and an RMB model
    assert not mixed.passed and mixed.reason == "the answer's nodes were priced in several currencies (RMB+USD): no one figure to limit"


@pytest.mark.parametrize("spec, message", [
    ({"contain": "x"}, "unknown assertion 'contain'"),
    ({"contains": "x", "regex": "y"}, "one-key mapping"),
    ("contains", "one-key mapping"),
    ({"is-json": "yes"}, "takes `true`"),
    ({"max-length": 2.5}, "whole number"),
    ({"language": "English"}, "language code"),
    ({"script": "klingon"}, "`script` is one of"),
    ({"similar": {"ref": "x"}}, "reference"),
    ({"outputs.x": {"equals": 1, "contains": 2}}, "one of"),
    ({"judge": {"rubric": ""}}, "rubric"),
    ({"contains": {"value": "x", "case": True}}, "unknown key 'case'"),
])
def test_malformed_assertions_say_what_is_wrong(spec, message):
    with pytest.raises(AssertionSpecError, match=message):
        parse_assertion(spec)


@pytest.mark.parametrize("answer, verdict", [
    ('{"pass": true, "reason": "States 391."}', (True, "States 391.")),
    ('Here is my grade: {"pass": false, "reason": "Says 392."} Hope that helps.', (False, "Says 392.")),
    ('```json\n{"verdict": "PASS", "explanation": "correct"}\n```', (True, "correct")),
    ("PASS - the answer says 391.", (True, "the answer says 391.")),
    ("**FAIL**: it gives 392.", (False, "it gives 392.")),
    ("fail", (False, "(no reason given)")),
    ("The answer looks fine to me.", None),
    ('{"score": 5}', None),
    ("", None),
    ("Passable, I guess", None),
])
def test_the_judge_verdict_parser(answer, verdict):
    assert parse_verdict(answer) == verdict


def test_an_unreadable_verdict_fails_the_check_and_says_so():
    judge = parse_assertion({"judge": {"target": "Grader", "rubric": "Mentions 391"}})
    r = verdict_result(judge, "I think it is good.")
    assert not r.passed and "the judge (Grader) answered something that is not a verdict" in r.reason
    assert "'I think it is good.'" in r.reason
    r = verdict_result(judge, "PASS because it says 391")
    assert r.passed and r.reason == "Grader: PASS, because it says 391"


def test_the_language_profiles_load_once_in_the_background_and_a_run_then_needs_no_wait():
    from lib.evals import assertions

    checks = [parse_assertion({"language": "en"})]
    assertions.preload_language_profiles()
    assert assertions._profiles_loaded.wait(30)  # loaded off the caller's thread
    assert not assertions.needs_language_profiles(checks)  # the run's panel says no "loading the language profiles"
    assertions.warm_up(checks)  # a no-op now, and a language check answers at once
    assert check({"language": "en"}, "This answer is written in plain English words.").passed


def test_reruns_while_the_profiles_load_start_no_second_loader(monkeypatch):
    import threading

    from lib.evals import assertions

    release, started = threading.Event(), []
    monkeypatch.setattr(assertions, "_profiles_loaded", threading.Event())
    monkeypatch.setattr(assertions, "_profiles_preloading", False)
    monkeypatch.setattr(assertions, "load_language_profiles", lambda: (started.append(1), release.wait(10)))
    for _ in range(5):  # the page renders again and again while the first load is under way
        assertions.preload_language_profiles()
    release.set()
    for t in threading.enumerate():
        if t.name == "langdetect-profiles":
            t.join(10)
    assert len(started) == 1
