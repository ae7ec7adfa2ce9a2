"""Shared test fixtures: one torch thread (tests run beside each other on 2 cores), an isolated MIXFORGE_HOME,
and tiny models built once per session through the factory."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # no test may reach a network
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("MLFLOW_ENABLE_TELEMETRY", "false")


@pytest.fixture(scope="session", autouse=True)
def _one_thread_and_isolated_home(tmp_path_factory: pytest.TempPathFactory):
    home = tmp_path_factory.mktemp("mixforge_home")
    os.environ["MIXFORGE_HOME"] = str(home)
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:  # pragma: no cover
        pass
    yield


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory):
    """The tiny-chat preset (seed 0), built once per test session as a Hugging Face directory."""
    from mixforge.models.tiny import build_tiny

    return build_tiny("tiny-chat", seed=0, out_dir=tmp_path_factory.mktemp("models") / "tiny-chat")


# The template zoo (tests/templates/zoo.py): `zoo_tokenizer_dir(family)` and `zoo_model_dir(family)` for every test.
sys.path.insert(0, str(Path(__file__).parent / "templates"))
from zoo import zoo_model_dir, zoo_tokenizer_dir  # noqa: E402,F401
