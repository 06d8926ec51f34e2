"""A batch's headline counts each row once: a row skipped for bad input is never counted as answered, and the
sentence says how many were skipped and why."""
from __future__ import annotations

from lib.playground.batch import BatchItem, BatchRow, skip_reasons, tally

EMPTY_QUERY = "The query is empty: a chat app needs a message in the `query` column."


def rows(*statuses: str) -> list[BatchRow]:
    out = []
    for n, status in enumerate(statuses, start=1):
        errors = [EMPTY_QUERY] if status == "invalid" else []
        out.append(BatchRow(BatchItem(row=n, query="" if errors else f"q{n}", inputs={}, errors=errors), status=status))
    return out


def test_a_skipped_row_is_not_answered_and_the_sentence_says_why():
    t = tally(rows("done", "done", "done", "invalid"))
    assert (t.rows, t.answered, len(t.skipped)) == (4, 3, 1)
    assert t.sentence() == f"Answered 3 of 4 rows; 1 skipped for bad input — row 4: {EMPTY_QUERY}"


def test_every_way_a_row_ends_is_counted_once():
    t = tally(rows("done", "error", "stopped", "cancelled", "invalid", "running", "queued"))
    assert (t.answered, t.failed, t.stopped, t.cancelled, t.unfinished, len(t.skipped)) == (1, 1, 1, 1, 2, 1)
    assert t.sentence().startswith("Answered 1 of 7 rows; 1 failed; 1 stopped midway; 1 cancelled before sending; "
                                   "2 not finished; 1 skipped for bad input — row 5: ")
    assert tally(rows("done", "done")).sentence() == "Answered 2 of 2 rows."
    assert tally(rows("done")).sentence() == "Answered 1 of 1 row."


def test_skip_reasons_group_rows_with_the_same_reason_and_stay_short():
    items = [BatchItem(2, "", {}, ["Topic is required."]), BatchItem(5, "", {}, ["Topic is required."]),
             BatchItem(7, "", {}, ["Style must be one of: A, B."])]
    assert skip_reasons(items) == "rows 2, 5: Topic is required. Row 7: Style must be one of: A, B."
    many = [BatchItem(n, "", {}, [f"Reason {n}."]) for n in range(1, 6)]
    assert skip_reasons(many) == "row 1: Reason 1. Row 2: Reason 2. Row 3: Reason 3. 2 more rows for other reasons (see the table)."
    lots = [BatchItem(n, "", {}, ["Topic is required."]) for n in range(1, 15)]
    assert skip_reasons(lots) == "rows 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 and 4 more: Topic is required."
