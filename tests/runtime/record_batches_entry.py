"""A spy around the real entry point: every rank appends the (source, index) list the mixer hands it for each
optimizer step to `<output>/batches/rank-<r>.jsonl`, then the unchanged `mixforge.train.entry` runs.

Used by the distributed tests to see which records each process really trained on (launch it with
`TorchrunRuntime(entry="record_batches_entry")` and this folder on PYTHONPATH)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from mixforge.mix import sampler as sampler_module
from mixforge.train import entry

_next_batch = sampler_module.MixSampler.next_batch


def install(out: Path) -> None:
    folder = out / "batches"
    folder.mkdir(parents=True, exist_ok=True)

    def next_batch(self):
        batch = _next_batch(self)
        with (folder / f"rank-{self.rank}.jsonl").open("a") as f:
            f.write(json.dumps({"step": self.step, "records": [list(item) for item in batch]}) + "\n")
        return batch

    sampler_module.MixSampler.next_batch = next_batch


def main(argv: list[str]) -> int:
    config = json.loads(Path(argv[0]).read_text())
    install(Path(config["output_path"]))
    return entry.main(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
