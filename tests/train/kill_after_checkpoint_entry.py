"""The real entry point, except that on its first attempt every rank SIGKILLs itself right after the checkpoint
of step `MIXFORGE_TEST_KILL_AT` is complete: a crash in the middle of a run (no clean stop, no final save).

Launch it with `TorchrunRuntime(entry="kill_after_checkpoint_entry")` and this folder on PYTHONPATH."""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

from mixforge.train import entry, recipe


def install(out: Path, kill_at: int) -> None:
    real_save = recipe.save_checkpoint

    def save_then_die(root, *, step, world, **kwargs):
        path = real_save(root, step=step, world=world, **kwargs)
        marker = out / f"killed-rank-{world.rank}"
        if step == kill_at and not marker.exists():
            marker.write_text(str(step))
            os.kill(os.getpid(), signal.SIGKILL)
        return path

    recipe.save_checkpoint = save_then_die


def main(argv: list[str]) -> int:
    config = json.loads(Path(argv[0]).read_text())
    install(Path(config["output_path"]), int(os.environ["MIXFORGE_TEST_KILL_AT"]))
    return entry.main(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
