"""The one JSONL reader: rows are line numbers (blank lines counted); a bad line is an error naming its row,
or skipped when the file is a log that may be half written."""

from __future__ import annotations

import pytest

from mixforge.errors import DataError
from mixforge.io.jsonl import read_jsonl


def test_rows_are_line_numbers_and_blank_lines_are_skipped(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_text('{"a": 1}\n\n  \n{"a": 2}\n{"a": 3}', encoding="utf-8")
    assert list(read_jsonl(path)) == [(1, {"a": 1}), (4, {"a": 2}), (5, {"a": 3})]


@pytest.mark.parametrize(("line", "reason"), [('{"a": ', "not valid JSON"), ("[1, 2]", "must be a JSON object")])
def test_a_bad_line_names_its_row(tmp_path, line, reason):
    path = tmp_path / "a.jsonl"
    path.write_text('{"a": 1}\n\n' + line + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=reason) as err:
        list(read_jsonl(path))
    assert err.value.row == 3 and err.value.path == str(path)
    assert list(read_jsonl(path, skip_malformed=True)) == [(1, {"a": 1})]


def test_a_missing_file_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="file not found"):
        list(read_jsonl(tmp_path / "none.jsonl"))
