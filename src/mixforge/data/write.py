"""Write prepared records to any fsspec path, atomically: a temporary file beside the target, renamed into
place only when complete, so a reader never sees half a file. The manifest is written last.

    with RecordWriter("out/train.jsonl", format="jsonl") as w:   # or "parquet", or "bedrock" (JSONL)
        w.write(records)
    w.rows, w.sha256
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any, Literal

from mixforge.errors import DataError
from mixforge.io.atomic import AtomicFile

OutputFormat = Literal["jsonl", "parquet", "bedrock"]
OUTPUT_FORMATS: tuple[str, ...] = ("jsonl", "parquet", "bedrock")
SUFFIX = {"jsonl": ".jsonl", "parquet": ".parquet", "bedrock": ".jsonl"}


class RecordWriter:
    """Writes batches of records as JSONL, Bedrock-format JSONL or Parquet; counts rows and hashes bytes."""

    def __init__(self, path: str | os.PathLike[str], *, format: OutputFormat = "jsonl") -> None:
        if format not in OUTPUT_FORMATS:
            raise DataError(f"unknown output format {format!r}; choose one of {', '.join(OUTPUT_FORMATS)}")
        self.path, self.format = os.fspath(path), format
        self.rows = 0
        self.sha256: str | None = None
        self.bytes = 0
        self._file = AtomicFile(self.path)
        self._parquet: Any = None
        self._schema: Any = None

    def write(self, records: list[dict[str, Any]]) -> None:
        if not records:
            return
        if self.format == "parquet":
            self._write_parquet(records)
        else:
            if self.format == "bedrock":
                from mixforge.data.messages import to_bedrock

                records = [to_bedrock(r) for r in records]
            # ASCII JSON (non-ASCII as \\u escapes): the C encoder's fast path, about 1.7x faster than
            # ensure_ascii=False here, and any JSON reader gets the same strings back
            self._file.write("".join(json.dumps(r) + "\n" for r in records).encode("ascii"))
        self.rows += len(records)

    def write_lines(self, lines: list[bytes]) -> None:
        """JSON lines as they are (each ending in a newline): the split stage routes staged lines unparsed."""
        if self.format == "jsonl":
            self._file.write(b"".join(lines))
            self.rows += len(lines)
        else:
            self.write([json.loads(line) for line in lines])

    def _write_parquet(self, records: list[dict[str, Any]]) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        if self._parquet is None:
            table = pa.Table.from_pylist(records)
            self._schema = table.schema
            self._parquet = pq.ParquetWriter(self._file.handle, self._schema)
        else:
            try:
                table = pa.Table.from_pylist(records, schema=self._schema)
            except (pa.ArrowInvalid, pa.ArrowTypeError, KeyError) as exc:
                raise DataError(f"a batch does not fit the Parquet schema of the first: {exc}", path=self.path,
                                hint="write JSONL (format='jsonl') for records whose fields vary") from exc
        self._parquet.write_table(table)

    def close(self) -> None:
        if self._parquet is not None:
            self._parquet.close()
        elif self.format == "parquet":  # no rows: still a valid, empty Parquet file
            import pyarrow as pa
            import pyarrow.parquet as pq

            pq.write_table(pa.table({"id": pa.array([], pa.string())}), self._file.handle)
        if self.format == "parquet":
            self._file.handle.flush()
            self.sha256 = self._finish_hashing_parquet()
        else:
            self.sha256 = self._file.commit()
        self.bytes = self._file.bytes

    def _finish_hashing_parquet(self) -> str:
        # pyarrow wrote to the handle directly: hash the committed file by reading it back
        self._file.commit()
        digest = hashlib.sha256()
        with self._file.fs.open(self._file.final, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
                self._file.bytes += len(block)
        return digest.hexdigest()

    def abort(self) -> None:
        self._file.abort()

    def __enter__(self) -> RecordWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def join(base: str, name: str) -> str:
    """`base/name` for local paths and URLs alike."""
    return f"{base.rstrip('/')}/{name}" if "://" in base else os.path.join(base, name)
