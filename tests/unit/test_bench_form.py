"""lib.bench.form: the Benchmark page's fields -> a RunConfig, or the sentence the page shows (no Streamlit)."""
from __future__ import annotations

import pytest

from lib.bench.form import FormError, FormFields, FormIncomplete, config_from_form

SIM = [("Simulator · chat", "http://127.0.0.1:5001/v1")]


def test_a_closed_loop_form_becomes_its_run_config():
    config = config_from_form(FormFields(
        targets=SIM, concurrency=3, stop="requests", requests=7, duration=None, query="How fast?", sweep="1; 2, 4",
        inputs='{"topic": "rivers"}', headers="X-Sim-Ttft-Ms: 20\n\nX-Trace: a:b", slo_ttft=800, slo_ok=0.99, name="n",
    ))
    assert (config.target, config.base_url, config.load, config.concurrency) == ("Simulator · chat", SIM[0][1], "closed", 3)
    assert config.requests == 7 and config.duration_s is None and config.sweep == [1.0, 2.0, 4.0]
    assert [p.query for p in config.prompts] == ["How fast?"] and config.prompts_source == "query"
    assert config.inputs == {"topic": "rivers"} and config.headers == {"X-Sim-Ttft-Ms": "20", "X-Trace": "a:b"}
    assert [str(t) for t in config.slo] == ["ttft_ms.p95 <= 800", "success_rate >= 0.99"] and config.name == "n"


def test_an_open_loop_form_keeps_rate_arrivals_and_cap_and_drops_the_users():
    config = config_from_form(FormFields(targets=SIM, load="open loop", concurrency=9, rate=5.5, arrival="constant", cap=3))
    assert (config.load, config.rate, config.arrival, config.max_in_flight, config.concurrency) == ("open", 5.5, "constant", 3, 1)
    closed = config_from_form(FormFields(targets=SIM, rate=5.5, arrival="constant", cap=3))
    assert (closed.rate, closed.arrival, closed.max_in_flight) == (1.0, "poisson", None)  # a closed loop has none


def test_prompts_from_a_list_and_a_file():
    listed = config_from_form(FormFields(targets=SIM, source="a list", query="one\n\n two \n"))
    assert [p.query for p in listed.prompts] == ["one", "two"] and listed.prompts_source == "list"
    filed = config_from_form(FormFields(targets=SIM, source="a file", upload_name="p.csv", upload=b"\xef\xbb\xbfquery,topic\nhi,rivers\n"))
    assert filed.prompts[0].query == "hi" and filed.prompts[0].inputs == {"topic": "rivers"} and filed.prompts_source == "file:p.csv"


@pytest.mark.parametrize("fields, says", [
    (FormFields(), "Pick at least one target."),
    (FormFields(targets=SIM, source="a file"), "Upload a prompts file."),
])
def test_nothing_to_run_yet_is_a_prompt_not_a_mistake(fields, says):
    with pytest.raises(FormIncomplete) as caught:
        config_from_form(fields)
    assert str(caught.value) == says


@pytest.mark.parametrize("fields, says", [
    (FormFields(targets=SIM, sweep="1, x"),
     "Sweep levels are numbers separated by commas, such as 1, 2, 4, 8: \u201cx\u201d is not a number."),
    (FormFields(targets=SIM, sweep="1.5, 2"), "A concurrency sweep takes whole numbers of users."),
    (FormFields(targets=SIM, sweep="0"), "Sweep levels must be positive."),  # not "Sweep levels: sweep levels"
    (FormFields(targets=SIM, inputs="{bad"),
     'Inputs must be a JSON object such as {"topic": "rivers"}; this one is not valid JSON (line 1, column 2).'),
    (FormFields(targets=SIM, inputs="[1]"), 'Inputs must be a JSON object such as {"topic": "rivers"}, not a list or a single value.'),
    (FormFields(targets=SIM, headers="X-Fine: 1\nno colon"),
     "Each extra header reads Name: value, one a line; \u201cno colon\u201d has no colon."),
    (FormFields(targets=SIM, source="a list", query="\n  \n"), "The prompt list is empty."),
    (FormFields(targets=SIM, source="a file", upload_name="p.csv", upload=b"query\n\xff\xfe"), "The file p.csv is not UTF-8 text"),
    (FormFields(targets=SIM * 2, sweep="1, 2"), "Compare targets or sweep levels, not both in one run"),
    (FormFields(targets=SIM, load="open loop", rate=0.0), "Rate: Input should be greater than 0."),
])
def test_bad_fields_get_a_sentence(fields, says):
    with pytest.raises(FormError) as caught:
        config_from_form(fields)
    text = str(caught.value)
    assert not isinstance(caught.value, FormIncomplete)
    assert says in text and "Value error" not in text and "could not convert" not in text and "pydantic" not in text
