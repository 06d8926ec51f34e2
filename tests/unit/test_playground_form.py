"""The input form's length limit: a text over an app's `max_length` is kept and said to be over, never dropped.

Streamlit's `max_chars` drops a paste that is too long, whole and without a word; the Playground's widgets
take any length instead, and `length_notice` / `validate_inputs` say what happens to the text.
"""
from __future__ import annotations

from lib.playground.form import FormField, length_notice, parse_fields, validate_inputs

FIELDS = parse_fields([
    {"text-input": {"variable": "topic", "label": "Topic", "required": True, "max_length": 200}},
    {"paragraph": {"variable": "details", "label": "Details", "max_length": "4000"}},
    {"text-input": {"variable": "free", "label": "Free text"}},  # no limit
    {"json_object": {"variable": "spec", "label": "Spec", "max_length": 10}},  # Dify's max_length is for text fields
])
TOPIC, DETAILS, FREE, SPEC = FIELDS
PASTE = "x" * 100_000


def test_a_text_over_the_limit_is_named_with_its_size_the_limit_and_how_much_to_cut():
    assert length_notice(TOPIC, PASTE) == (
        "Topic has 100,000 characters, over this app's limit of 200: nothing is sent until it fits. "
        "Shorten it by 99,800 characters."
    )
    assert length_notice(DETAILS, "y" * 4001).endswith("Shorten it by 1 character.")


def test_a_text_that_fits_or_a_field_without_a_limit_has_no_notice():
    assert length_notice(TOPIC, "x" * 200) is None
    assert length_notice(TOPIC, "") is None and length_notice(TOPIC, None) is None
    assert length_notice(FREE, PASTE) is None
    assert length_notice(SPEC, '{"a": "long enough"}') is None
    assert length_notice(FormField("n", "N", "number", max_length=2), 12345) is None


def test_the_limit_counts_characters_not_bytes():
    assert length_notice(TOPIC, "สวัสดี" * 33) is None  # 198 characters, 594 bytes in UTF-8
    assert length_notice(TOPIC, "🙏" * 201) is not None


def test_an_over_long_text_is_not_sent_and_the_reason_says_so():
    form = validate_inputs(FIELDS, {"topic": PASTE, "details": "fine"})
    assert form.errors == ["Topic takes at most 200 characters; it has 100,000."]
    assert "topic" not in form.inputs and form.inputs["details"] == "fine"
    fitted = validate_inputs(FIELDS, {"topic": PASTE[:200]})
    assert fitted.ok and fitted.inputs["topic"] == PASTE[:200]
