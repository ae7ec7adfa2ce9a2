"""Read rows from any path fsspec can open (local, memory://, s3://, gs://, https://), a saved Hugging Face
dataset directory or a hub dataset id, in batches, so memory does not grow with the number of rows.

    for rows, rejects in iter_batches("data/train.jsonl"):   # rows: list[Row], rejects: list[Reject]

A malformed row never stops the read: it becomes a `Reject` naming the file, the line and what is wrong, and
the rows around it are kept. Only a file that cannot be read at all (missing, a JSON document that does not
parse, a CSV whose header repeats a column) raises `DataError`.

JSONL is parsed line by line (Python's json, about 250 MB/s here) because a bad line must cost one row, not
the block a columnar JSON reader would drop; Parquet, Arrow and saved datasets stream as Arrow record batches.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

from mixforge.data.rows import Reject, Row, preview
from mixforge.errors import DataError

Format = Literal["jsonl", "json", "csv", "tsv", "parquet", "arrow", "hf_disk", "hub"]
FORMATS: tuple[str, ...] = ("jsonl", "json", "csv", "tsv", "parquet", "arrow", "hf_disk", "hub")

BATCH_ROWS = 2_048  # rows per batch: about 4 MB of MedReason-sized rows
MAX_ROW_BYTES = 64 * 1024 * 1024  # a longer single line is rejected unread (a runaway file, not a row)
_CHUNK = 8 * 1024 * 1024  # bytes read at a time from a JSONL file
_SUFFIX_FORMAT = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".arrow": "arrow",
    ".feather": "arrow",
    ".ipc": "arrow",
}
_COMPRESSION = (".gz", ".bz2", ".xz", ".zst", ".lz4", ".zip")

Batch = tuple[list[Row], list[Reject]]


# ---- where the rows are --------------------------------------------------------------------------------------
def expand_inputs(source: str | os.PathLike[str] | Sequence[str | os.PathLike[str]]) -> list[str]:
    """A path, a glob or a list of them -> the list of paths (a glob matching nothing is an error)."""
    import fsspec

    items = [source] if isinstance(source, str | os.PathLike) else list(source)
    if not items:
        raise DataError("no input given")
    out: list[str] = []
    for item in items:
        text = os.fspath(item)
        if any(c in text for c in "*?["):
            fs, _, paths = fsspec.get_fs_token_paths(text)
            if not paths:
                raise DataError("the pattern matches no file", path=text)
            protocol = fs.protocol[0] if isinstance(fs.protocol, tuple) else fs.protocol
            out.extend(sorted(p if protocol == "file" else f"{protocol}://{p}" for p in paths))
        else:
            out.append(text)
    return out


def detect_format(path: str) -> Format:
    """The reader for `path`: by suffix (after a compression suffix), a saved dataset directory, or a hub id."""
    import fsspec

    fs, inner = fsspec.core.url_to_fs(path)
    if fs.isdir(inner):
        if fs.exists(f"{inner.rstrip('/')}/dataset_info.json") or fs.exists(
            f"{inner.rstrip('/')}/dataset_dict.json"
        ):
            return "hf_disk"
        raise DataError(
            "a directory that is not a saved Hugging Face dataset", path=path,
            hint="pass a file (or a glob such as 'dir/*.jsonl'), or a directory written by Dataset.save_to_disk",
        )
    name = inner.lower()
    for ext in _COMPRESSION:
        if name.endswith(ext):
            name = name[: -len(ext)]
    suffix = Path(name).suffix
    if suffix in _SUFFIX_FORMAT:
        if not fs.exists(inner):
            raise DataError("no such file", path=path)
        return _SUFFIX_FORMAT[suffix]  # type: ignore[return-value]
    if not fs.exists(inner):
        local = "://" not in path
        if local and path.count("/") == 1 and not path.startswith((".", "/", "~")) and not suffix:
            return "hub"
        raise DataError("no such file", path=path)
    raise DataError(
        f"cannot tell the format of {Path(name).name!r} from its name",
        path=path,
        hint=f"name it .jsonl/.json/.csv/.tsv/.parquet/.arrow, or pass format= one of {', '.join(FORMATS)}",
    )


def iter_batches(
    source: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    *,
    format: Format | None = None,
    batch_size: int = BATCH_ROWS,
    json_key: str | None = None,
    split: str = "train",
    delimiter: str | None = None,
    max_row_bytes: int = MAX_ROW_BYTES,
) -> Iterator[Batch]:
    """Yield `(rows, rejects)` batches from every input in turn. Rows are dicts as the file holds them."""
    if batch_size < 1:
        raise DataError(f"batch_size must be at least 1, got {batch_size}")
    for path in expand_inputs(source):
        fmt = format or detect_format(path)
        if fmt == "jsonl":
            with _open(path) as f:
                yield from _read_jsonl(f, path, batch_size=batch_size, max_row_bytes=max_row_bytes)
        elif fmt == "json":
            yield from _read_json(path, batch_size=batch_size, json_key=json_key, max_row_bytes=max_row_bytes)
        elif fmt in ("csv", "tsv"):
            sep = delimiter or ("\t" if fmt == "tsv" else None)
            yield from _read_csv(path, batch_size=batch_size, delimiter=sep)
        elif fmt == "parquet":
            yield from _read_parquet(path, batch_size=batch_size)
        elif fmt == "arrow":
            yield from _read_arrow(path, batch_size=batch_size)
        elif fmt == "hf_disk":
            yield from _read_hf_disk(path, batch_size=batch_size, split=split)
        elif fmt == "hub":
            yield from _read_hub(path, batch_size=batch_size, split=split)
        else:
            raise DataError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}", path=path)


def load_records(source: str | os.PathLike[str] | Sequence[str | os.PathLike[str]], **kwargs: Any) -> list[dict]:
    """Every good row as a list of dicts (small data and tests; large data: iterate `iter_batches`)."""
    return [row.record for rows, _ in iter_batches(source, **kwargs) for row in rows]


def head(source: str | os.PathLike[str], n: int = 5, **kwargs: Any) -> list[Row]:
    """The first `n` good rows, reading no further than needed."""
    out: list[Row] = []
    for rows, _ in iter_batches(source, batch_size=max(1, min(n, BATCH_ROWS)), **kwargs):
        out.extend(rows[: n - len(out)])
        if len(out) >= n:
            break
    return out


def read_prepared(path: str | os.PathLike[str]) -> Iterator[dict]:
    """Yield the records of a file `prepare` wrote (JSONL or Parquet, any fsspec path), one dict at a time.

    A directory means its train file (train.jsonl or train.parquet). A malformed line is an error here:
    prepared files are written by mixforge, so a bad one means a damaged file, not user data."""
    import fsspec

    text = os.fspath(path)
    fs, inner = fsspec.core.url_to_fs(text)
    if fs.isdir(inner):
        for name in ("train.jsonl", "train.parquet"):
            if fs.exists(f"{inner.rstrip('/')}/{name}"):
                text = f"{text.rstrip('/')}/{name}"
                break
        else:
            raise DataError("the directory holds no train.jsonl or train.parquet", path=text)
    fmt = detect_format(text)
    if fmt == "parquet":
        for rows, _ in _read_parquet(text, batch_size=BATCH_ROWS):
            for row in rows:
                yield row.record
        return
    if fmt != "jsonl":
        raise DataError("a prepared file is .jsonl or .parquet", path=text)
    with _open(text) as f:
        for rows, rejects in _read_jsonl(f, text, batch_size=BATCH_ROWS, max_row_bytes=MAX_ROW_BYTES):
            if rejects:
                first = rejects[0]
                raise DataError(first.reason, path=text, row=first.row, hint="the prepared file is damaged; "
                                "run `mixforge data prepare` again")
            for row in rows:
                yield row.record


def _open(path: str):
    import fsspec

    try:
        return fsspec.open(path, "rb", compression="infer").open()
    except FileNotFoundError as exc:
        raise DataError("no such file", path=path) from exc
    except ImportError as exc:  # s3fs / gcsfs missing
        raise DataError(f"cannot open: {exc}", path=path, hint="pip install 'mixforge[s3]' or 'mixforge[gcs]'") from exc


# ---- JSON lines ----------------------------------------------------------------------------------------------
class _DuplicateKey(ValueError):
    def __init__(self, key: str) -> None:
        self.key = key
        super().__init__(key)


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKey(key)
            seen.add(key)
    return obj


_DECODER = json.JSONDecoder(object_pairs_hook=_object)  # built once: json.loads(..., hook) builds one per call


def parse_json_line(line: bytes, *, file: str, row: int) -> tuple[dict | None, Reject | None]:
    """One JSONL line -> its object, or the reason it is not one (CR, BOM and surrounding blanks allowed)."""

    def reject(rule: str, reason: str, field: str | None = None) -> tuple[None, Reject]:
        return None, Reject(file, row, "load", rule, reason, field, preview(line))

    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as exc:
        return reject("utf8", f"invalid UTF-8 (byte 0x{line[exc.start]:02x} at byte {exc.start + 1} of the line)")
    if text.startswith("\ufeff"):
        text = text[1:]
    try:
        obj = _DECODER.decode(text)
    except json.JSONDecodeError as exc:
        if "\x00" in text:
            return reject("nul", f"a NUL byte at column {text.index(chr(0)) + 1}: not valid JSON")
        stripped = text.rstrip()
        truncated = stripped.startswith("{") and not stripped.endswith("}")
        hint = "; the line looks truncated" if truncated else ""
        return reject("json", f"not valid JSON ({exc.msg}, column {exc.colno}){hint}")
    except RecursionError:
        return reject("nesting", "JSON nested too deeply to read")
    except _DuplicateKey as exc:
        return reject("duplicate_key", f"the key {exc.key!r} appears twice in one object", exc.key)
    if not isinstance(obj, dict):
        return reject("not_object", f"a JSON {type(obj).__name__} where an object {{...}} was expected")
    return obj, None


def _read_jsonl(f, file: str, *, batch_size: int, max_row_bytes: int) -> Iterator[Batch]:
    rows: list[Row] = []
    rejects: list[Reject] = []
    line_no = 0
    pending: list[bytes] = []  # pieces of a line longer than one chunk
    pending_bytes = 0
    oversized = False  # skipping the rest of a line longer than max_row_bytes
    first = True
    while True:
        chunk = f.read(_CHUNK)
        if not chunk:
            break
        if first and chunk.startswith(b"\xef\xbb\xbf"):
            chunk = chunk[3:]
        first = False
        lines = chunk.split(b"\n")
        tail = lines.pop()  # the part after the last newline: continues in the next chunk
        for i, line in enumerate(lines):
            if i == 0 and (pending or oversized):
                line = b"".join([*pending, line])
                pending, pending_bytes = [], 0
                if oversized or len(line) > max_row_bytes:
                    oversized = False
                    line_no += 1
                    rejects.append(_too_big(file, line_no, max_row_bytes))
                    continue
            line_no += 1
            _parse_into(line, file, line_no, rows, rejects)
        if not oversized:
            pending.append(tail)
            pending_bytes += len(tail)
            if pending_bytes > max_row_bytes:
                oversized, pending, pending_bytes = True, [], 0
        if len(rows) >= batch_size:
            while len(rows) >= batch_size:
                yield rows[:batch_size], rejects
                rows, rejects = rows[batch_size:], []
    if oversized:
        rejects.append(_too_big(file, line_no + 1, max_row_bytes))
    elif pending and any(pending):
        _parse_into(b"".join(pending), file, line_no + 1, rows, rejects)
    if rows or rejects:
        yield rows, rejects


def _parse_into(line: bytes, file: str, line_no: int, rows: list[Row], rejects: list[Reject]) -> None:
    if line.endswith(b"\r"):
        line = line[:-1]  # CRLF line ends
    if not line.strip():
        return  # a blank line is not a row
    obj, bad = parse_json_line(line, file=file, row=line_no)
    if bad is not None:
        rejects.append(bad)
    else:
        rows.append(Row(file, line_no, obj))  # type: ignore[arg-type]


def _too_big(file: str, line_no: int, limit: int) -> Reject:
    return Reject(file, line_no, "load", "too_big", f"the line is longer than {limit:,} bytes; it was not read")


# ---- one JSON document ---------------------------------------------------------------------------------------
def _read_json(path: str, *, batch_size: int, json_key: str | None, max_row_bytes: int) -> Iterator[Batch]:
    with _open(path) as f:
        data = f.read()
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    if not data.strip():
        return
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise DataError(f"invalid UTF-8 (byte 0x{data[exc.start]:02x})", path=path, row=line,
                        hint="re-save the file as UTF-8") from exc
    try:
        doc = json.loads(text, object_pairs_hook=_object)
    except json.JSONDecodeError as exc:
        if exc.msg == "Extra data":  # several JSON values one after another: it is JSON lines
            yield from _read_jsonl(io.BytesIO(data), path, batch_size=batch_size, max_row_bytes=max_row_bytes)
            return
        raise DataError(f"not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}", path=path,
                        row=exc.lineno) from exc
    except RecursionError as exc:
        raise DataError("JSON nested too deeply to read", path=path) from exc
    except _DuplicateKey as exc:
        raise DataError(f"the key {exc.key!r} appears twice in one object", path=path, field=exc.key) from exc
    items = _records_of(doc, path, json_key)
    rows: list[Row] = []
    rejects: list[Reject] = []
    for i, item in enumerate(items, start=1):
        if isinstance(item, dict):
            rows.append(Row(path, i, item))
        else:
            rejects.append(Reject(path, i, "load", "not_object",
                                  f"a JSON {type(item).__name__} where an object {{...}} was expected",
                                  raw=preview(item)))
        if len(rows) >= batch_size:
            yield rows, rejects
            rows, rejects = [], []
    if rows or rejects:
        yield rows, rejects


def _records_of(doc: Any, path: str, json_key: str | None) -> list[Any]:
    """A JSON list of records, or an object holding one (named by json_key, or the only list inside it)."""
    if isinstance(doc, list):
        return doc
    if not isinstance(doc, dict):
        raise DataError(f"the JSON document is a {type(doc).__name__}, not a list of records", path=path)
    if json_key is not None:
        if not isinstance(doc.get(json_key), list):
            raise DataError(f"no list under key {json_key!r}; keys: {', '.join(doc)}", path=path, field=json_key)
        return doc[json_key]
    lists = [k for k, v in doc.items() if isinstance(v, list) and v and all(isinstance(x, dict) for x in v[:10])]
    if len(lists) == 1:
        return doc[lists[0]]
    if not lists:
        return [doc]  # one record
    raise DataError(f"the JSON object holds several lists of records ({', '.join(lists)})", path=path,
                    hint="pick one with json_key= (CLI: --json-key)")


# ---- CSV / TSV -----------------------------------------------------------------------------------------------
def _read_csv(path: str, *, batch_size: int, delimiter: str | None) -> Iterator[Batch]:
    with _open(path) as raw:
        data = raw if raw.seekable() else io.BytesIO(raw.read())
        sample = data.read(64 * 1024)
        data.seek(0)
        if delimiter is None:
            text = sample.decode("utf-8", errors="replace").lstrip("\ufeff")
            try:
                delimiter = csv.Sniffer().sniff(text, delimiters=",\t;|").delimiter
            except csv.Error:
                delimiter = ","
        stream = io.TextIOWrapper(data, encoding="utf-8-sig", errors="surrogateescape", newline="")
        reader = csv.reader(stream, delimiter=delimiter)
        try:
            header = next(reader)
        except StopIteration:
            return  # an empty file: no rows
        except csv.Error as exc:
            raise DataError(f"cannot read the CSV header: {exc}", path=path, row=1) from exc
        dupes = sorted({h for h in header if header.count(h) > 1})
        if dupes:
            raise DataError(f"the header repeats column(s) {', '.join(map(repr, dupes))}", path=path, row=1,
                            hint="rename the repeated columns so each name is used once")
        rows: list[Row] = []
        rejects: list[Reject] = []
        start = reader.line_num + 1
        while True:
            try:
                values = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:
                rejects.append(Reject(path, start, "load", "csv", f"cannot parse the row: {exc}"))
                start = reader.line_num + 1
                continue
            line_no, start = start, reader.line_num + 1
            if not values or (len(values) == 1 and not values[0].strip()):
                continue  # a blank line
            if len(values) != len(header):
                rejects.append(Reject(path, line_no, "load", "csv",
                                      f"expected {len(header)} fields, found {len(values)}",
                                      raw=preview(delimiter.join(values).encode("utf-8", "surrogateescape"))))
                continue
            bad = _first_bad_utf8(values)
            if bad is not None:
                rejects.append(Reject(path, line_no, "load", "utf8", "invalid UTF-8", header[bad],
                                      raw=preview(values[bad].encode("utf-8", "surrogateescape"))))
                continue
            rows.append(Row(path, line_no, dict(zip(header, values, strict=True))))
            if len(rows) >= batch_size:
                yield rows, rejects
                rows, rejects = [], []
        if rows or rejects:
            yield rows, rejects


def _first_bad_utf8(values: list[str]) -> int | None:
    for i, value in enumerate(values):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate from surrogateescape: the bytes were not UTF-8
            return i
    return None


# ---- Arrow: Parquet, IPC files, saved datasets, the hub ------------------------------------------------------
def _arrow_rows(path: str, batches, start: int = 1) -> Iterator[Batch]:
    n = start
    for batch in batches:
        records = batch.to_pylist()
        yield [Row(path, n + i, r) for i, r in enumerate(records)], []
        n += len(records)


def _read_parquet(path: str, *, batch_size: int) -> Iterator[Batch]:
    import pyarrow.parquet as pq

    with _open(path) as f:
        try:
            pf = pq.ParquetFile(f)
        except Exception as exc:  # noqa: BLE001 - pyarrow raises ArrowInvalid/OSError for a damaged file
            raise DataError(f"not a readable Parquet file: {exc}", path=path) from exc
        yield from _arrow_rows(path, pf.iter_batches(batch_size=batch_size))


def _read_arrow(path: str, *, batch_size: int) -> Iterator[Batch]:
    import pyarrow as pa

    with _open(path) as f:
        data = f if f.seekable() else io.BytesIO(f.read())
        try:
            reader = pa.ipc.open_file(data)
            batches = (reader.get_batch(i) for i in range(reader.num_record_batches))
        except pa.ArrowInvalid:
            data.seek(0)
            try:
                batches = iter(pa.ipc.open_stream(data))
            except pa.ArrowInvalid as exc:
                raise DataError(f"not an Arrow IPC file or stream: {exc}", path=path) from exc
        for batch in batches:
            for offset in range(0, batch.num_rows, batch_size):
                yield from _arrow_rows(path, [batch.slice(offset, batch_size)], start=1)


def _read_hf_disk(path: str, *, batch_size: int, split: str) -> Iterator[Batch]:
    from datasets import DatasetDict, load_from_disk

    ds = load_from_disk(path)
    if isinstance(ds, DatasetDict):
        if split not in ds:
            raise DataError(f"no split {split!r}; the dataset has {', '.join(ds)}", path=path,
                            hint="pick one with input_split= (CLI: --input-split)")
        ds = ds[split]
    yield from _arrow_rows(path, ds.with_format("arrow").iter(batch_size=batch_size))


def _read_hub(name: str, *, batch_size: int, split: str) -> Iterator[Batch]:
    from datasets import load_dataset

    try:
        ds = load_dataset(name, split=split, streaming=True)
        n = 1
        for batch in ds.iter(batch_size=batch_size):
            keys = list(batch)
            count = len(batch[keys[0]]) if keys else 0
            yield [Row(name, n + i, {k: batch[k][i] for k in keys}) for i in range(count)], []
            n += count
    except DataError:
        raise
    except Exception as exc:  # noqa: BLE001 - offline, unknown id, gated dataset ... all read as one message
        raise DataError(f"cannot load hub dataset: {type(exc).__name__}: {exc}".splitlines()[0][:300], path=name,
                        hint="without network access, download it elsewhere and pass the file or directory") from exc
