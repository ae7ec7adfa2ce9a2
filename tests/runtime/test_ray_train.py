"""RayRuntime: two Ray Train workers (local Ray, CPU, gloo) train on the same global batches as one process.

Needs the optional extra (`pip install -e '.[ray]'`); CI does not install it (Ray's start-up alone is ~35 s on
two cores), so there this test is skipped. Run it with `pytest -m ray tests/runtime`."""

from __future__ import annotations

import pytest
from runtime_helpers import PATIENCE, losses, metric_rows, run_config

pytest.importorskip("ray.train", reason="the ray extra is not installed")

from mixforge.runtime import RayRuntime, launch  # noqa: E402
from mixforge.train.recipe import run  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.distributed, pytest.mark.ray]

STEPS = 6
LOSS_RTOL = 1e-4  # as under torchrun: the same records, only the float summation order differs


def test_two_ray_workers_match_one_process(tiny_model_dir, sft_data, tmp_path):
    one, two = tmp_path / "one", tmp_path / "ray"
    assert run(run_config(tiny_model_dir, sft_data, one, max_steps=STEPS), show_progress=False).status == "succeeded"
    job = launch(run_config(tiny_model_dir, sft_data, two, max_steps=STEPS), RayRuntime(num_workers=2))
    assert job.wait(timeout=PATIENCE) == "succeeded", job.logs(40)
    assert job.result["steps"] == STEPS
    assert losses(two) == pytest.approx(losses(one), rel=LOSS_RTOL)
    mix = [[{k: v for k, v in r.items() if k.startswith("mix/")} for r in metric_rows(d) if "loss" in r]
           for d in (one, two)]
    assert mix[0] == mix[1]
