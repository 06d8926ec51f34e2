"""lib.workload: the one reader of workload files (Playground batch, benchmark CLI/page, Locust) and its fill."""
from __future__ import annotations

import pytest

from lib import workload as W
from lib.bench import prompts as P
from lib.bench.form import FormError, FormFields, config_from_form


def test_csv_with_bom_semicolons_and_quoted_delimiters():
    table = W.read_table("c.csv", "\ufeffquery; topic\n\"a; b\";rivers\n;\n\u0e2a\u0e30;\n".encode())
    assert table.columns == ["query", "topic"] and table.name == "c.csv"
    assert W.cases(table) == [W.Case("a; b", {"topic": "rivers"}), W.Case("\u0e2a\u0e30", {})]


def test_one_column_csv_keeps_delimiters_in_its_text():
    # The delimiter is sniffed on the header only: commas in the questions stay in the question.
    table = W.read_table("q.csv", b"query\nhello, world\nyes; no\n")
    assert [c.query for c in W.cases(table)] == ["hello, world", "yes; no"]


def test_nested_and_flat_jsonl_and_json_arrays():
    text = b'{"query": "a", "inputs": {"query": "x", "topic": "t"}}\n\n{"query": "b", "topic": "u", "n": ""}\n'
    assert W.cases(W.read_table("c.jsonl", text)) == [W.Case("a", {"query": "x", "topic": "t"}), W.Case("b", {"topic": "u"})]
    flat = W.read_table("c.jsonl", text).flat()
    assert flat.columns == ["query", "topic", "n"] and flat.rows[0] == {"query": "a", "topic": "t"}  # the row's own key wins
    assert W.cases(W.read_table("c.json", b'[{"query": "a"}]')) == [W.Case("a", {})]
    assert W.cases(W.read_table("c.json", b'{"query": "a"}\n{"query": "b"}\n'))[1].query == "b"  # JSONL named .json
    assert W.cases(W.read_table("prompts", b'{"query": "a"}\n'))[0].query == "a"  # no suffix: sniffed
    assert W.cases(W.read_table("prompts", b"query,topic\na,b\n"))[0].inputs == {"topic": "b"}


@pytest.mark.parametrize("name, data, says", [
    ("p.csv", b"query\n\xff\xfe",
     "The file p.csv is not UTF-8 text (invalid start byte at byte 6): save it as UTF-8 (CSV or JSONL) and try again."),
    ("p.jsonl", b'{"query": "a"}\n{nope\n', "p.jsonl, line 2: not valid JSON (Expecting property name enclosed in double quotes)."),
    ("p.jsonl", b'[1]\n', 'p.jsonl, line 1: each line must be a JSON object like {"query": "..."}.'),
    ("p.jsonl", b'{"inputs": [1]}\n', 'p.jsonl, line 1: `inputs` must be an object like {"topic": "rivers"}.'),
    ("p.json", b'[1, 2]', "p.json: a .json file must be an array of objects; or use JSONL, one object a line."),
    ("p.csv", b"", "p.csv has no header row: its first line must name the columns (e.g. query,topic)."),
    ("p.csv", b"query\n\n", "p.csv has no rows."),
    ("p.csv", b"query,topic\na,b,c\n",
     "p.csv, line 2: more cells than the header has columns; put a cell that holds the delimiter in double quotes."),
    ("p.xlsx", b"PK\x03\x04", "p.xlsx is a spreadsheet: save it as a .csv (or write a .jsonl) and use that."),
])
def test_bad_files_get_one_sentence_everywhere(name, data, says):
    with pytest.raises(W.WorkloadFileError) as caught:
        W.read_table(name, data)
    assert str(caught.value) == says
    # The benchmark page says the same (capitalised and ended as its sentences are).
    with pytest.raises(FormError) as form:
        config_from_form(FormFields(targets=[("sim", "http://127.0.0.1:1/v1")], source="a file", upload_name=name, upload=data))
    assert says[1:] in str(form.value)
    with pytest.raises(W.WorkloadFileError) as bench:
        P.from_bytes(data, name)
    assert str(bench.value) == says


def test_row_limit_unreadable_path_and_no_case(tmp_path):
    with pytest.raises(W.WorkloadFileError, match="has 3 rows; at most 2 are taken"):
        W.read_table("p.csv", b"query\na\nb\nc\n", max_rows=2)
    with pytest.raises(W.WorkloadFileError, match=r"Cannot read the file /no/such\.csv: No such file or directory\."):
        W.read_path("/no/such.csv")
    with pytest.raises(W.WorkloadFileError, match="p.jsonl has no row with a query or an input value."):
        W.cases(W.read_table("p.jsonl", b'{"query": ""}\n'))
    path = tmp_path / "p.csv"
    path.write_bytes("\ufeffquery\nhi\n".encode())
    assert P.from_file(path)[0].query == "hi"


FIELDS = [
    {"control": "text-input", "variable": "topic", "required": True},
    {"control": "paragraph", "variable": "notes", "required": False},
    {"control": "select", "variable": "style", "required": True, "options": ["Tweet", "Blog"]},
    {"control": "select", "variable": "tone", "required": True, "options": ["A"], "default": "B"},
    {"control": "number", "variable": "n", "required": True},
    {"control": "checkbox", "variable": "ok", "required": True},
    {"control": "json_object", "variable": "cfg", "required": True},
    {"control": "file", "variable": "doc", "required": True},
]


def test_fill_required_gives_every_required_field_a_value_of_its_type():
    filled = W.fill_required(FIELDS, {"n": 5, "topic": ""}, "the query", {"style": "Blog", "extra": 1})
    assert filled == {"style": "Blog", "extra": 1, "n": 5, "topic": "the query", "tone": "B", "ok": False, "cfg": {}}
    assert "topic" not in W.fill_required(FIELDS[:1], {}, "")  # a text field with no query and no default stays empty
    prompts = P.fill_required([P.Prompt(query=None)], FIELDS[:1], {})
    assert prompts[0].inputs == {"topic": P.DEFAULT_QUERY}  # the bench's default query fills a text field


def test_a_trace_file_that_is_not_utf8_gets_the_same_sentence(tmp_path):
    path = tmp_path / "t.csv"
    path.write_bytes(b"timestamp\n0\n\xff1\n")
    with pytest.raises(W.WorkloadFileError, match=r"^The file t.csv is not UTF-8 text \(invalid start byte at byte 12\)"):
        P.read_trace(path)
