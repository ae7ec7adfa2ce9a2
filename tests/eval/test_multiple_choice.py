"""Multiple choice: shared-prompt scoring equals naive per-choice scoring, one forward pass per batch for
letters, exact accuracies on a model trained to always answer B, shots, data errors."""

from __future__ import annotations

import pytest
import torch
from conftest import ANSWERS, mc_rows, write_jsonl

from mixforge.errors import DataError
from mixforge.eval.checkpoint import load_checkpoint
from mixforge.eval.evaluator import evaluate_task
from mixforge.eval.multiple_choice import (
    build_prompt,
    encode_pair,
    load_questions,
    score_choices,
    select_shots,
    task_prompts,
)
from mixforge.eval.tasks import EvalTask, parse_mc


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    return load_checkpoint(str(tiny_model_dir))


def naive_scores(ckpt, pairs):
    """One full forward per (prompt, choice): the textbook definition."""
    out = []
    for context, continuations in pairs:
        row = []
        for cont in continuations:
            ctx, tail = encode_pair(ckpt.tokenizer, context, cont)
            with torch.no_grad():
                logp = torch.log_softmax(ckpt.model(torch.tensor([ctx + tail])).logits[0].float(), -1)
            row.append(sum(float(logp[len(ctx) - 1 + j, t]) for j, t in enumerate(tail)))
        out.append(row)
    return out


@pytest.mark.parametrize("answer_format", ["letter", "text"])
@pytest.mark.parametrize("chat", [True, False])
def test_shared_prompt_scores_equal_naive_scores(tiny, task_files, answer_format, chat):
    task = EvalTask.multiple_choice("g", path=str(task_files["mc"]), shots=2, answer_format=answer_format,
                                    chat=chat, limit=6)
    prompts = task_prompts(tiny.tokenizer, task, load_questions(task))
    pairs = [(p.context, p.continuations) for p in prompts]
    fast = score_choices(tiny.model, tiny.tokenizer, pairs, batch_size=4)
    for f_row, n_row in zip(fast, naive_scores(tiny, pairs), strict=True):
        assert f_row == pytest.approx(n_row, abs=1e-4)


def test_letter_choices_cost_one_forward_pass_per_batch(tiny, task_files, monkeypatch):
    calls = []
    original = tiny.model.forward

    def counting(*args, **kwargs):
        calls.append(kwargs.get("input_ids", args[0] if args else None).shape)
        return original(*args, **kwargs)

    monkeypatch.setattr(tiny.model, "forward", counting)
    result = evaluate_task(tiny, EvalTask.multiple_choice("g", path=str(task_files["mc"])), batch_size=5)
    assert len(result.examples) == 12
    assert len(calls) == 3  # 12 questions, batches of 5: 3 passes for all 48 choices
    assert all(shape[0] <= 5 for shape in calls)


def test_always_b_model_scores_exactly_the_share_of_b(answer_b_model, task_files):
    ckpt = load_checkpoint(str(answer_b_model))
    result = evaluate_task(ckpt, EvalTask.multiple_choice("general", path=str(task_files["mc"])))
    assert [e["pred"] for e in result.examples] == [1] * 12
    assert result.metrics["acc"] == ANSWERS.count("B") / len(ANSWERS)  # 5/12, exactly
    assert result.metrics["acc_norm"] == result.metrics["acc"]  # one-character choices
    geo = [a for i, a in enumerate(ANSWERS) if i % 2 == 0]
    assert result.details["per_subject"]["geography"]["acc"] == geo.count("B") / len(geo)
    assert result.details["per_subject"]["math"]["n"] == 6
    assert result.per_example("correct")["q0"] == 1.0 and result.per_example("correct")["q1"] == 0.0


def test_acc_norm_divides_by_choice_length(tiny, task_files):
    result = evaluate_task(tiny, EvalTask.multiple_choice("g", path=str(task_files["mc"]), answer_format="text"))
    questions = {q.id: q for q in load_questions(EvalTask.multiple_choice("g", path=str(task_files["mc"])))}
    for e in result.examples:
        normed = [ll / len(c) for ll, c in zip(e["logliks"], questions[e["id"]].choices, strict=True)]
        assert e["pred_norm"] == normed.index(max(normed))
        assert e["pred"] == e["logliks"].index(max(e["logliks"]))


def test_prompt_format_is_the_documented_one(tiny):
    q = parse_mc([{"question": "2+2?", "choices": ["3", "4"], "answer": 1, "subject": "basic_math"}], path="x")[0]
    plain = build_prompt(tiny.tokenizer, q, chat=False)
    assert plain.context == "The following is a multiple choice question about basic math.\n\n2+2?\nA. 3\nB. 4\nAnswer:"
    assert plain.continuations == [" A", " B"]
    chat = build_prompt(tiny.tokenizer, q, chat=True)
    assert chat.context == ("<|bos|><|user|>\nThe following is a multiple choice question about basic math.\n\n"
                            "2+2?\nA. 3\nB. 4\nAnswer:<|end|>\n<|assistant|>\n")
    assert chat.continuations == ["A", "B"]


def test_question_style_shows_the_bare_question_and_scores_choice_texts(tiny):
    q = parse_mc([{"question": "2+2?", "choices": ["3", "4"], "answer": 1, "subject": "basic_math"}], path="x")[0]
    cloze = build_prompt(tiny.tokenizer, q, chat=True, answer_format="text", prompt_style="question")
    assert cloze.context == "<|bos|><|user|>\n2+2?<|end|>\n<|assistant|>\n"
    assert cloze.continuations == ["3", "4"]
    from mixforge.errors import ConfigError

    with pytest.raises(ConfigError, match="answer_format='text'"):
        EvalTask.multiple_choice("g", path="x.jsonl", prompt_style="question")


def test_shots_are_seeded_stable_and_never_the_question_itself():
    pool = parse_mc(mc_rows(["A"] * 10), path="pool")
    first = select_shots(pool[:4], pool, 3, seed=0)
    assert first == select_shots(pool[:4], pool, 3, seed=0)
    assert first[0] == select_shots(pool[:1], pool, 3, seed=0)[0]  # independent of the other questions
    assert first != select_shots(pool[:4], pool, 3, seed=1)
    for q, shots in zip(pool[:4], first, strict=True):
        assert q not in shots and all(s.subject == q.subject for s in shots)


@pytest.mark.parametrize(("row", "field"), [
    ({"question": "q", "choices": ["a"], "answer": 0}, "choices"),
    ({"question": "q", "choices": ["a", "b"], "answer": "E"}, "answer"),
    ({"question": "q", "choices": ["a", "b"], "answer": 2}, "answer"),
    ({"choices": ["a", "b"], "answer": 0}, "question"),
])
def test_bad_rows_are_located(tmp_path, row, field):
    path = write_jsonl(tmp_path / "bad.jsonl", [{"question": "ok", "choices": ["a", "b"], "answer": "b"}, row])
    with pytest.raises(DataError) as err:
        load_questions(EvalTask.multiple_choice("g", path=str(path)))
    assert err.value.row == 2 and err.value.field == field
