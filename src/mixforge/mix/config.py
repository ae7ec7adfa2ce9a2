"""`DataMixingConfig`: the percents users write, validated once, with the seed's spelling accepted as written.

    DataMixingConfig.from_dict({"customer_data_percent": 50, "nova_math_percent": 20, ...})   # the seed's keys
    DataMixingConfig.from_dict({"customer_data_percent": 50, "math_percent": 20, ...})        # ours
    DataMixingConfig.from_yaml("configs/mix_default.yaml")                                    # the same, in YAML

Rules, each breach reported (all together, field by field) as a `ConfigError`:
- every percent is in [0, 100];
- `customer_data_percent` is the share of *every* global batch taken from the user's data; the category
  percents share the rest and must sum to 100 (tolerance 1e-6) whenever customer_data_percent < 100;
- an unknown key is an error that names the nearest known key;
- a category with a percent > 0 needs at least one source (see catalog.py; `general_data` chooses them);
- categories left out of the given weights are 0, as in the seed; a mix that names no category weights at
  all takes the defaults (`default_weights`: what `get_data_mixing_config()` shows), and a schedule stage
  that names none keeps the previous stage's.

Key spellings: `nova_<category>_percent` (the seed's), `<category>_percent`, and `<category>` inside a
`categories:` mapping; underscores and hyphens inside the category name are interchangeable.

A schedule changes the percents during the run: each entry of `schedule` holds from its optimizer step on
(until the next entry), and is validated by the same rules; the top-level percents hold from step 0.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import replace
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from mixforge.errors import ConfigError
from mixforge.mix import catalog
from mixforge.mix.catalog import CATEGORIES, GeneralData, RecordFormat, Source
from mixforge.mix.weights import DOMAIN, Schedule, as_fraction, source_shares
from mixforge.suggest import did_you_mean

SUM_TOLERANCE = 1e-6
_SEP = "\n"  # joins several problems inside one pydantic error; split again into ConfigError.problems

# The seed's example dictionary (its 22 categories sum to 100), kept as the reference for the hub catalogue.
SEED_EXAMPLE: dict[str, float] = {
    "customer_data_percent": 50,
    "nova_agents_percent": 1, "nova_baseline_percent": 10, "nova_chat_percent": 0.5,
    "nova_factuality_percent": 0.1, "nova_identity_percent": 1, "nova_long-context_percent": 1,
    "nova_math_percent": 2, "nova_rai_percent": 1, "nova_instruction-following_percent": 13,
    "nova_stem_percent": 10.5, "nova_planning_percent": 10, "nova_reasoning-chat_percent": 0.5,
    "nova_reasoning-code_percent": 0.5, "nova_reasoning-factuality_percent": 0.5,
    "nova_reasoning-instruction-following_percent": 45, "nova_reasoning-math_percent": 0.5,
    "nova_reasoning-planning_percent": 0.5, "nova_reasoning-rag_percent": 0.4,
    "nova_reasoning-rai_percent": 0.5, "nova_reasoning-stem_percent": 0.4, "nova_rag_percent": 1,
    "nova_translation_percent": 0.1,
}


class _Closed(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class SourceSpec(_Closed):
    """A general-data source the user adds to a category: a local file or a hub dataset."""

    name: str = Field(..., min_length=1, description="Short name, unique within its category.")
    category: str = Field(..., min_length=1, description="A catalogue category or a new one of your own.")
    kind: Literal["self"] | None = Field(None, description="self: filled by the model's own generations (see self_replay) instead of a path or hub_id.")
    path: str | None = Field(None, description="A local JSONL file (canonical records unless `columns` maps them).")
    hub_id: str | None = Field(None, description="A Hugging Face dataset id (needs a network the first time).")
    config: str | None = Field(None, description="The hub dataset's configuration, if it has several.")
    split: str = Field("train", description="The hub dataset's split.")
    format: RecordFormat = Field("messages", description="messages, sharegpt, qa (prompt/response) or text.")
    columns: dict[str, str] = Field(default_factory=dict, description="Canonical field -> your column, e.g. {prompt: question, response: answer}.")
    where: dict[str, Any] = Field(default_factory=dict, description="Keep only rows whose column equals the value.")
    weight: float = Field(1.0, gt=0, description="Relative weight within the category (the catalogue's sources have 1).")
    license: str = Field("unknown", description="Recorded in the manifest.")

    @field_validator("category")
    @classmethod
    def _canonical(cls, category: str) -> str:
        return _canonical_category(category)

    @model_validator(mode="after")
    def _one_location(self) -> SourceSpec:
        if (self.path is not None) + (self.hub_id is not None) + (self.kind == "self") != 1:
            raise ValueError(f"source {self.name!r}: give exactly one of path or hub_id (or kind: self)")
        return self

    def to_source(self) -> Source:
        if self.kind == "self":
            return replace(catalog.self_source(self.category), name=f"{self.category}/{self.name}", weight=self.weight)
        return Source(name=f"{self.category}/{self.name}", category=self.category,
                      kind="path" if self.path else "hub", location=self.path or self.hub_id or "",
                      format=self.format, columns=dict(self.columns), split=self.split, config=self.config,
                      where=dict(self.where), license=self.license, weight=self.weight)


def _canonical_category(name: str) -> str:
    return name.strip().lower().replace("_", "-")


def _fold_percent_keys(data: Mapping[str, Any], known_fields: set[str], known_categories: set[str]) -> dict[str, Any]:
    """Move `nova_<c>_percent` / `<c>_percent` keys into `categories`; unknown keys -> problems with a hint."""
    out: dict[str, Any] = {}
    categories: dict[str, Any] = {}
    problems: list[str] = []
    valid_keys = sorted(known_fields | {f"{c}_percent" for c in known_categories}
                        | {f"nova_{c}_percent" for c in known_categories})
    for key, value in data.items():
        if not isinstance(key, str):
            problems.append(f"{key!r}: keys must be strings")
        elif key in known_fields:
            out[key] = value
        elif key.endswith("_percent"):
            stem = key[: -len("_percent")]
            category = _canonical_category(stem[len("nova_"):] if stem.startswith("nova_") else stem)
            if category in known_categories:
                if category in categories:
                    problems.append(f"{key}: category {category!r} is given twice")
                categories[category] = value
            else:
                problems.append(f"{key}: unknown key" + (did_you_mean(key, valid_keys) or
                                                         f"; known categories: {', '.join(sorted(known_categories))}"))
        else:
            problems.append(f"{key}: unknown key" + did_you_mean(key, valid_keys))
    given = out.get("categories")
    if isinstance(given, Mapping):
        for name, value in given.items():
            category = _canonical_category(str(name))
            if category not in known_categories:
                problems.append(f"categories.{name}: unknown category" + did_you_mean(category, sorted(known_categories)))
            elif category in categories:
                problems.append(f"categories.{name}: category {category!r} is given twice")
            else:
                categories[category] = value
    elif given is not None:
        problems.append("categories: must be a mapping of category -> percent")
    if problems:
        raise ValueError(_SEP.join(problems))
    out["categories"] = categories
    return out


def _known_categories(data: Mapping[str, Any]) -> set[str]:
    """Catalogue categories, the package's embedded ones, and those of the user's own sources."""
    known = set(CATEGORIES) | set(catalog.embedded_sources())
    for src in data.get("sources") or []:
        cat = src.get("category") if isinstance(src, Mapping) else getattr(src, "category", None)
        if isinstance(cat, str):
            known.add(_canonical_category(cat))
    return known


def _check_percents(where: str, customer: float, categories: Mapping[str, float]) -> list[str]:
    problems = []
    for name, value in categories.items():
        if not (0 <= value <= 100):
            problems.append(f"{where}{name}_percent: {value:g} is outside [0, 100]")
    if customer < 100 and not problems:
        total = math.fsum(categories.values())
        if abs(total - 100) > SUM_TOLERANCE:
            listed = ", ".join(f"{c} {v:g}" for c, v in categories.items() if v)
            problems.append(
                f"{where}category percents sum to {total:.10g}, not 100 (they must sum to 100 when "
                f"customer_data_percent < 100): {listed or 'none given'}")
    return problems


class SelfReplayConfig(_Closed):
    """How the model writes its own replay data (general_data: self, or sources of kind self). The records
    are generated before training, or reused from the cache when the model and these settings are the same."""

    mode: Literal["magpie", "prompts", "free"] = Field("prompts", description="magpie: a chat model writes instructions and answers them; prompts: it answers prompts; free: samples from BOS (text records, continued pre-training).")
    n: int = Field(2000, ge=1, description="Records to keep, split over the self-generated categories in proportion to their percents.")
    prompts: str | None = Field(None, description="Prompts mode: a file or hub dataset of prompts; default: the bundled categories' user turns, without their answers.")
    mapping: dict[str, str] = Field(default_factory=dict, description="Columns of `prompts`: prompt=, question=, instruction=, messages=, conversations=, system=, category=.")
    max_new_tokens: int = Field(256, ge=1, description="Tokens per generation at most; an answer without an end-of-turn by then is dropped as truncated.")
    temperature: float = Field(0.7, ge=0, description="Sampling temperature; 0 is greedy (prompts are then never repeated).")
    top_p: float = Field(0.95, gt=0, le=1, description="Nucleus sampling mass (with temperature > 0).")
    seed: int = Field(0, description="Seeds the prompt order and the sampling.")
    batch_size: int = Field(32, ge=1, description="Prompts per generate call; higher is faster and takes more memory.")
    backend: Literal["auto", "transformers", "vllm"] = Field("auto", description="auto: vLLM when installed with CUDA, else transformers.")


class MixStage(_Closed):
    """One point of a schedule: from optimizer step `step` on, these percents replace the previous ones."""

    step: int = Field(..., ge=1, description="Optimizer steps done before this stage starts (200: from the 201st step on).")
    customer_data_percent: float = Field(..., ge=0, le=100, description="Share of every global batch from your data.")
    categories: dict[str, float] = Field(default_factory=dict, description="Category -> percent of the general part.")
    ramp_steps: int = Field(0, ge=0, description="Move to these percents linearly over this many steps from the previous stage's (0: at once); the last ramp step has them. Cut into up to 100 constant pieces.")


RAMP_POINTS = 100  # most constant pieces one ramp is cut into


class DataMixingConfig(_Closed):
    """How every global batch is composed: your data's share, and how the general part splits by category."""

    customer_data_percent: float = Field(50, ge=0, le=100, description="Share (%) of every global batch taken from your data; higher specializes more and forgets more.")
    categories: dict[str, float] = Field(default_factory=dict, description="Category -> percent of the general part; must sum to 100 when customer_data_percent < 100. Left out: 0; none named at all: the defaults.")
    general_data: GeneralData = Field("auto", description="What fills the categories: auto (shipped data where present, else the hub), embedded, hub, self (the model's own generations; see self_replay), or none (only your sources).")
    sources: list[SourceSpec] = Field(default_factory=list, description="Your own general-data sources, added to their categories.")
    schedule: list[MixStage] = Field(default_factory=list, description="Later stages: from each stage's step on, its percents hold.")
    self_replay: SelfReplayConfig | None = Field(None, description="Settings of self-generated replay (general_data: self or sources of kind self); defaults when left out.")

    @model_validator(mode="before")
    @classmethod
    def _accept_seed_keys(cls, data: Any) -> Any:
        if not isinstance(data, Mapping):
            return data
        known = _known_categories(data)
        out = _fold_percent_keys(data, set(cls.model_fields), known)
        if not out["categories"] and "categories" not in data:  # no weights named at all: the defaults
            general_data, weights = default_weights(out.get("general_data"))
            if weights:
                out["general_data"], out["categories"] = general_data, weights
        stages = out.get("schedule")
        if isinstance(stages, list):
            previous = out["categories"]
            folded = []
            for stage in stages:
                if isinstance(stage, Mapping):
                    given = "categories" in stage
                    stage = _fold_percent_keys(stage, set(MixStage.model_fields), known)
                    if not stage["categories"] and not given:  # a stage that names no weights keeps the last ones
                        stage["categories"] = dict(previous) if isinstance(previous, Mapping) else previous
                    previous = stage["categories"]
                folded.append(stage)
            out["schedule"] = folded
        return out

    @field_validator("sources")
    @classmethod
    def _unique_sources(cls, sources: list[SourceSpec]) -> list[SourceSpec]:
        names = [f"{s.category}/{s.name}" for s in sources]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"source names must be unique within a category: {', '.join(dupes)}")
        return sources

    @model_validator(mode="after")
    def _rules(self) -> DataMixingConfig:
        problems = _check_percents("", self.customer_data_percent, self.categories)
        steps = [s.step for s in self.schedule]
        if steps != sorted(set(steps)):
            problems.append(f"schedule: steps must be strictly increasing, got {steps}")
        for i, (stage, nxt) in enumerate(zip(self.schedule, self.schedule[1:], strict=False)):
            if stage.step + stage.ramp_steps > nxt.step:
                problems.append(f"schedule[{i}]: its ramp ends at step {stage.step + stage.ramp_steps}, after the "
                                f"next stage starts (step {nxt.step})")
        for i, stage in enumerate(self.schedule):
            problems += _check_percents(f"schedule[{i}] (step {stage.step}): ", stage.customer_data_percent,
                                        stage.categories)
        if not problems:
            available = self.category_sources()
            for where, customer, cats in self._stages_with_names():
                if customer >= 100:
                    continue
                for category, value in cats.items():
                    if value > 0 and not available.get(category):
                        choices = "add one under `sources`" + (
                            "" if self.general_data == "hub" else " or set general_data: hub (needs a network)")
                        problems.append(f"{where}{category}_percent: weight {value:g} but the category has no "
                                        f"source with general_data={self.general_data!r}; {choices}")
        if not problems and self.uses_self_replay():
            problems += self._self_replay_problems()
        if problems:
            raise ValueError(_SEP.join(problems))
        return self

    def uses_self_replay(self) -> bool:
        return self.general_data == "self" or any(s.kind == "self" for s in self.sources)

    def _self_replay_problems(self) -> list[str]:
        """Fill in the default settings; in prompts mode without a prompts file, every self-generated category
        needs a bundled prompt pool."""
        if self.self_replay is None:
            object.__setattr__(self, "self_replay", SelfReplayConfig())  # no re-validation loop
        settings = self.self_replay
        assert settings is not None
        if settings.mode != "prompts" or settings.prompts is not None:
            return []
        pools = catalog.embedded_sources()
        return [f"{name.split('/')[0]}_percent: self-replay in prompts mode answers the bundled prompts of the "
                f"category, and the package ships none for it; set self_replay.prompts or self_replay.mode: magpie"
                for name, src in self.general_sources().items() if src.kind == "self" and src.category not in pools]

    def self_replay_counts(self) -> dict[str, int]:
        """Category -> records to generate for it: self_replay.n split in proportion to the highest percent
        each self-generated category gets in any stage (largest remainder; ties: catalogue order)."""
        cats = {src.category for src in self.general_sources().values() if src.kind == "self"}
        if not cats or self.self_replay is None:
            return {}
        weights = {c: max(as_fraction(stage_cats.get(c, 0)) for _, _, stage_cats in self.stages())
                   for c in [c for c in self.category_percents() if c in cats]}
        total = sum(weights.values())
        n = self.self_replay.n
        exact = {c: w * n / total for c, w in weights.items()}
        counts = {c: math.floor(v) for c, v in exact.items()}
        order = sorted(weights, key=lambda c: -(exact[c] - counts[c]))  # stable: catalogue order breaks ties
        for c in order[: n - sum(counts.values())]:
            counts[c] += 1
        return counts

    def _stages_with_names(self) -> list[tuple[str, float, dict[str, float]]]:
        return [("", self.customer_data_percent, self.categories)] + [
            (f"schedule[{i}] (step {s.step}): ", s.customer_data_percent, s.categories)
            for i, s in enumerate(self.schedule)]

    # ------------------------------------------------------------------ construction at the edge

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DataMixingConfig:
        """Validate a dictionary (the seed's keys, ours, or both); every problem is listed in one ConfigError."""
        try:
            return cls.model_validate(dict(data))
        except ValidationError as exc:
            raise ConfigError(_problems(exc), hint="`mixforge mix catalog` lists the categories") from None

    @classmethod
    def from_yaml(cls, path: str | Path) -> DataMixingConfig:
        import yaml

        path = Path(path)
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"{path}: cannot read YAML: {exc}") from None
        if isinstance(data, Mapping) and "mixing" in data and isinstance(data["mixing"], Mapping):
            data = data["mixing"]  # a whole run config: take its mixing section
        if not isinstance(data, Mapping):
            raise ConfigError(f"{path}: expected a mapping of keys to values")
        return cls.from_dict(data)

    # ------------------------------------------------------------------ views

    def category_percents(self) -> dict[str, float]:
        """Every known category with its percent (0 for the ones left out), in the catalogue's order."""
        names = list(CATEGORIES) + sorted(set(self.categories) - set(CATEGORIES))
        return {c: float(self.categories.get(c, 0.0)) for c in names}

    def to_seed_dict(self) -> dict[str, float]:
        """The seed's spelling: customer_data_percent and nova_<category>_percent for every category."""
        return {"customer_data_percent": self.customer_data_percent,
                **{f"nova_{c}_percent": v for c, v in self.category_percents().items()}}

    def to_dict(self) -> dict[str, Any]:
        """Our spelling, as written to YAML and to the manifest."""
        return self.model_dump(mode="json", exclude_defaults=False)

    def category_sources(self) -> dict[str, list[Source]]:
        return catalog.category_sources(self.general_data, [s.to_source() for s in self.sources])

    def general_sources(self) -> dict[str, Source]:
        """Source name -> source, for every source some stage gives a positive share."""
        used = self.used_source_names()
        return {s.name: s for cat in self.category_sources().values() for s in cat if s.name in used}

    def used_source_names(self) -> set[str]:
        schedule = self.source_schedule()
        return {n for shares in schedule.shares for n, w in zip(schedule.names, shares, strict=True) if w > 0} - {DOMAIN}

    def source_schedule(self, domain: str = DOMAIN) -> Schedule:
        """The exact per-source shares of every global batch, per stage: what the mixer consumes."""
        by_cat = {c: [(s.name, s.weight) for s in srcs] for c, srcs in self.category_sources().items()}
        points = [(step, source_shares(customer, cats, by_cat, domain=domain)) for step, customer, cats in self.stages()]
        return Schedule(points)

    def stages(self) -> list[tuple[int, Fraction, dict[str, Fraction]]]:
        """(first step, customer percent, category percents) of every constant piece, ramps cut into pieces."""
        pieces = [(0, as_fraction(self.customer_data_percent), {c: as_fraction(v) for c, v in self.categories.items()})]
        for stage in self.schedule:
            customer = as_fraction(stage.customer_data_percent)
            cats = {c: as_fraction(v) for c, v in stage.categories.items()}
            if stage.ramp_steps == 0:
                pieces.append((stage.step, customer, cats))
                continue
            _, c0, cats0 = pieces[-1]
            m = min(stage.ramp_steps, RAMP_POINTS)
            names = list(dict.fromkeys([*cats0, *cats]))
            for i in range(1, m + 1):
                a = Fraction(i, m)
                pieces.append((stage.step + (i - 1) * stage.ramp_steps // m, (1 - a) * c0 + a * customer,
                               {c: (1 - a) * cats0.get(c, Fraction(0)) + a * cats.get(c, Fraction(0)) for c in names}))
        return pieces


def _problems(exc: ValidationError) -> list[str]:
    out: list[str] = []
    for err in exc.errors():
        msg = str(err.get("msg", "")).removeprefix("Value error, ")
        loc = ".".join(str(p) for p in err.get("loc", ()))
        if err.get("type") in ("less_than_equal", "greater_than_equal", "greater_than", "less_than"):
            msg += f" (got {err.get('input')!r})"
        for line in msg.split(_SEP):
            out.append(f"{loc}: {line}" if loc else line)
    return out


def default_weights(general_data: str | None) -> tuple[str | None, dict[str, float]]:
    """(general_data, category percents) of a mix that names no category weights: the categories the package
    ships, equally weighted (offline), or the seed's example percents for the hub (or when nothing is shipped).
    No weights for general data that has no catalogue (none, or your own sources only)."""
    shipped = sorted(catalog.embedded_sources())
    if general_data is None:
        general_data = "embedded" if shipped else "hub"
    if general_data in ("auto", "embedded") and shipped:
        # equal weights: the float sum is within 1e-6 of 100 and the shares come out exactly equal (normalized)
        return general_data, {c: 100 / len(shipped) for c in shipped}
    if general_data in ("auto", "embedded", "hub"):
        return general_data, {_canonical_category(k.removeprefix("nova_").removesuffix("_percent")): v
                              for k, v in SEED_EXAMPLE.items() if k != "customer_data_percent"}
    return general_data, {}


def default_mixing_config(model: str | None = None, method: str = "sft_lora") -> DataMixingConfig:
    """The defaults `get_data_mixing_config()` shows: half your data, the general half with `default_weights`.
    `model` and `method` are accepted for the seed's signature; they do not change it yet."""
    del model, method
    return DataMixingConfig.from_dict({"customer_data_percent": 50})
