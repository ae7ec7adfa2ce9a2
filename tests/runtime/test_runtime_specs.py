"""Runtimes are typed configs: the `runtime:` section of a run config is a union discriminated on `kind`,
validated when the config loads, and round-trips through what a job records (what `resume` uses)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from mixforge.config import RunConfig, parse_run_config, parse_runtime
from mixforge.errors import ConfigError
from mixforge.facade.customizer import ModelCustomizer
from mixforge.runtime import KubernetesRuntime, LocalRuntime, RayRuntime, SlurmRuntime, TorchrunRuntime
from mixforge.runtime.torchrun import command

BASE = {"model": "tiny-chat", "data_path": "d.jsonl", "output_path": "out"}


@pytest.mark.parametrize("runtime", [
    LocalRuntime(), TorchrunRuntime(nproc_per_node=4), RayRuntime(address="auto", num_workers=16, use_gpu=True),
    KubernetesRuntime(image="img", nodes=4, gpus_per_node=8, output_claim="runs"), SlurmRuntime(nodes=2)])
def test_runtime_round_trips_through_the_run_config(runtime):
    spec = runtime.model_dump(mode="json")
    assert parse_runtime(spec) == runtime
    cfg = ModelCustomizer(model="tiny-chat", infra=runtime, data_path="d.jsonl", output_path="out").run_config()
    assert cfg.runtime == runtime
    again = parse_run_config(cfg.model_dump(mode="json"))  # what a job records and `resume` reads back
    assert again.runtime == runtime and type(again.runtime) is type(runtime)


def test_yaml_spelling_is_typed_when_the_config_loads(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("model: tiny-chat\ndata_path: d.jsonl\noutput_path: out\n"
                    "runtime: {kind: torchrun, nproc_per_node: 2}\n")
    from mixforge.config import load_config

    cfg = load_config(path)
    assert cfg.runtime == TorchrunRuntime(nproc_per_node=2) and cfg.runtime.world_size == 2
    assert parse_run_config(BASE).runtime == LocalRuntime()  # no runtime: local
    assert parse_runtime({"kind": "TorchrunRuntime", "nproc_per_node": 2}) == TorchrunRuntime(nproc_per_node=2)


def test_an_unknown_kind_is_one_error_listing_the_kinds():
    with pytest.raises(ConfigError) as err:
        parse_run_config({**BASE, "runtime": {"kind": "mesos", "nproc_per_node": 2}})
    assert err.value.problems == ["runtime.kind: 'mesos' is not one of local, torchrun, ray, kubernetes, slurm"]
    with pytest.raises(ConfigError, match="did you mean 'torchrun'"):
        parse_run_config({**BASE, "runtime": {"kind": "torchrn"}})
    with pytest.raises(ConfigError, match="runtime.kind: missing"):
        parse_run_config({**BASE, "runtime": {"nproc_per_node": 2}})


def test_a_setting_of_another_kind_is_named_with_its_kind_in_one_error():
    with pytest.raises(ConfigError) as err:
        parse_run_config({**BASE, "runtime": {"kind": "local", "nproc_per_node": 2}, "job_nme": "x"})
    assert err.value.problems == [
        "runtime.nproc_per_node: not a setting of runtime kind 'local' (a setting of kind torchrun); "
        "known names: python",
        "job_nme: unknown name; did you mean 'job_name'?"]
    with pytest.raises(ConfigError) as err:
        parse_run_config({**BASE, "runtime": {"kind": "torchrun", "nprocs": 2}})
    assert err.value.problems == ["runtime.nprocs: not a setting of runtime kind 'torchrun'; "
                                  "did you mean 'nproc_per_node'?"]


def test_each_kinds_rules_are_checked_at_load_with_the_field_path():
    with pytest.raises(ConfigError) as err:
        parse_run_config({**BASE, "runtime": {"kind": "torchrun", "nproc_per_node": 0}})
    assert err.value.problems == ["runtime.nproc_per_node: Input should be greater than or equal to 1 (got 0)"]
    with pytest.raises(ConfigError) as err:
        parse_run_config({**BASE, "runtime": {"kind": "torchrun", "nnodes": 2, "strategy": "fsdp"}})
    assert [p.split(":")[0] for p in err.value.problems] == ["runtime.rdzv_endpoint"]  # fsdp is a strategy now
    with pytest.raises(ConfigError, match=r"runtime.image: Field required"):
        parse_run_config({**BASE, "runtime": {"kind": "kubernetes", "output_claim": "runs"}})
    assert TorchrunRuntime(nproc_per_node=2, strategy="fsdp").strategy == "fsdp"
    with pytest.raises(ValidationError, match="rdzv_endpoint"):
        TorchrunRuntime(nnodes=2)


def test_general_sources_moved_under_mixing():
    with pytest.raises(ConfigError, match=r"general_sources: moved to mixing.sources"):
        parse_run_config({**BASE, "general_sources": [{"name": "faq", "path": "f.jsonl", "category": "baseline"}]})
    assert "general_sources" not in RunConfig.model_fields


def test_torchrun_command_line():
    argv = command(TorchrunRuntime(nproc_per_node=8), "/runs/a/run_config.json")
    assert argv[1:] == ["-m", "torch.distributed.run", "--nnodes=1", "--nproc_per_node=8", "--max_restarts=0",
                        "--standalone", "-m", "mixforge.train.entry", "/runs/a/run_config.json"]
    multi = command(TorchrunRuntime(nproc_per_node=8, nnodes=4, rdzv_endpoint="node0:29500"), "c.json", "job1")
    assert "--rdzv_endpoint=node0:29500" in multi and "--rdzv_id=job1" in multi and "--standalone" not in multi


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
