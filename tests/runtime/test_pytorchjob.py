"""KubernetesRuntime: the PyTorchJob validates against the CRD schema (a subset shipped as data), a golden file
pins its shape, and submit / status / stop / resume go through kubectl (a fake one on PATH here)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import jsonschema
import pytest
import yaml

from mixforge.config import RunConfig, parse_overrides, parse_runtime
from mixforge.errors import ConfigError
from mixforge.runtime import KubernetesRuntime, launch
from mixforge.runtime.jobs import get_job
from mixforge.runtime.kubernetes import object_name, render, status_of, to_yaml

DATA = Path(__file__).parent / "data"
SCHEMA = json.loads((DATA / "pytorchjob.schema.json").read_text())
GOLDEN = DATA / "pytorchjob.golden.yaml"


def cfg(output_path: str = "/mnt/output/med-lora") -> RunConfig:
    return RunConfig(model="Qwen/Qwen2.5-0.5B-Instruct", method="sft_lora", data_path="/mnt/data/med/train.jsonl",
                     validation_path="/mnt/data/med/validation.jsonl", output_path=output_path,
                     job_name="Med LoRA", overrides=parse_overrides({"max_steps": 100, "global_batch_size": 64}),
                     tracking={"enabled": True, "tracking_uri": "http://mlflow.mlflow:5000"})


RUNTIME = KubernetesRuntime(image="ghcr.io/example/mixforge:0.1.0", namespace="kubeflow", nodes=4, gpus_per_node=8,
                            cpus_per_node="32", memory="256Gi", data_claim="med-data", output_claim="med-runs")


def test_manifest_validates_against_the_pytorchjob_schema():
    config_map, job = render(RUNTIME, cfg(), "0123456789ab")
    jsonschema.validate(job, SCHEMA)
    replicas = job["spec"]["pytorchReplicaSpecs"]
    assert replicas["Master"]["replicas"] == 1 and replicas["Worker"]["replicas"] == 3
    pod = replicas["Worker"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 8
    assert "--nnodes=4 --nproc_per_node=8 --node_rank=$RANK" in container["command"][-1]
    assert container["command"][-1].endswith("-m mixforge.train.entry /etc/mixforge/run_config.json")
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    assert mounts["data"]["readOnly"] and mounts["output"]["mountPath"] == "/mnt/output"
    claims = {v["name"]: v.get("persistentVolumeClaim", {}).get("claimName") for v in pod["volumes"]}
    assert claims["data"] == "med-data" and claims["output"] == "med-runs"
    # the ConfigMap carries the resolved run config the pods read
    shipped = json.loads(config_map["data"]["run_config.json"])
    assert shipped["output_path"] == "/mnt/output/med-lora" and shipped["runtime"]["kind"] == "kubernetes"
    assert config_map["metadata"]["name"] == f"{job['metadata']['name']}-config"


@pytest.mark.parametrize("breakage", ["no container", "typo", "two masters", "bad restart policy", "bad name"])
def test_the_schema_catches_broken_manifests(breakage):
    _, job = render(RUNTIME, cfg(), "0123456789ab")
    master = job["spec"]["pytorchReplicaSpecs"]["Master"]
    if breakage == "no container":
        master["template"]["spec"]["containers"] = []
    elif breakage == "typo":
        master["template"]["spec"]["containers"][0]["volumeMount"] = []
    elif breakage == "two masters":
        master["replicas"] = 2
    elif breakage == "bad restart policy":
        master["restartPolicy"] = "Sometimes"
    else:
        job["metadata"]["name"] = "Med_LoRA"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(job, SCHEMA)


def test_manifest_matches_the_golden_file():
    """The PyTorchJob's shape is pinned; the ConfigMap's run config follows RunConfig's fields, so it is compared
    with the config itself rather than with a file that every new training option would break."""
    config_map, job = render(RUNTIME, cfg(), "0123456789ab")
    rendered = to_yaml([config_map, job])
    assert list(yaml.safe_load_all(rendered)) == [config_map, job]  # the YAML reads back as what was rendered
    assert "run_config.json: |" in rendered  # the config is readable in the manifest, not one escaped line
    pinned = to_yaml([job])
    if os.environ.get("UPDATE_GOLDEN") == "1":
        GOLDEN.write_text(pinned)
    assert pinned == GOLDEN.read_text(), "rendering changed: review, then rerun with UPDATE_GOLDEN=1"
    expected = cfg().model_copy(update={"runtime": RUNTIME}).model_dump(mode="json")
    assert json.loads(config_map["data"]["run_config.json"]) == expected


def test_paths_outside_the_mounts_and_a_missing_output_claim_are_refused():
    with pytest.raises(ConfigError, match="output_path.*not under output_mount"):
        render(RUNTIME, cfg(output_path="/home/me/runs/x"), "0123456789ab")
    with pytest.raises(ConfigError, match="runtime.output_claim: a pod's own files vanish"):
        parse_runtime({"kind": "kubernetes", "image": "x"})
    assert object_name("Med LoRA / v2!", "0123456789ab") == "mf-med-lora-v2-01234567"


def test_without_a_cluster_the_manifest_is_written_and_the_command_printed(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PATH", str(tmp_path))  # no kubectl
    runtime = KubernetesRuntime(image="img", output_claim="runs", manifest_dir=str(tmp_path / "m"))
    job = launch(cfg(), runtime)
    path = Path(job.record.manifest_path)
    assert path.exists() and [d["kind"] for d in yaml.safe_load_all(path.read_text())] == ["ConfigMap", "PyTorchJob"]
    assert f"kubectl apply -f {path}" in capsys.readouterr().err
    assert job.status == "queued" and "not submitted" in job.record.message


FAKE_KUBECTL = """#!/bin/sh
# a stand-in for kubectl: logs its arguments, answers from files in its folder
here=$(dirname "$0")
echo "$*" >> "$here/calls.log"
case "$1" in
  config) echo fake-context ;;
  apply) echo "pytorchjob.kubeflow.org/x created"
         echo '{"status": {"conditions": [{"type": "Created", "status": "True"}]}}' > "$here/job.json" ;;
  get) if [ -f "$here/job.json" ]; then cat "$here/job.json"; else echo 'Error from server (NotFound): not found' >&2; exit 1; fi ;;
  delete) rm -f "$here/job.json" ;;
  logs) echo "step 3/100 loss 1.23" ;;
esac
"""


def _conditions(*types: str) -> str:
    return json.dumps({"status": {"startTime": "2026-01-01T00:00:00Z",
                                  "conditions": [{"type": t, "status": "True"} for t in types]}})


def test_submit_status_stop_and_resume_through_kubectl(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "kubectl").write_text(FAKE_KUBECTL)
    (bin_dir / "kubectl").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    runtime = KubernetesRuntime(image="img", output_claim="runs", manifest_dir=str(tmp_path / "m"))

    job = launch(cfg(), runtime)
    name = job.record.external_id
    calls = (bin_dir / "calls.log").read_text()
    assert f"apply -f {job.record.manifest_path}" in calls and name == object_name("Med LoRA", job.id)

    assert job.status == "queued"  # created, not yet scheduled
    (bin_dir / "job.json").write_text(_conditions("Created", "Running"))
    assert get_job(job.id).status == "running"
    assert "loss 1.23" in job.logs(5)

    job.stop()  # deletes the PyTorchJob: the pods get SIGTERM and checkpoint
    assert f"delete pytorchjob {name} -n kubeflow" in (bin_dir / "calls.log").read_text()
    assert job.status == "stopped"

    job.resume()  # applies the same manifest again; the recipe continues from the claim's newest checkpoint
    assert job.record.attempts == 2 and job.status == "queued"
    assert (bin_dir / "calls.log").read_text().count(f"apply -f {job.record.manifest_path}") == 2
    (bin_dir / "job.json").write_text(_conditions("Created", "Running", "Succeeded"))
    assert job.status == "succeeded"
    (bin_dir / "job.json").unlink()  # a finished job is not asked again
    assert job.status == "succeeded"


def test_status_from_conditions():
    assert status_of({}) == "queued"
    assert status_of(json.loads(_conditions("Created", "Running", "Restarting"))) == "running"
    assert status_of(json.loads(_conditions("Created", "Running", "Failed"))) == "failed"
