"""The simulator's judge rule against lib.evals' own grading prompt and verdict parser."""
from __future__ import annotations

from lib.evals.assertions import Observation, judge_prompt, parse_verdict
from lib.simulator.grader import NOT_A_PROMPT, grade, quoted_phrases


def _verdict(rubric: str, answer: str) -> tuple[bool, str] | None:
    obs = Observation(query="What is the refund window?", answer=answer)
    return parse_verdict(grade(judge_prompt(rubric, obs)))


def test_pass_when_every_quoted_phrase_is_in_the_answer_case_insensitively():
    assert _verdict('Mentions "14 days" and \'Refund\'.', "A refund takes 14 DAYS.\n\nRubric: x") == (
        True, "the answer contains '14 days', 'Refund'")


def test_fail_names_the_missing_phrase_and_an_unquoted_rubric_is_refused_with_a_verdict():
    assert _verdict('Mentions "14 days" and "receipt".', "A refund takes 14 days.") == (
        False, "the answer lacks 'receipt'")
    passed, reason = _verdict("Is polite.", "Sure!") or (None, "")
    assert passed is False and "quotes none" in reason


def test_anything_but_a_grading_prompt_gets_no_verdict():
    assert grade("Hello") == NOT_A_PROMPT and parse_verdict(NOT_A_PROMPT) is None
    assert quoted_phrases("say “hi” or 'yo'") == ["hi", "yo"]
