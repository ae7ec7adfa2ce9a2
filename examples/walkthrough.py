# %% [markdown]
# # mixforge walkthrough: the five stages, with the SDK
#
# The same workflow as the managed product's walkthrough, on open models: set-up, data preparation,
# training configuration (with data mixing), training, evaluation. It runs offline on the bundled data.
# `MIXFORGE_MODEL` picks the model: the shipped `mixforge-tiny-base` by default, a tiny preset such as
# `tiny-chat`, or a hub id such as `Qwen/Qwen2.5-0.5B-Instruct` on a machine with a network (and a GPU).
#
#     .venv/bin/python examples/walkthrough.py        # or open examples/walkthrough.ipynb

# %%
# ---- 1. set-up: `make demo` (or `pip install -e .`) installed mixforge into .venv --------------------------
import os
from pathlib import Path

from mixforge import (
    EvalTask,
    Evaluator,
    JSONLDatasetLoader,
    LocalRuntime,
    MLflowMonitor,
    ModelCustomizer,
    TrainingMethod,
)
from mixforge.quickstart import BASE_MODEL, asset

MODEL = os.environ.get("MIXFORGE_MODEL", asset(BASE_MODEL))
OUT = Path(os.environ.get("MIXFORGE_WALKTHROUGH_OUT", "runs/walkthrough"))
STEPS = int(os.environ.get("MIXFORGE_STEPS", "60"))          # a short run; raise it for a real one
EVAL_LIMIT = int(os.environ.get("MIXFORGE_EVAL_LIMIT", "200"))

# %%
# ---- 2. data preparation: load with a column mapping, show, sanitize, transform, validate, split, save ----
loader = JSONLDatasetLoader(question="feedback", answer="label", label="label")
loader.load(asset("domain/train.jsonl"))
loader.show(n=3)                                                     # raw rows
loader.sanitize(model=MODEL)                                         # strings that collide with the chat template
loader.transform(method=TrainingMethod.SFT_LORA, model=MODEL)        # to chat messages
loader.show(n=3)
report = loader.validate(method=TrainingMethod.SFT_LORA, model=MODEL)
train, val, test = loader.split(0.9, 0.05, 0.05, seed=0)
train_path = loader.save(str(OUT / "data" / "train.jsonl"))         # validation.jsonl and test.jsonl beside it
print(f"train {len(train)}, validation {len(val)}, test {len(test)} -> {train_path}")

# %%
# ---- 3. training configuration: model, method, runtime, MLflow tracking and the data mix -----------------
customizer = ModelCustomizer(
    model=MODEL,
    method=TrainingMethod.SFT_LORA,
    infra=LocalRuntime(),
    data_path=train_path,
    validation_path=str(OUT / "data" / "validation.jsonl"),
    output_path=str(OUT / "runs" / "voc-lora"),
    mlflow_monitor=MLflowMonitor(experiment_name="sft-datamix"),    # a sqlite store in the output folder
    data_mixing_enabled=True,
)
print(customizer.get_data_mixing_config())                           # the defaults, in the seed's spelling
customizer.set_data_mixing_config({
    "customer_data_percent": 50,                                     # half of every batch is your data
    "nova_baseline_percent": 30,                                     # the rest: general replay data by category
    "nova_instruction-following_percent": 20,
    "nova_math_percent": 20,
    "nova_rai_percent": 10,
    "nova_stem_percent": 20,
    "general_data": "embedded",                                      # the data the package ships (offline)
})

# %%
# ---- 4. training: a job you can watch, stop (job.stop()) and resume (train again: it continues) ---------
job = customizer.train(job_name="voc-lora", overrides={
    "max_steps": STEPS, "learning_rate": 2e-3, "global_batch_size": 16, "micro_batch_size": 16,
    "lora_rank": 16, "lora_modules_to_save": ["embed_tokens"], "eval_every": max(STEPS // 2, 1),
})
job.wait()
print(job.status, job.output_path)
print(job.logs(lines=5))

# %%
# ---- 5. evaluation: a general benchmark and the domain task, on the base and the tuned checkpoint ----------
tasks = [
    EvalTask.multiple_choice("general", path=asset("benchmark/general_mc.jsonl"), answer_format="text",
                             prompt_style="question", limit=EVAL_LIMIT),
    EvalTask.classification("domain", path=str(OUT / "data" / "test.jsonl"), labels=asset("domain/labels.txt"),
                            limit=EVAL_LIMIT),
]
base = Evaluator(model=MODEL).evaluate(tasks)
tuned = Evaluator(model=f"{job.output_path}/final").evaluate(tasks)   # base + LoRA adapter
print(base.table())
print(tuned.table())

# %%
# ---- the forgetting report: base against tuned, side by side (Markdown + one self-contained HTML file) ----
from mixforge import forgetting_report  # noqa: E402

report = forgetting_report({"base": base, "voc-lora": tuned}, base="base", out_dir=str(OUT / "report"),
                           general_metric="acc_norm", run_dirs={"voc-lora": job.output_path})
print(report.table())
print("open", report.html)
