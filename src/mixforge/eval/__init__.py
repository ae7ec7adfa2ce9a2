"""Evaluation: multiple choice by log-likelihood, constrained classification, generative QA, an
lm-evaluation-harness adapter, a result cache and the forgetting report (base model against tuned runs).

Entry points: `evaluate(model, tasks)` (mixforge.eval.evaluator), `EvalTask` (mixforge.eval.tasks),
`forgetting_report(base, runs, out_dir=...)` (mixforge.eval.report).
"""
