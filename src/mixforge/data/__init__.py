"""Data preparation: load any input, map it to canonical records, sanitize, validate, filter, split, save.

    from mixforge.data import prepare, read_prepared
    report = prepare("raw.jsonl", mapping="question=q,answer=a", method="sft_lora", model="tiny-chat", out_dir="out")
    for record in read_prepared("out/train.jsonl"): ...
"""

from mixforge.data.load import iter_batches, load_records, read_prepared
from mixforge.data.mapping import ColumnMapping
from mixforge.data.messages import from_bedrock, to_bedrock
from mixforge.data.pipeline import PrepareReport, prepare, validate_input
from mixforge.data.sanitize import build_sanitizer, sanitize_text

__all__ = [
    "ColumnMapping",
    "PrepareReport",
    "build_sanitizer",
    "from_bedrock",
    "iter_batches",
    "load_records",
    "prepare",
    "read_prepared",
    "sanitize_text",
    "to_bedrock",
    "validate_input",
]
