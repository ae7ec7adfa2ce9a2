"""KubernetesRuntime: a Kubeflow `PyTorchJob` (training operator) that runs the same entry point in every pod.

    runtime = KubernetesRuntime(image="ghcr.io/me/mixforge:0.1", namespace="kubeflow", nodes=4, gpus_per_node=8,
                                data_claim="med-data", output_claim="med-runs")
    job = launch(cfg, runtime)       # renders, then `kubectl apply -f` when kubectl has a cluster

What is rendered (`render`): a ConfigMap holding the resolved run config, and a PyTorchJob with one Master and
`nodes - 1` Workers. Every pod runs `torchrun` with the operator's MASTER_ADDR / MASTER_PORT / RANK (the pod's
index) and `nproc_per_node` = its GPUs, so ranks, the mixer's shares and checkpoints are as under torchrun on
one machine. Volumes: the config, the data claim (read-only) at `data_mount`, the output claim at
`output_mount`, and a memory-backed /dev/shm (NCCL needs more than the default 64 MiB).

Without kubectl (or without a current context) the manifest is written and the command to submit it printed;
the job stays `queued` until it is applied. Status is read back with `kubectl get pytorchjob -o json`; stop
deletes the PyTorchJob, so each pod gets SIGTERM and `termination_grace_s` seconds to checkpoint; resume applies
the manifest again and the recipe continues from the newest checkpoint on the output claim.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path, PurePosixPath
from typing import Any

from mixforge.config import KubernetesRuntime, RunConfig
from mixforge.errors import ConfigError
from mixforge.runtime.jobs import Job, JobRecord, JobRegistry, new_job_id, register

CONFIG_MOUNT = "/etc/mixforge"
CONTAINER = "pytorch"  # the training operator finds the training container by this name
MASTER_PORT = 23456  # the operator's default port for the master service

# the PyTorchJob condition that is true last -> our status
CONDITIONS = {"Created": "queued", "Running": "running", "Restarting": "running", "Succeeded": "succeeded",
              "Failed": "failed", "Suspended": "stopped"}


def check_paths(runtime: KubernetesRuntime, cfg: RunConfig) -> None:
    """The pods see only what is mounted: the config's paths must lie under the mounts."""
    problems = []
    if not _under(cfg.output_path, runtime.output_mount):
        problems.append(f"output_path: {cfg.output_path!r} is not under output_mount {runtime.output_mount!r}")
    if runtime.data_claim:
        for name in ("data_path", "validation_path"):
            value = getattr(cfg, name)
            if value and "://" not in value and not _under(value, runtime.data_mount):
                problems.append(f"{name}: {value!r} is not under data_mount {runtime.data_mount!r}")
    if problems:
        raise ConfigError(problems, hint="give the paths as the pods see them (inside the mounts)")


def render(runtime: KubernetesRuntime, cfg: RunConfig, job_id: str) -> list[dict[str, Any]]:
    """[ConfigMap, PyTorchJob] for `cfg`, as plain dicts (apply them in this order)."""
    check_paths(runtime, cfg)
    name = object_name(cfg.job_name, job_id)
    labels = {"app.kubernetes.io/name": "mixforge", "app.kubernetes.io/managed-by": "mixforge",
              "mixforge.dev/job-id": job_id}
    cfg = cfg.model_copy(update={"runtime": runtime})
    config_map = {
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": f"{name}-config", "namespace": runtime.namespace, "labels": labels},
        "data": {"run_config.json": cfg.model_dump_json(indent=1)},
    }
    replicas = {"Master": _replica(runtime, 1, name, dict(labels))}
    if runtime.nodes > 1:
        replicas["Worker"] = _replica(runtime, runtime.nodes - 1, name, dict(labels))
    job = {
        "apiVersion": "kubeflow.org/v1", "kind": "PyTorchJob",
        "metadata": {"name": name, "namespace": runtime.namespace, "labels": dict(labels)},
        "spec": {"runPolicy": {"cleanPodPolicy": "None", "backoffLimit": runtime.backoff_limit},
                 "pytorchReplicaSpecs": replicas},
    }
    return [config_map, job]


def command(runtime: KubernetesRuntime) -> list[str]:
    torchrun = (f"exec python -m torch.distributed.run --nnodes={runtime.nodes} --nproc_per_node={runtime.nproc_per_node}"
                " --node_rank=$RANK --master_addr=$MASTER_ADDR --master_port=$MASTER_PORT"
                f" -m mixforge.train.entry {CONFIG_MOUNT}/run_config.json")
    return ["/bin/sh", "-c", torchrun]


def _replica(runtime: KubernetesRuntime, replicas: int, name: str, labels: dict[str, str]) -> dict[str, Any]:
    resources: dict[str, Any] = {"cpu": runtime.cpus_per_node, "memory": runtime.memory}
    if runtime.gpus_per_node:
        resources["nvidia.com/gpu"] = runtime.gpus_per_node
    mounts = [{"name": "run-config", "mountPath": CONFIG_MOUNT, "readOnly": True},
              {"name": "output", "mountPath": runtime.output_mount},
              {"name": "dshm", "mountPath": "/dev/shm"}]
    volumes: list[dict[str, Any]] = [
        {"name": "run-config", "configMap": {"name": f"{name}-config"}},
        {"name": "output", "persistentVolumeClaim": {"claimName": runtime.output_claim}},
        {"name": "dshm", "emptyDir": {"medium": "Memory"}},
    ]
    if runtime.data_claim:
        mounts.insert(1, {"name": "data", "mountPath": runtime.data_mount, "readOnly": True})
        volumes.insert(1, {"name": "data", "persistentVolumeClaim": {"claimName": runtime.data_claim, "readOnly": True}})
    container = {
        "name": CONTAINER, "image": runtime.image, "imagePullPolicy": runtime.image_pull_policy,
        "command": command(runtime),
        "env": [{"name": "PYTHONUNBUFFERED", "value": "1"},
                {"name": "MIXFORGE_HOME", "value": f"{runtime.output_mount}/.mixforge"}],
        "resources": {"requests": dict(resources), "limits": dict(resources)},
        "volumeMounts": mounts,
    }
    pod: dict[str, Any] = {"containers": [container], "volumes": volumes,
                           "terminationGracePeriodSeconds": runtime.termination_grace_s}
    if runtime.service_account:
        pod["serviceAccountName"] = runtime.service_account
    return {"replicas": replicas, "restartPolicy": "OnFailure",
            "template": {"metadata": {"labels": labels}, "spec": pod}}


def write(runtime: KubernetesRuntime, cfg: RunConfig, job_id: str) -> Path:
    folder = Path(runtime.manifest_dir) if runtime.manifest_dir else _jobs_dir() / job_id
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{object_name(cfg.job_name, job_id)}.yaml"
    path.write_text(to_yaml(render(runtime, cfg, job_id)))
    return path


# ---------------------------------------------------------------------------------------------------------
# launch
# ---------------------------------------------------------------------------------------------------------
def launch(cfg: RunConfig, runtime: KubernetesRuntime, *, job_id: str | None = None) -> Job:
    """Render and write the manifest, then submit it with kubectl when it can reach a cluster."""
    registry = JobRegistry()
    job_id = job_id or new_job_id()
    path = write(runtime, cfg, job_id)
    name = object_name(cfg.job_name, job_id)
    spec = runtime.model_dump(mode="json")
    record = JobRecord(id=job_id, name=cfg.job_name, runtime=runtime.kind, runtime_spec=spec,
                       config=cfg.model_copy(update={"runtime": runtime}).model_dump(mode="json"),
                       output_path=cfg.output_path, manifest_path=str(path))
    apply = ["kubectl", "apply", "-f", str(path)]
    if not kubectl_ready():
        record = register(replace(record, message=f"not submitted (kubectl has no cluster): {' '.join(apply)}"),
                          registry)
        print(f"[mixforge] wrote {path}; submit it with:\n  {' '.join(apply)}", file=sys.stderr)
        return Job(record, registry)
    # a resume: the finished or deleted object must be gone before the same name is applied again
    kubectl("delete", "pytorchjob", name, "-n", runtime.namespace, "--ignore-not-found", "--wait=true")
    done = kubectl(*apply[1:])
    if done.returncode != 0:
        raise ConfigError(f"kubectl apply failed: {done.stderr.strip()[-800:]}")
    return Job(register(replace(record, external_id=name), registry), registry)


def to_yaml(documents: list[dict[str, Any]]) -> str:
    """Multi-document YAML in the order given; multi-line strings (the run config) as literal blocks."""
    import yaml

    class Dumper(yaml.SafeDumper):
        pass

    def text(dumper: yaml.SafeDumper, value: str):
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|" if "\n" in value else None)

    Dumper.add_representer(str, text)
    return yaml.dump_all(documents, Dumper=Dumper, sort_keys=False)


def object_name(job_name: str, job_id: str) -> str:
    """A DNS-1123 name (lowercase letters, digits, '-'; at most 63 characters with the pod suffixes)."""
    slug = re.sub(r"[^a-z0-9]+", "-", job_name.lower()).strip("-")[:30].strip("-") or "run"
    return f"mf-{slug}-{job_id[:8]}"


def _under(path: str, mount: str) -> bool:
    p, m = PurePosixPath(path), PurePosixPath(mount)
    return p == m or m in p.parents


def _jobs_dir() -> Path:
    from mixforge.models.registry import mixforge_home

    return mixforge_home() / "jobs"


# ---------------------------------------------------------------------------------------------------------
# watching: kubectl
# ---------------------------------------------------------------------------------------------------------
def kubectl(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(["kubectl", *args], capture_output=True, text=True, timeout=timeout)


def kubectl_ready() -> bool:
    """kubectl is installed and points at a cluster (a current context is set)."""
    if shutil.which("kubectl") is None:
        return False
    return kubectl("config", "current-context", timeout=20).returncode == 0


def status_of(obj: dict[str, Any]) -> str:
    """Our status from a PyTorchJob's conditions (the last true one wins)."""
    true = [c["type"] for c in obj.get("status", {}).get("conditions", []) if c.get("status") == "True"]
    return CONDITIONS.get(true[-1], "queued") if true else "queued"


def poll(record: JobRecord) -> JobRecord:
    if record.external_id is None:  # written, not submitted
        return replace(record, status="stopped") if record.stop_requested else record
    if not kubectl_ready():
        return record
    namespace = record.runtime_spec.get("namespace", "kubeflow")
    got = kubectl("get", "pytorchjob", record.external_id, "-n", namespace, "-o", "json")
    if got.returncode != 0:
        if "NotFound" not in got.stderr:
            return record  # the cluster did not answer: keep what we knew
        if record.stop_requested:
            return replace(record, status="stopped", message="the PyTorchJob was deleted by `stop`")
        return replace(record, status="failed", message=f"the PyTorchJob {record.external_id} is gone from the cluster")
    obj = json.loads(got.stdout)
    status = status_of(obj)
    times = obj.get("status", {})
    return replace(record, status=status, message="" if status != "failed" else _last_message(obj),
                   started_at=record.started_at or _epoch(times.get("startTime")),
                   ended_at=_epoch(times.get("completionTime")) or record.ended_at)


def stop(record: JobRecord) -> None:
    """Delete the PyTorchJob: its pods get SIGTERM and `termination_grace_s` seconds to checkpoint."""
    if record.external_id and kubectl_ready():
        namespace = record.runtime_spec.get("namespace", "kubeflow")
        kubectl("delete", "pytorchjob", record.external_id, "-n", namespace, "--wait=false")


def _master_pod(record: JobRecord) -> str:
    return f"{record.external_id}-master-0"


def logs(record: JobRecord, lines: int | None = 40) -> str:
    if record.external_id is None or not kubectl_ready():
        return record.message
    namespace = record.runtime_spec.get("namespace", "kubeflow")
    got = kubectl("logs", _master_pod(record), "-n", namespace, *([f"--tail={lines}"] if lines else []))
    return got.stdout if got.returncode == 0 else got.stderr


def follow(record: JobRecord) -> Iterator[str]:
    if record.external_id is None or not kubectl_ready():
        yield record.message
        return
    namespace = record.runtime_spec.get("namespace", "kubeflow")
    with subprocess.Popen(["kubectl", "logs", "-f", _master_pod(record), "-n", namespace],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as process:
        yield from process.stdout or ()


def _last_message(obj: dict[str, Any]) -> str:
    conditions = obj.get("status", {}).get("conditions", [])
    return conditions[-1].get("message", "") if conditions else ""


def _epoch(timestamp: str | None) -> float | None:
    if not timestamp:
        return None
    from datetime import datetime

    return datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp()
