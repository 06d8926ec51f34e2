"""A completion app as a judge: where the grading prompt goes in its input form, and forms it cannot fill."""
from __future__ import annotations

import pytest

from lib.dify.models import AppParameters
from lib.evals.judges import JudgeFormError, completion_inputs


def form(*fields: tuple[str, dict]) -> AppParameters:
    return AppParameters.model_validate({"user_input_form": [{control: spec} for control, spec in fields]})


def test_the_prompt_goes_into_query_and_required_variables_get_their_defaults():
    params = form(("text-input", {"variable": "topic", "required": True, "default": "grading"}),
                  ("select", {"variable": "style", "required": True, "default": "", "options": ["Short", "Long"]}),
                  ("number", {"variable": "words", "required": False}),
                  ("paragraph", {"variable": "notes", "required": False}),
                  ("paragraph", {"variable": "query", "required": True}))
    assert completion_inputs(params, "J") == ("query", {"topic": "grading", "style": "Short"})


def test_without_query_the_first_paragraph_else_the_first_text_input_takes_it():
    assert completion_inputs(form(("text-input", {"variable": "a"}), ("paragraph", {"variable": "b"})), "J") == ("b", {})
    assert completion_inputs(form(("number", {"variable": "n"}), ("text-input", {"variable": "a"})), "J") == ("a", {})


def test_a_form_the_judge_cannot_fill_says_what_to_change():
    with pytest.raises(JudgeFormError, match="no text variable to take the grading prompt"):
        completion_inputs(form(("number", {"variable": "n", "required": True, "default": 1})), "J")
    with pytest.raises(JudgeFormError) as err:
        completion_inputs(form(("paragraph", {"variable": "query"}), ("text-input", {"variable": "topic", "required": True}),
                               ("number", {"variable": "n", "required": True})), "J")
    assert "requires 'topic', 'n' besides 'query'" in str(err.value) and "give them defaults" in str(err.value)
