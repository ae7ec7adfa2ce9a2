"""Tokenized records on disk: tokenize once, in parallel, then memory-map the result in every later run, resume
and rank.

    store = token_store(tokenizer, "prepared/train.jsonl", max_seq_len=2048, pairs=False)
    len(store); store[i]            # a StoredTokens (or a TokenizedPair of them): numpy views into the file
    store.source_index()            # the mixer's SourceIndex: token and loss-token counts as numpy arrays

A store is a folder under `$MIXFORGE_HOME/tokens/`, named by a key over everything that decides its contents:
the data (sha256 of the file's bytes, or of its records), the tokenizer (vocabulary, merges, special tokens),
the chat template, max_seq_len, the record kind (SFT/CPT rows or preference pairs) and the tokenizing code
itself. Any change gives a new key, so a stale store is never read. Inside:

    tokens.arrow   Arrow IPC file, uncompressed, one row per record, read through a memory map:
                   input_ids list<int32>, loss_spans list<int32> ([start, end) pairs of the tokens that carry
                   loss: labels are input_ids there and -100 elsewhere), length, loss_tokens, truncated (int32),
                   row (int64: the 1-based line of the record in a JSONL file, else its position).
                   Preference pairs hold chosen_* and rejected_* columns instead of input_ids and loss_spans;
                   length and loss_tokens are then the sums of both sides and truncated the larger.
    meta.json      written last: key parts, record count, content fingerprint. A folder without it is no store.

A data file's sha256 is remembered in `.sha256/` beside the stores and reused only while the file's device, inode,
size, mtime and ctime are unchanged (`fingerprint.file_sha256_memo`): a cached start reads no data, and any write
to the file (which always changes its ctime) hashes it again, so a changed file never meets a stale store.

Runs never delete stores: `list_stores()` shows them (newest use first, with their size) and
`remove_stores(keep=N)` deletes all but the N most recently used.

The folder is built beside its final name and renamed into place (a crash leaves no half-written store). In a
distributed run rank 0 builds it while the other ranks wait for the finished folder. Tokenizing runs in
`num_proc` forked processes over chunks of records, in order; the parent only writes their record batches, so
its memory stays flat whatever the size of the data (about 5 bytes per token on disk, none in memory).
"""

from __future__ import annotations

import errno
import gc
import hashlib
import itertools
import json
import multiprocessing
import os
import shutil
import signal
import tempfile
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from mixforge.fingerprint import canonical_record, file_sha256, file_sha256_memo, json_sha256, records_sha256
from mixforge.machine import usable_cpus
from mixforge.train import tokenize as tokenize_module
from mixforge.train.tokenize import IGNORE, TokenizedPair, encode_chats, tokenize_record

STORE_VERSION = 1
META = "meta.json"
TOKENS = "tokens.arrow"
SHA256_MEMO = ".sha256"  # under the stores' root: data files' digests, reused while a file's stat is unchanged
CHUNK_ROWS = 256  # records per task handed to a worker (about 256k tokens of MedReason-sized records)
MIN_PARALLEL_ROWS = 2_048  # below this, forking workers costs more than it saves
SIDES = ("chosen", "rejected")


# ---------------------------------------------------------------------------------------------------------
# one tokenized record, as the batcher reads it
# ---------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class StoredTokens:
    """A record's tokens as views into the memory-mapped store (what `Tokenized` is for records in memory)."""

    input_ids: np.ndarray  # (length,) int32, read-only view
    labels: np.ndarray  # (length,) int32, IGNORE outside the loss spans
    truncated: int  # tokens cut off at max_seq_len
    loss_tokens: int


def mask_spans(mask: np.ndarray) -> np.ndarray:
    """[start, end) runs of True, flattened as start0, end0, start1, ... (int32)."""
    return np.flatnonzero(np.diff(np.concatenate(([0], mask.view(np.int8), [0])))).astype(np.int32)


def spans_of(ids: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """The [start, end) runs of tokens that carry loss, flattened as start0, end0, start1, ... (int32)."""
    mask = labels != IGNORE
    if not np.array_equal(labels[mask], ids[mask]):
        raise ValueError("a label differs from its input token: the store keeps loss spans, not free labels")
    return mask_spans(mask)


def labels_from_spans(ids: np.ndarray, spans: np.ndarray) -> np.ndarray:
    labels = np.full(len(ids), IGNORE, dtype=np.int32)
    for start, end in spans.reshape(-1, 2):
        labels[start:end] = ids[start:end]
    return labels


# ---------------------------------------------------------------------------------------------------------
# tokenizing a chunk of records (in a worker, or in-process for small data)
# ---------------------------------------------------------------------------------------------------------
_WORKER: dict[str, Any] = {}  # the tokenizer and settings, set before forking so workers inherit them


# numpy <-> Arrow over the same bytes, for the store's null-free int32/int64 columns. pyarrow's own `pa.array(ndarray)`
# and `Array.to_numpy` import pandas (0.4 s) in every process that writes or opens a store: each tokenizing worker
# and every run that trains without MLflow (which imports pandas itself).
_ARROW_INTS = {np.dtype(np.int32): pa.int32(), np.dtype(np.int64): pa.int64()}
_NUMPY_INTS = {arrow: dtype for dtype, arrow in _ARROW_INTS.items()}


def _arrow_ints(values: np.ndarray) -> pa.Array:
    values = np.ascontiguousarray(values)
    return pa.Array.from_buffers(_ARROW_INTS[values.dtype], len(values), [None, pa.py_buffer(values)])


def _numpy_ints(array: pa.Array) -> np.ndarray:
    """A zero-copy view of a null-free int32/int64 array's values (its slice offset included)."""
    dtype = _NUMPY_INTS[array.type]
    if array.null_count:
        raise ValueError(f"a token store column holds {array.null_count} nulls")
    if not len(array):
        return np.zeros(0, dtype)
    return np.frombuffer(array.buffers()[1], dtype=dtype, count=len(array), offset=array.offset * dtype.itemsize)


def _list_column(arrays: list[np.ndarray]) -> pa.ListArray:
    offsets = np.zeros(len(arrays) + 1, dtype=np.int32)
    np.cumsum([len(a) for a in arrays], out=offsets[1:])
    values = np.concatenate(arrays).astype(np.int32, copy=False) if arrays else np.zeros(0, np.int32)
    return pa.ListArray.from_arrays(_arrow_ints(offsets), _arrow_ints(values))


def _tokenize_records(tokenizer, records: list[dict], *, max_seq_len: int, pairs: bool
                      ) -> list[tuple[tuple[np.ndarray, np.ndarray, int], ...]]:
    """Per record, (ids int32, loss mask bool, tokens cut) for its one side, or for chosen and rejected: every
    conversation of the chunk through one `encode_chats` call, as `tokenize_record` / `tokenize_preference`
    build them one by one."""
    conversations: list[list[dict]] = []
    slots: list[tuple] = []  # per record: indices into conversations, or a finished triple (text records)
    for record in records:
        if pairs:
            prompt = list(record["prompt"])
            answers = [list(v) if isinstance(v, list) else [{"role": "assistant", "content": str(v)}]
                       for v in (record["chosen"], record["rejected"])]
            slots.append((len(conversations), len(conversations) + 1))
            conversations.extend(prompt + a for a in answers)
        elif "messages" in record:
            messages = record["messages"]
            if "label" in record and messages and messages[-1]["role"] != "assistant":
                messages = [*messages, {"role": "assistant", "content": str(record["label"])}]
            slots.append((len(conversations),))
            conversations.append(messages)
        else:
            tok = tokenize_record(tokenizer, record, max_seq_len=max_seq_len)
            ids, labels = np.asarray(tok.input_ids, np.int32), np.asarray(tok.labels, np.int32)
            slots.append(((ids, labels != IGNORE, tok.truncated),))
    done = encode_chats(tokenizer, conversations, max_seq_len=max_seq_len)
    return [tuple(done[x] if isinstance(x, int) else x for x in slot) for slot in slots]


def tokenize_chunk(tokenizer, records: list[dict], rows: list[int], *, max_seq_len: int, pairs: bool
                   ) -> tuple[pa.RecordBatch, bytes]:
    """Records -> one Arrow record batch of the store's columns, and their canonical bytes (for the fingerprint)."""
    sides: dict[str, tuple[list[np.ndarray], list[np.ndarray]]] = {}
    lengths, loss, cut = (np.zeros(len(records), np.int32) for _ in range(3))
    names = SIDES if pairs else ("",)
    for name in names:
        sides[name] = ([], [])
    for i, parts in enumerate(_tokenize_records(tokenizer, records, max_seq_len=max_seq_len, pairs=pairs)):
        for name, (ids, mask, truncated) in zip(names, parts, strict=True):
            sides[name][0].append(ids)
            sides[name][1].append(mask_spans(mask))
            lengths[i] += len(ids)
            loss[i] += int(np.count_nonzero(mask))
            cut[i] = max(cut[i], truncated)
    columns: dict[str, pa.Array] = {}
    for name, (ids, spans) in sides.items():
        prefix = f"{name}_" if name else ""
        columns[f"{prefix}input_ids"] = _list_column(ids)
        columns[f"{prefix}loss_spans"] = _list_column(spans)
    columns |= {"length": _arrow_ints(lengths), "loss_tokens": _arrow_ints(loss), "truncated": _arrow_ints(cut),
                "row": _arrow_ints(np.asarray(rows, dtype=np.int64))}
    return pa.RecordBatch.from_pydict(columns), b"".join(canonical_record(r) for r in records)


def _default_signals() -> None:
    """Workers die on SIGTERM (the inherited handler of a training run would only note a stop request, so
    `Pool.terminate` would wait forever) and leave Ctrl-C to the parent."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _worker_chunk(task: tuple[list, list[int], bool]) -> tuple[pa.RecordBatch, bytes]:
    items, rows, raw = task
    collecting = gc.isenabled()
    gc.disable()  # a chunk allocates ~1M small objects (token offsets), none in cycles: no collection passes (-8%)
    try:
        records = [json.loads(line) for line in items] if raw else items
        return tokenize_chunk(_WORKER["tokenizer"], records, rows, max_seq_len=_WORKER["max_seq_len"],
                              pairs=_WORKER["pairs"])
    finally:
        if collecting:
            gc.enable()


# ---------------------------------------------------------------------------------------------------------
# reading records: a local JSONL file line by line (real line numbers), or any iterable of records
# ---------------------------------------------------------------------------------------------------------
def _jsonl_chunks(path: str, chunk_rows: int) -> Iterator[tuple[list, list[int], bool]]:
    """Chunks of raw (unparsed) lines with their 1-based line numbers; blank lines skipped. Workers parse."""
    lines: list[bytes] = []
    rows: list[int] = []
    with open(path, "rb") as fh:
        for row, line in enumerate(fh, 1):
            if line.strip():
                lines.append(line)
                rows.append(row)
                if len(lines) == chunk_rows:
                    yield lines, rows, True
                    lines, rows = [], []
    if lines:
        yield lines, rows, True


def _record_chunks(rows_and_records: Iterable[tuple[int, dict]], chunk_rows: int
                   ) -> Iterator[tuple[list, list[int], bool]]:
    """Chunks of records with the rows their reader gave them (a file's line numbers, which skip blank and
    filtered-out lines: `mix trace` cites them)."""
    chunk: list[dict] = []
    rows: list[int] = []
    for row, record in rows_and_records:
        chunk.append(record)
        rows.append(row)
        if len(chunk) == chunk_rows:
            yield chunk, rows, False
            chunk, rows = [], []
    if chunk:
        yield chunk, rows, False


def is_local_jsonl(data: Any) -> bool:
    return isinstance(data, (str, os.PathLike)) and str(data).endswith(".jsonl") and Path(data).is_file()


# ---------------------------------------------------------------------------------------------------------
# the key
# ---------------------------------------------------------------------------------------------------------
def tokenizer_fingerprint(tokenizer) -> str:
    """sha256 of what decides token ids: the fast tokenizer's full definition and the special-token ids."""
    h = hashlib.sha256(tokenizer.backend_tokenizer.to_str().encode())
    h.update(json.dumps([tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id,
                         type(tokenizer).__name__]).encode())
    return h.hexdigest()


def store_key(*, data: str, tokenizer: str, chat_template: str | None, max_seq_len: int, pairs: bool) -> dict:
    """Every input of a store's contents, including the source of the tokenizing code."""
    code = hashlib.sha256(Path(tokenize_module.__file__).read_bytes() + Path(__file__).read_bytes()).hexdigest()
    return {"version": STORE_VERSION, "data": data, "tokenizer": tokenizer,
            "chat_template": hashlib.sha256((chat_template or "").encode()).hexdigest(),
            "max_seq_len": int(max_seq_len), "kind": "preference" if pairs else "sft", "code": code}


def key_digest(key: dict) -> str:
    return json_sha256(key)[:32]


def default_root() -> Path:
    from mixforge.models.registry import mixforge_home

    return mixforge_home() / "tokens"


# ---------------------------------------------------------------------------------------------------------
# the store
# ---------------------------------------------------------------------------------------------------------
class _ListColumn:
    """One list<int32> column as numpy: per chunk its offsets and values (zero-copy views of the mapped file)."""

    def __init__(self, column: pa.ChunkedArray) -> None:
        self.offsets = [_numpy_ints(c.offsets) for c in column.chunks]
        self.values = [_numpy_ints(c.values) for c in column.chunks]

    def get(self, chunk: int, i: int) -> np.ndarray:
        off = self.offsets[chunk]
        return self.values[chunk][off[i]:off[i + 1]]


class TokenStore:
    """A finished store, memory-mapped: `len`, `store[i]` (or a slice, as a list) and the mixer's index."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.meta = json.loads((self.path / META).read_text())
        try:  # its mtime is when the store was last used: `remove_stores` keeps the newest
            os.utime(self.path / META)
        except PermissionError:  # a read-only shared cache is still read
            pass
        self.pairs = self.meta["key"]["kind"] == "preference"
        self.table = pa.ipc.open_file(pa.memory_map(str(self.path / TOKENS))).read_all()
        self.fingerprint: str = self.meta["fingerprint"]
        self.lengths = self._ints("length")
        self.loss_tokens = self._ints("loss_tokens")
        self.truncated = self._ints("truncated")
        self.rows = self._ints("row")
        sizes = [len(c) for c in self.table.column("length").chunks]
        self._starts = np.concatenate(([0], np.cumsum(sizes)[:-1])).astype(np.int64) if sizes else np.zeros(0, np.int64)
        prefixes = [f"{s}_" for s in SIDES] if self.pairs else [""]
        self._columns = {p: (_ListColumn(self.table.column(f"{p}input_ids")),
                             _ListColumn(self.table.column(f"{p}loss_spans"))) for p in prefixes}

    def _ints(self, name: str) -> np.ndarray:
        chunks = [_numpy_ints(c) for c in self.table.column(name).chunks]
        if len(chunks) == 1:
            return chunks[0]
        return np.concatenate(chunks) if chunks else np.zeros(0, _NUMPY_INTS[self.table.schema.field(name).type])

    def __len__(self) -> int:
        return self.table.num_rows

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self._item(i) for i in range(*index.indices(len(self)))]
        if not -len(self) <= index < len(self):
            raise IndexError(f"record {index} of a store of {len(self)}")
        return self._item(int(index) % len(self))

    def __iter__(self):
        return (self._item(i) for i in range(len(self)))

    def _item(self, i: int):
        chunk = int(np.searchsorted(self._starts, i, side="right")) - 1
        j = i - int(self._starts[chunk])

        def side(prefix: str) -> StoredTokens:
            ids_col, spans_col = self._columns[prefix]
            ids = ids_col.get(chunk, j)
            spans = spans_col.get(chunk, j)
            return StoredTokens(ids, labels_from_spans(ids, spans), int(self.truncated[i]),
                                int((spans[1::2] - spans[0::2]).sum()))

        if self.pairs:
            return TokenizedPair(side("chosen_"), side("rejected_"))
        return side("")

    def source_index(self, location: str = ""):
        """What the mixer needs, straight from the store's columns (no records, no token ids)."""
        from mixforge.mix.sampler import SourceIndex

        return SourceIndex(num_records=len(self), tokens=self.lengths, loss_tokens=self.loss_tokens,
                           fingerprint=self.fingerprint, location=location, rows=self.rows)


def _in_order(pool, chunks: Iterable, window: int) -> Iterator:
    """Worker results in submission order, with at most `window` chunks in flight (Pool.imap would read the
    whole input into its task queue at once)."""
    pending: deque = deque()
    for chunk in chunks:
        pending.append(pool.apply_async(_worker_chunk, (chunk,)))
        if len(pending) >= window:
            yield pending.popleft().get()
    while pending:
        yield pending.popleft().get()


def _write(out: Path, chunks: Iterable[tuple[list, list[int], bool]], *, tokenizer, max_seq_len: int, pairs: bool,
           num_proc: int, key: dict) -> None:
    """Tokenize `chunks` (in `num_proc` forked workers, results in order) into out/tokens.arrow, then meta.json."""
    h, n, t0 = hashlib.sha256(), 0, time.perf_counter()
    writer = pool = None
    _WORKER.update(tokenizer=tokenizer, max_seq_len=max_seq_len, pairs=pairs)
    try:
        if num_proc > 1:
            # workers inherit the tokenizer by fork; telling the Rust tokenizer first keeps it from warning that
            # its own thread pool was used before the fork
            before = os.environ.get("TOKENIZERS_PARALLELISM")
            os.environ["TOKENIZERS_PARALLELISM"] = "false"
            # and the parent's objects (torch, transformers: hundreds of MB) go to the permanent generation first:
            # a worker's garbage collection would otherwise touch every one of them and copy their pages
            gc.freeze()
            try:
                pool = multiprocessing.get_context("fork").Pool(num_proc, initializer=_default_signals)
            finally:
                gc.unfreeze()
                if before is None:
                    del os.environ["TOKENIZERS_PARALLELISM"]
                else:
                    os.environ["TOKENIZERS_PARALLELISM"] = before
            results = _in_order(pool, chunks, window=2 * num_proc)
        else:
            results = map(_worker_chunk, chunks)
        for batch, canonical in results:
            if writer is None:
                writer = pa.ipc.new_file(str(out / TOKENS), batch.schema)
            writer.write_batch(batch)
            h.update(canonical)
            n += batch.num_rows
        if writer is None:  # no records: an empty table of the right shape
            empty, _ = tokenize_chunk(tokenizer, [], [], max_seq_len=max_seq_len, pairs=pairs)
            writer = pa.ipc.new_file(str(out / TOKENS), empty.schema)
        writer.close()
        writer = None
        if pool is not None:
            pool.close()
    finally:
        if writer is not None:
            writer.close()
        if pool is not None:
            pool.terminate()
            pool.join()
        _WORKER.clear()
    meta = {"key": key, "num_records": n, "fingerprint": h.hexdigest(), "seconds": round(time.perf_counter() - t0, 3)}
    (out / META).write_text(json.dumps(meta, indent=1))  # the marker: written last, inside the folder renamed last


def _processes(chunks: Iterator, num_proc: int | None, chunk_rows: int) -> tuple[Iterator, int]:
    """`num_proc`, or when None the CPUs this process may use, but one process for small data (looked ahead)."""
    if num_proc is not None:
        return chunks, num_proc
    ahead = list(itertools.islice(chunks, -(-MIN_PARALLEL_ROWS // chunk_rows)))
    small = sum(len(c[0]) for c in ahead) < MIN_PARALLEL_ROWS
    return itertools.chain(ahead, chunks), 1 if small else usable_cpus()


def token_store(
    tokenizer,
    data: str | os.PathLike[str] | Callable[[], Iterable[tuple[int, dict]]],
    *,
    max_seq_len: int,
    pairs: bool = False,
    root: str | os.PathLike[str] | None = None,
    data_key: str | None = None,
    num_proc: int | None = None,
    rank: int = 0,
    chunk_rows: int = CHUNK_ROWS,
    wait_s: float = 0.2,
) -> TokenStore:
    """The store of `data` tokenized with `tokenizer`, built on the first call and reused after.

    `data` is a local JSONL file of canonical records (keyed by the sha256 of its bytes; rows are its line
    numbers), or a function returning a fresh iterable of (row, record) (keyed by `data_key` when given, else by the
    sha256 of the records' canonical JSON, which costs one extra pass). Rank 0 builds a missing store; other
    ranks wait for its marker. `num_proc` defaults to the CPUs this process may use."""
    local = is_local_jsonl(data)
    root = Path(root or default_root())
    if local:  # remembered by the file's (device, inode, size, mtime, ctime): a cached start reads no data
        digest = "file:" + file_sha256_memo(data, root / SHA256_MEMO)
    elif data_key is not None:
        digest = data_key
    else:
        digest = "records:" + records_sha256(record for _, record in data())[0]
    key = store_key(data=digest, tokenizer=tokenizer_fingerprint(tokenizer),
                    chat_template=getattr(tokenizer, "chat_template", None), max_seq_len=max_seq_len, pairs=pairs)
    path = root / key_digest(key)
    if (path / META).is_file():
        return TokenStore(path)
    if rank != 0:
        while not (path / META).is_file():
            time.sleep(wait_s)
        return TokenStore(path)

    chunks = _jsonl_chunks(str(data), chunk_rows) if local else _record_chunks(data(), chunk_rows)
    chunks, num_proc = _processes(chunks, num_proc, chunk_rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        _write(tmp, chunks, tokenizer=tokenizer, max_seq_len=max_seq_len, pairs=pairs, num_proc=num_proc, key=key)
        _publish(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # gone already when published
    return TokenStore(path)


def _publish(tmp: Path, path: Path) -> None:
    """Rename the finished store into place. Two processes sharing a cache (two jobs, not ranks of one) may build
    the same key at once: the first rename wins and the later builder keeps that store (same key, same
    contents), never replacing a store another process may be reading."""
    try:
        os.rename(tmp, path)  # onto an existing non-empty folder this fails, atomically: no window
    except OSError as error:
        if error.errno not in (errno.ENOTEMPTY, errno.EEXIST):
            raise
        if not (path / META).is_file():  # a folder without its marker is no store: put ours in its place
            from mixforge.io.atomic import replace_directory

            replace_directory(tmp, path)


# ---------------------------------------------------------------------------------------------------------
# keeping the cache small: stores are never removed by a run, only by this
# ---------------------------------------------------------------------------------------------------------
def list_stores(root: str | os.PathLike[str] | None = None) -> list[dict]:
    """The finished stores under `root` (default $MIXFORGE_HOME/tokens), most recently used first: path, MiB on
    disk, records, kind, data key, and when it was last opened (a run opening a store marks it used)."""
    root = Path(root or default_root())
    found = []
    for path in root.iterdir() if root.is_dir() else []:
        if path.name.startswith(".") or not (path / META).is_file():  # the sha256 memo, unfinished builds
            continue
        meta = json.loads((path / META).read_text())
        found.append({"path": path, "mib": sum(f.stat().st_size for f in path.iterdir()) / 2**20,
                      "records": meta["num_records"], "kind": meta["key"]["kind"], "data": meta["key"]["data"],
                      "last_used": (path / META).stat().st_mtime})
    return sorted(found, key=lambda s: -s["last_used"])


def remove_stores(root: str | os.PathLike[str] | None = None, *, keep: int) -> list[Path]:
    """Delete every finished store but the `keep` most recently used; returns the removed folders. A run that has
    a removed store open keeps reading it (its memory map outlives the file); a later run builds it again."""
    removed = [s["path"] for s in list_stores(root)[keep:]]
    for path in removed:
        shutil.rmtree(path)
    return removed


# ---------------------------------------------------------------------------------------------------------
# what the recipe hands to token_store: a prepared file, or a general replay source
# ---------------------------------------------------------------------------------------------------------
def prepared_data(path: str) -> str | Callable[[], Iterable[tuple[int, dict]]]:
    """A prepared file (or folder) as `token_store` data: the local JSONL itself (rows are its lines), else a
    reader of any other form `read_prepared` takes (Parquet, remote paths)."""
    local = Path(path) / "train.jsonl" if Path(path).is_dir() else Path(path)
    if is_local_jsonl(local):
        return str(local)
    from mixforge.data.load import read_prepared

    return lambda: enumerate(read_prepared(path), 1)


def source_data(source) -> tuple[Callable[[], Iterable[tuple[int, dict]]], str | None]:
    """A general replay source as `token_store` data and key: a file source is keyed by its bytes and by how it
    is read (format, columns, filter); a hub source by its records."""
    from mixforge.mix.catalog import read_source_rows

    key = None
    if source.kind != "hub" and Path(source.location).is_file():
        spec = json.dumps([source.format, source.columns, source.where], sort_keys=True, default=str)
        key = f"source:{file_sha256(source.location)}:{hashlib.sha256(spec.encode()).hexdigest()}"
    return (lambda: read_source_rows(source)), key
