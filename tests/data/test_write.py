"""Atomic writes: a file appears only when complete; a failure leaves neither it nor a temporary file."""

from __future__ import annotations

import hashlib
import json

import pytest

from mixforge.data.write import RecordWriter
from mixforge.io.atomic import write_json_atomic


def test_a_failed_write_leaves_nothing_behind(tmp_path):
    target = tmp_path / "out" / "train.jsonl"
    with pytest.raises(RuntimeError), RecordWriter(target) as w:
        w.write([{"id": "1", "text": "a"}])
        raise RuntimeError("disk on fire")
    assert not target.exists() and list((tmp_path / "out").iterdir()) == []


def test_nothing_is_visible_until_close_and_the_hash_matches(tmp_path):
    target = tmp_path / "train.jsonl"
    w = RecordWriter(target)
    w.write([{"id": "1", "text": "é ünï 中"}])
    assert not target.exists()
    w.close()
    data = target.read_bytes()
    assert w.sha256 == hashlib.sha256(data).hexdigest() and w.rows == 1
    assert json.loads(data) == {"id": "1", "text": "é ünï 中"}  # ASCII JSON with \\u escapes, same strings back
    assert data.isascii()


def test_parquet_and_manifest(tmp_path):
    import pyarrow.parquet as pq

    with RecordWriter(tmp_path / "a.parquet", format="parquet") as w:
        w.write([{"id": "1", "messages": [{"role": "user", "content": "q"}]}])
        w.write([{"id": "2", "messages": [{"role": "assistant", "content": "a"}]}])
    assert pq.read_table(tmp_path / "a.parquet").num_rows == 2
    assert w.sha256 == hashlib.sha256((tmp_path / "a.parquet").read_bytes()).hexdigest()
    assert write_json_atomic(tmp_path / "manifest.json", {"rows": 2}, indent=2) == tmp_path / "manifest.json"
    assert (tmp_path / "manifest.json").read_bytes() == b'{\n  "rows": 2\n}\n'
