"""Suite files: what loads, and for what does not, the line and what is wrong."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from lib.evals import SuiteError, load_suite, parse_suite

ROOT = Path(__file__).resolve().parents[2]


def error_of(text: str, **kw) -> SuiteError:
    with pytest.raises(SuiteError) as info:
        parse_suite(text, source="s.yaml", **kw)
    return info.value


def test_the_examples_load_with_defaults_variants_and_turns():
    chat = load_suite(ROOT / "examples" / "simulator-chat.yaml")
    assert [c.id for c in chat.cases] == ["greeting", "thai", "japanese", "conversation"]
    greeting = chat.cases[0]
    # defaults' assertions come first, then the case's own
    assert [a.kind for a in greeting.assertions[:3]] == ["max-length", "not-contains", "max-total-ms"]
    assert "similar" in [a.kind for a in greeting.assertions]
    conversation = chat.cases[3]
    assert [t.query for t in conversation.turns] == ["What is Dify?", "And what is its API called?"]
    assert conversation.turns[1].assertions[0].kind == "contains"
    workflow = load_suite(ROOT / "examples" / "simulator-workflow.yaml")
    assert [v.name for v in workflow.variants] == ["engineers", "students"]
    assert workflow.cases[0].turns[0].inputs == {"audience": "Engineers", "topic": "Rate limits"}
    fails = load_suite(ROOT / "examples" / "simulator-fails.yaml")
    assert fails.judge_targets() == ["Simulator · chat"]  # from defaults.judge


def test_an_unknown_assertion_names_its_line_and_the_known_kinds():
    err = error_of("name: x\ncases:\n  - query: hi\n    assert:\n      - contains: hi\n      - contain: x\n")
    assert err.line == 6
    assert str(err).startswith("s.yaml line 6: cases[0].assert[1]: unknown assertion 'contain' (did you mean "
                               "'contains'?); known: contains")
    assert "did you mean" not in str(error_of("cases:\n  - query: hi\n    assert:\n      - zzz: x\n"))


def test_a_misspelt_key_and_a_missing_field_name_their_lines():
    err = error_of("cases:\n  - query: hi\n  - qeury: hello\n")
    assert (err.line, err.where) == (3, "cases[1].qeury") and "unknown key 'qeury' (did you mean 'query'?)" in str(err)
    err = error_of("cases:\n  - turns:\n      - query: a\n      - inputs: {x: 1}\n")
    assert err.line == 4 and "'query' is required" in str(err)


def test_bad_values_inside_an_assertion_point_at_them():
    err = error_of("cases:\n  - query: hi\n    assert:\n      - similar:\n          reference: a\n          min: 7000\n")
    assert err.line == 6 and "similar.min" in str(err)
    err = error_of("cases:\n  - query: hi\n    assert:\n      - regex: '(unclosed'\n")
    assert err.line == 4 and "not a valid regular expression" in str(err)
    err = error_of("cases:\n  - query: hi\n    assert:\n      - json-schema: {type: strin}\n")
    assert err.line == 4 and "not a valid JSON Schema" in str(err)
    err = error_of("cases:\n  - query: hi\n    assert:\n      - max-ttft-ms: fast\n")
    assert "takes a number" in str(err)


def test_syntax_errors_give_the_line_for_yaml_and_json():
    err = error_of("cases:\n  - query: hi\n    assert: [contains: x\n")
    assert err.line is not None and "not valid YAML" in str(err)
    err = error_of('{\n  "cases": [\n    {"query": "hi",}\n  ]\n}\n', json_syntax=True)
    assert err.line == 3 and "not valid JSON" in str(err)


def test_a_quote_or_bracket_never_closed_points_at_where_it_opened():
    # PyYAML finds the problem at the end of the file; the line to fix is where the quote or bracket began
    err = error_of('name: x\ncases:\n  - id: a\n    query: "Hello\n    assert:\n      - contains: x\n')
    assert err.line == 4 and "never closed" in str(err)
    err = error_of("cases:\n  - {id: a, query: [unclosed\n\n\n")
    assert err.line == 2 and "never closed" in str(err)
    err = error_of("cases:\n  - id: a\n    query: x\n  bad: 1\n")  # not at the end: the problem's own line
    assert err.line == 4 and "never closed" not in str(err)


def test_json_suites_load_and_their_errors_have_lines_too(tmp_path):
    path = tmp_path / "s.json"
    suite = {"name": "j", "cases": [{"id": "a", "query": "hi", "assert": [{"contains": "hi"}]},
                                    {"id": "b", "query": "x", "assert": [{"nope": 1}]}]}
    path.write_text(json.dumps(suite, indent=2))
    with pytest.raises(SuiteError) as info:
        load_suite(path)
    text = path.read_text().splitlines()
    assert '"nope"' in text[info.value.line - 1]
    suite["cases"][1]["assert"] = [{"max-length": 10}]
    path.write_text(json.dumps(suite))
    assert [c.id for c in load_suite(path).cases] == ["a", "b"]


def test_structure_rules():
    err = error_of("name: empty\ncases: []\n")
    assert (err.line, str(err)) == (2, "s.yaml line 2: cases: a suite needs at least one case")
    err = error_of("cases:\n  - {id: a, query: x}\n  - {id: b, query: y}\n  - {id: a, query: z}\n")
    assert (err.line, err.where) == (4, "cases[2].id") and str(err).endswith("two cases have the id 'a': ids must be unique")
    assert str(error_of("")).startswith("s.yaml: the file is empty: a suite is a mapping with `cases:`")
    assert str(error_of("# only a comment\n")).startswith("s.yaml: the file is empty")
    assert "not both" in str(error_of("cases:\n  - query: x\n    turns: [a, b]\n"))
    assert "needs a target" in str(error_of("cases:\n  - query: x\n    assert:\n      - judge: {rubric: be nice}\n"))
    assert "a mapping with `cases:`" in str(error_of("- just\n- a list\n"))
    err = error_of("cases:\n  - query: hi\n    repeats: 0\n")
    assert err.line == 3 and "greater than or equal to 1" in str(err)


def test_a_missing_file_is_a_suite_error(tmp_path):
    with pytest.raises(SuiteError, match="no such file"):
        load_suite(tmp_path / "absent.yaml")


def test_files_must_exist_beside_the_suite(tmp_path):
    (tmp_path / "a.txt").write_text("x")
    path = tmp_path / "s.yaml"
    path.write_text("cases:\n  - query: hi\n    files:\n      - {path: a.txt}\n      - {path: missing.txt}\n")
    with pytest.raises(SuiteError) as info:
        load_suite(path)
    assert info.value.line == 5 and "no file 'missing.txt'" in str(info.value)
    path.write_text("cases:\n  - query: hi\n    files:\n      - {url: 'https://example.com/a.png'}\n")
    with pytest.raises(SuiteError, match="transfer_method"):
        load_suite(path)
    path.write_text("cases:\n  - query: hi\n    files:\n      - {path: a.txt}\n"
                    "      - {type: image, transfer_method: remote_url, url: 'https://example.com/a.png'}\n")
    assert len(load_suite(path).cases[0].turns[0].files) == 2
