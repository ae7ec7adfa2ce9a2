"""A runtime round-trips through the `runtime:` section of a run config (what `resume` and YAML configs use)."""

from __future__ import annotations

import pytest

from mixforge.errors import ConfigError
from mixforge.facade.customizer import ModelCustomizer
from mixforge.runtime import runtime_from_spec
from mixforge.runtime.kubernetes import KubernetesRuntime
from mixforge.runtime.local import LocalRuntime
from mixforge.runtime.ray import RayRuntime
from mixforge.runtime.slurm import SlurmRuntime
from mixforge.runtime.torchrun import TorchrunRuntime


@pytest.mark.parametrize("runtime", [
    LocalRuntime(), TorchrunRuntime(nproc_per_node=4), RayRuntime(address="auto", num_workers=16, use_gpu=True),
    KubernetesRuntime(image="img", nodes=4, gpus_per_node=8, output_claim="runs"), SlurmRuntime(nodes=2)])
def test_runtime_round_trips_through_its_spec(runtime):
    assert runtime_from_spec(runtime.spec()) == runtime
    cfg = ModelCustomizer(model="tiny-chat", infra=runtime, data_path="d.jsonl", output_path="out").run_config()
    assert cfg.runtime == runtime.spec()


def test_short_and_class_names_and_errors():
    assert runtime_from_spec(None) == LocalRuntime()
    assert runtime_from_spec({"kind": "TorchrunRuntime", "nproc_per_node": 2}) == TorchrunRuntime(nproc_per_node=2)
    with pytest.raises(ConfigError, match="runtime.kind"):
        runtime_from_spec({"kind": "mesos"})
    with pytest.raises(ConfigError, match="nproc"):
        runtime_from_spec({"kind": "torchrun", "nprocs": 2})


def test_lazy_public_names():
    import mixforge

    assert mixforge.TorchrunRuntime is TorchrunRuntime and mixforge.KubernetesRuntime is KubernetesRuntime
    assert callable(mixforge.jobs.list_jobs) and mixforge.get_job is mixforge.jobs.get_job


def test_mlflow_run_id_comes_from_the_result_or_else_the_newest_checkpoint(tmp_path):
    import json

    from mixforge.runtime.jobs import mlflow_run_id

    assert mlflow_run_id(str(tmp_path)) is None
    for step, run_id in [(2, "old"), (4, "new")]:
        folder = tmp_path / "checkpoints" / f"step-{step:06d}"
        folder.mkdir(parents=True)
        (folder / "state.json").write_text(json.dumps({"step": step, "mlflow_run_id": run_id}))
    assert mlflow_run_id(str(tmp_path)) == "new"  # a run still going
    (tmp_path / "result.json").write_text(json.dumps({"status": "succeeded", "mlflow_run_id": "final"}))
    assert mlflow_run_id(str(tmp_path)) == "final"
