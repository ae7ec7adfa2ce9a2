"""The training entry point every runtime launches: `python -m mixforge.train.entry RUN_CONFIG.json`.

The same command runs in-process (LocalRuntime), under torchrun (one process per rank), in a Ray worker or in
a Kubernetes pod. It writes `result.json` (status, steps, final path, last metrics) into the output folder
when it ends, so whoever launched it can read the outcome without talking to the process.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    from mixforge.config import parse_run_config
    from mixforge.io.atomic import write_json_atomic
    from mixforge.train.recipe import run

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m mixforge.train.entry RUN_CONFIG.json", file=sys.stderr)
        return 2
    cfg = parse_run_config(json.loads(Path(args[0]).read_text(encoding="utf-8")))
    result = run(cfg)
    import os

    if int(os.environ.get("RANK", "0")) == 0:
        write_json_atomic(Path(cfg.output_path) / "result.json", result.__dict__, default=str)  # read by job watchers
    return 0 if result.status in ("succeeded", "stopped") else 1


if __name__ == "__main__":
    sys.exit(main())
