"""`ModelCustomizer`: the seed's verbs over mixforge's typed core.

    customizer = ModelCustomizer(model="tiny-chat", method=TrainingMethod.SFT_LORA, infra=LocalRuntime(),
                                 data_path="out/train.jsonl", output_path="runs/med/",
                                 mlflow_monitor=MLflowMonitor(experiment_name="sft-datamix"),
                                 data_mixing_enabled=True)
    customizer.set_data_mixing_config({"customer_data_percent": 50, ...})
    job = customizer.train(job_name="med-lora", overrides={"max_steps": 5})
    job.wait(); print(job.status, job.output_path)

Each call builds a `RunConfig` (its runtime is `infra`) and hands it to `mixforge.runtime.launch`; nothing here trains.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mixforge.config import LocalRuntime, RunConfig, Runtime, TrackingConfig, parse_overrides
from mixforge.methods import TrainingMethod, parse_method


@dataclass(frozen=True)
class MLflowMonitor:
    """Where runs are tracked. No tracking_uri: a sqlite store inside the run's output folder."""

    experiment_name: str = "mixforge"
    tracking_uri: str | None = None


class ModelCustomizer:
    def __init__(
        self,
        model: str,
        method: TrainingMethod | str = TrainingMethod.SFT_LORA,
        infra: Runtime | None = None,
        data_path: str | None = None,
        output_path: str | None = None,
        mlflow_monitor: MLflowMonitor | None = None,
        data_mixing_enabled: bool = True,
        validation_path: str | None = None,
        **aliases: Any,
    ) -> None:
        # the seed's names for the two paths
        data_path = data_path or aliases.pop("data_s3_path", None)
        output_path = output_path or aliases.pop("output_s3_path", None)
        if aliases:
            from mixforge.errors import ConfigError

            raise ConfigError(f"ModelCustomizer: unknown argument(s) {', '.join(sorted(aliases))}")
        self.model, self.method = model, parse_method(method)
        self.infra, self.data_path, self.output_path = infra, data_path, output_path
        self.validation_path = validation_path
        self.mlflow_monitor = mlflow_monitor
        self.data_mixing_enabled = data_mixing_enabled
        self._mixing: dict[str, Any] | None = None

    # ---- data mixing ---------------------------------------------------------------------------------------
    def get_data_mixing_config(self) -> dict[str, float]:
        """The mix in the seed's spelling: customer_data_percent and nova_<category>_percent (0 when unused)."""
        from mixforge.mix.config import DataMixingConfig
        from mixforge.train.mixing import mixing_config

        if self._mixing is not None:
            return DataMixingConfig.from_dict(self._mixing).to_seed_dict()
        return mixing_config(None, enabled=self.data_mixing_enabled, model=self.model, method=self.method).to_seed_dict()

    def set_data_mixing_config(self, config: dict[str, Any]) -> None:
        """Validate and keep a mix (seed keys `nova_*_percent`, ours, or both); errors name every problem."""
        from mixforge.mix.config import DataMixingConfig

        DataMixingConfig.from_dict(config)
        self._mixing = dict(config)

    # ---- training --------------------------------------------------------------------------------------------
    def run_config(self, job_name: str = "mixforge-run", overrides: dict[str, Any] | None = None) -> RunConfig:
        """The typed config a `train` call would launch (also what `mixforge train --dry-run` prints)."""
        from mixforge.errors import ConfigError

        if not self.data_path or not self.output_path:
            raise ConfigError("ModelCustomizer: data_path and output_path are required to train")
        monitor = self.mlflow_monitor
        tracking = TrackingConfig(enabled=monitor is not None,
                                  experiment_name=monitor.experiment_name if monitor else "mixforge",
                                  tracking_uri=monitor.tracking_uri if monitor else None, run_name=job_name)
        return RunConfig(model=self.model, method=self.method, data_path=self.data_path,
                         validation_path=self.validation_path, output_path=self.output_path, job_name=job_name,
                         data_mixing_enabled=self.data_mixing_enabled, mixing=self._mixing,
                         overrides=parse_overrides(overrides), tracking=tracking,
                         runtime=self.infra or LocalRuntime())

    def train(self, job_name: str = "mixforge-run", overrides: dict[str, Any] | None = None):
        """Launch training on `infra` and return the job handle at once (`job.wait()` blocks); the job is in
        the registry (`mixforge jobs list`)."""
        from mixforge.runtime import launch

        return launch(self.run_config(job_name, overrides))
