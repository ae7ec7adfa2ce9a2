"""Build src/mixforge/assets/tokenizer_corpus.txt: the text the tiny-model factory trains its tokenizer on.

    python scripts/build_tokenizer_corpus.py

The text is the documentation that ships with Python's standard library (PSF licence): plain English prose
and code, enough to learn a few thousand byte-level BPE merges. The file is committed, so the factory is
deterministic and never needs this script at run time.
"""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path

MODULES = [
    "abc", "argparse", "array", "ast", "asyncio", "base64", "bisect", "calendar", "collections", "colorsys",
    "contextlib", "copy", "csv", "dataclasses", "datetime", "decimal", "difflib", "email", "enum", "fractions",
    "functools", "gzip", "hashlib", "heapq", "hmac", "html", "http.client", "imaplib", "inspect", "io",
    "ipaddress", "itertools", "json", "logging", "mailbox", "math", "mimetypes", "operator", "optparse",
    "os", "pathlib", "pickle", "pprint", "queue", "random", "re", "sched", "secrets", "shlex", "shutil",
    "smtplib", "socket", "sqlite3", "statistics", "string", "struct", "subprocess", "tarfile", "tempfile",
    "textwrap", "threading", "time", "timeit", "typing", "unittest", "urllib.parse", "uuid", "wave",
    "weakref", "xml.dom.minidom", "zipfile", "zlib",
]
OUT = Path(__file__).resolve().parents[1] / "src/mixforge/assets/tokenizer_corpus.txt"
MAX_BYTES = 600_000  # 0.6 MB: enough for an 8k vocabulary, small enough to ship


def docs_of(module_name: str) -> list[str]:
    module = importlib.import_module(module_name)
    texts = [inspect.getdoc(module) or ""]
    for name in sorted(vars(module)):
        obj = getattr(module, name)
        if name.startswith("_") or getattr(obj, "__module__", None) != module.__name__:
            continue
        if inspect.isclass(obj) or inspect.isfunction(obj):
            texts.append(inspect.getdoc(obj) or "")
    return [t.strip() for t in texts if t and len(t) > 40]


def main() -> None:
    seen: set[str] = set()
    parts: list[str] = []
    size = 0
    for module_name in MODULES:
        for text in docs_of(module_name):
            if text in seen:
                continue
            seen.add(text)
            parts.append(text)
            size += len(text.encode()) + 2
            if size >= MAX_BYTES:
                break
        if size >= MAX_BYTES:
            break
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text("\n\n".join(parts) + "\n", encoding="utf-8")
    print(f"wrote {OUT} ({OUT.stat().st_size:,} bytes, {len(parts)} documents)")


if __name__ == "__main__":
    main()
