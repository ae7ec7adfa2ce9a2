"""Fixtures for the shipped assets: where they are, and the build scripts loaded as modules."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def read_jsonl(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def load_script(name: str):
    """A script of scripts/ imported as a module (they are not part of the package)."""
    path = ROOT / "scripts" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"_mixforge_script_{name}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def assets() -> Path:
    import mixforge

    return (
        Path(mixforge.__file__).parent / "assets"
    )  # a namespace package: resources.files gives a MultiplexedPath


@pytest.fixture(scope="session")
def jsonl():
    return read_jsonl


@pytest.fixture(scope="session")
def general_script():
    pytest.importorskip("pycountry")  # the generator's fact sources: the `dev` extra
    pytest.importorskip("countryinfo")
    pytest.importorskip("periodictable")
    return load_script("build_general_data")


@pytest.fixture(scope="session")
def domain_script():
    return load_script("build_domain_task")


@pytest.fixture(scope="session")
def pretrain_script():
    return load_script("pretrain_tiny_base")
