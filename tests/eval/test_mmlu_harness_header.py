"""header="harness": the prompt is lm-evaluation-harness's own MMLU prompt, character for character, compared
with what the installed harness renders for the same document (its mmlu task YAML, data from a local file)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from mixforge.eval.multiple_choice import build_prompt, load_questions, task_prompts
from mixforge.eval.tasks import EvalTask

DOC = {"question": "  What is the powerhouse of the cell? ", "subject": "high_school_biology",
       "choices": ["Nucleus", "Mitochondrion", "Ribosome", "Golgi apparatus"], "answer": 1}


def _harness_prompt(data: Path) -> tuple[str, list[str]]:
    """The zero-shot context and continuations lm-eval builds for the one document of `data`."""
    lm_eval = pytest.importorskip("lm_eval")
    from lm_eval.api.task import ConfigurableTask

    root = Path(lm_eval.__file__).parent / "tasks" / "mmlu" / "default"
    config = yaml.safe_load((root / "_default_template_yaml").read_text(encoding="utf-8"))
    subject = yaml.safe_load((root / f"mmlu_{DOC['subject']}.yaml").read_text(encoding="utf-8"))
    config.update({k: v for k, v in subject.items() if k not in ("include", "tag")})
    config.update(dataset_path="json", dataset_name=None,
                  dataset_kwargs={"data_files": {"test": str(data), "dev": str(data)}})
    task = ConfigurableTask(config=config)
    doc = task.test_docs()[0]
    return task.fewshot_context(doc, 0), [task.config.target_delimiter + c for c in task.doc_to_choice(doc)]


def test_the_harness_header_renders_lm_evals_own_mmlu_prompt(tiny_model_dir, tmp_path):
    from transformers import AutoTokenizer

    data = tmp_path / "mmlu.jsonl"
    data.write_text(json.dumps(DOC) + "\n", encoding="utf-8")
    context, continuations = _harness_prompt(data)
    assert context.startswith("The following are multiple choice questions (with answers) about high school "
                              "biology.\n\nWhat is the powerhouse of the cell?\nA. Nucleus\n")

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    task = EvalTask.multiple_choice("mmlu", path=str(data), chat=False, header="harness")
    (prompt,) = task_prompts(tok, task, load_questions(task))
    assert (prompt.context, prompt.continuations) == (context, continuations)

    # mixforge's default header differs (one question, no "(with answers)") and keeps the question as written
    (q,) = load_questions(task)
    default = build_prompt(tok, q, chat=False).context
    assert default.startswith("The following is a multiple choice question about high school biology.\n\n"
                              "  What is the powerhouse of the cell? \nA. Nucleus")


def test_the_cli_option_reaches_the_task():
    from mixforge.cli.eval import parse_task_specs

    (task,) = parse_task_specs(["mc:mmlu=m.jsonl"], labels={}, shots=0, seed=0, limit=None, chat=None,
                               mmlu_header="harness")
    assert task.header == "harness"
    with pytest.raises(Exception, match="header"):
        parse_task_specs(["mc:mmlu=m.jsonl"], labels={}, shots=0, seed=0, limit=None, chat=None, mmlu_header="lm")
