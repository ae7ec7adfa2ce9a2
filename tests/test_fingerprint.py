"""One fingerprint: a record, a file and a JSON value hash the same wherever mixforge compares them."""

from __future__ import annotations

import hashlib

from mixforge.fingerprint import canonical_record, file_sha256, json_sha256, records_sha256
from mixforge.mix.sampler import SourceIndex


def test_records_hash_their_canonical_json_lines():
    records = [{"b": 1, "a": "é"}, {"id": "2"}]
    lines = b'{"a": "\xc3\xa9", "b": 1}\n{"id": "2"}\n'
    assert b"".join(canonical_record(r) for r in records) == lines
    assert records_sha256(records) == (hashlib.sha256(lines).hexdigest(), 2)
    assert SourceIndex.from_records(records).fingerprint == "sha256:" + hashlib.sha256(lines).hexdigest()[:32]


def test_files_and_json(tmp_path):
    (tmp_path / "a.bin").write_bytes(b"abc")
    assert file_sha256(tmp_path / "a.bin") == hashlib.sha256(b"abc").hexdigest()
    assert file_sha256(f"file://{tmp_path / 'a.bin'}") == hashlib.sha256(b"abc").hexdigest()
    assert json_sha256({"b": 1, "a": 2}) == json_sha256({"a": 2, "b": 1}) == hashlib.sha256(b'{"a": 2, "b": 1}').hexdigest()
