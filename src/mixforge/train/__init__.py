"""Training: tokenization, batching (padding or packing), checkpoints, and the recipe that ties them to the mixer.

The package is also the SDK's `train` verb: `from mixforge import train; train(cfg)` runs the recipe
(`mixforge.train.recipe.run`). Python binds `mixforge.train` to this package as soon as any of its modules is
imported (`import mixforge.train.mixing`), so a separate `train` function exported beside it would be
replaced by the package, depending on import order. One object under one name: the package, callable.
Calling it imports the recipe (torch, transformers) only then; importing the package stays light.
"""

from __future__ import annotations

import sys
from types import ModuleType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mixforge.config import RunConfig
    from mixforge.train.recipe import RunResult


class _TrainPackage(ModuleType):
    def __call__(self, cfg: RunConfig, *, show_progress: bool = True) -> RunResult:
        """Run the training recipe on `cfg` in this process (`mixforge.train.recipe.run`)."""
        from mixforge.train.recipe import run

        return run(cfg, show_progress=show_progress)


sys.modules[__name__].__class__ = _TrainPackage
