"""mixforge: customize open-weight LLMs on your domain data without losing their general skills.

The top-level names are the SDK. They are imported lazily, so `import mixforge` stays light (torch,
transformers and peft load only when a name that needs them is first used).
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

# public name -> "module:attribute" (or "module": the module itself); each issue's modules add their names here
_LAZY: dict[str, str] = {
    "TrainingMethod": "mixforge.methods:TrainingMethod",
    "MixforgeError": "mixforge.errors:MixforgeError",
    "ConfigError": "mixforge.errors:ConfigError",
    "DataError": "mixforge.errors:DataError",
    "ModelError": "mixforge.errors:ModelError",
    "build_tiny": "mixforge.models.tiny:build_tiny",
    "model_info": "mixforge.models.registry:model_info",
    "load_model": "mixforge.models.registry:load_model",
    "load_tokenizer": "mixforge.models.registry:load_tokenizer",
    "prepare": "mixforge.data.pipeline:prepare",
    "PrepareReport": "mixforge.data.pipeline:PrepareReport",
    "validate_input": "mixforge.data.pipeline:validate_input",
    "ColumnMapping": "mixforge.data.mapping:ColumnMapping",
    "load_records": "mixforge.data.load:load_records",
    "read_prepared": "mixforge.data.load:read_prepared",
    "to_bedrock": "mixforge.data.messages:to_bedrock",
    "from_bedrock": "mixforge.data.messages:from_bedrock",
    "DatasetLoader": "mixforge.facade.loaders:DatasetLoader",
    "JSONLDatasetLoader": "mixforge.facade.loaders:JSONLDatasetLoader",
    "JSONDatasetLoader": "mixforge.facade.loaders:JSONDatasetLoader",
    "CSVDatasetLoader": "mixforge.facade.loaders:CSVDatasetLoader",
    "ParquetDatasetLoader": "mixforge.facade.loaders:ParquetDatasetLoader",
    "DataMixingConfig": "mixforge.mix.config:DataMixingConfig",
    "default_mixing_config": "mixforge.mix.config:default_mixing_config",
    "MixSampler": "mixforge.mix.sampler:MixSampler",
    "SourceIndex": "mixforge.mix.sampler:SourceIndex",
    "Schedule": "mixforge.mix.weights:Schedule",
    "write_manifest": "mixforge.mix.manifest:write_manifest",
    "check_manifest": "mixforge.mix.manifest:check_manifest",
    "trace_step": "mixforge.mix.trace:trace_step",
    "Evaluator": "mixforge.facade.evaluator:Evaluator",
    "EvalTask": "mixforge.eval.tasks:EvalTask",
    "EvalResult": "mixforge.eval.tasks:EvalResult",
    "TaskResult": "mixforge.eval.tasks:TaskResult",
    "evaluate": "mixforge.eval.evaluator:evaluate",
    "load_checkpoint": "mixforge.eval.checkpoint:load_checkpoint",
    "forgetting_report": "mixforge.eval.report:forgetting_report",
    "run_lm_eval": "mixforge.eval.lm_eval_adapter:run_lm_eval",
    "generate_file": "mixforge.eval.generate:generate_file",
    "generate_replay": "mixforge.replay.generate:generate_replay",
    "ReplayResult": "mixforge.replay.generate:ReplayResult",
    "ModelCustomizer": "mixforge.facade.customizer:ModelCustomizer",
    "MLflowMonitor": "mixforge.facade.customizer:MLflowMonitor",
    "LocalRuntime": "mixforge.runtime.local:LocalRuntime",
    "TorchrunRuntime": "mixforge.runtime.torchrun:TorchrunRuntime",
    "RayRuntime": "mixforge.runtime.ray:RayRuntime",
    "KubernetesRuntime": "mixforge.runtime.kubernetes:KubernetesRuntime",
    "SlurmRuntime": "mixforge.runtime.slurm:SlurmRuntime",
    "jobs": "mixforge.runtime:jobs",
    "Job": "mixforge.runtime.jobs:Job",
    "list_jobs": "mixforge.runtime.jobs:list_jobs",
    "get_job": "mixforge.runtime.jobs:get_job",
    "RunConfig": "mixforge.config:RunConfig",
    "TrainOverrides": "mixforge.config:TrainOverrides",
    "load_config": "mixforge.config:load_config",
    "train": "mixforge.train",  # the package, callable: train(cfg) runs the recipe (see mixforge/train)
    "merge_adapter": "mixforge.train.merge:merge_adapter",
    "mix_search": "mixforge.search.mix_search:mix_search",
}

__all__ = sorted([*_LAZY, "__version__"])


def __getattr__(name: str) -> Any:
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module 'mixforge' has no attribute {name!r}")
    module, _, attr = target.partition(":")
    value = getattr(import_module(module), attr) if attr else import_module(module)
    globals()[name] = value  # cache: the next access is a plain global
    return value


def __dir__() -> list[str]:
    return __all__
