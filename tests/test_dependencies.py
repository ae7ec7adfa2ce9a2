"""pyproject.toml declares what src/ imports: every third-party module mixforge imports comes from a declared
dependency (core or an extra), and bench-only packages (TRL) are not core dependencies."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import mixforge

ROOT = Path(mixforge.__file__).parents[2]
# import name -> distribution, for extras that are not installed here (CUDA-only)
NOT_INSTALLED = {"vllm": "vllm", "liger_kernel": "liger-kernel", "bitsandbytes": "bitsandbytes"}


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _declared() -> tuple[set[str], dict[str, set[str]]]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    name = lambda spec: _norm(re.split(r"[\[<>=!~; ]", spec, maxsplit=1)[0])  # noqa: E731
    return ({name(s) for s in project["dependencies"]},
            {extra: {name(s) for s in specs} for extra, specs in project["optional-dependencies"].items()})


def _imported() -> set[str]:
    found = set()
    for path in (ROOT / "src" / "mixforge").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                found.add(node.module.split(".")[0])
    return {m for m in found if m not in sys.stdlib_module_names and m != "mixforge"}


def test_every_imported_package_is_declared():
    core, extras = _declared()
    declared = core.union(*extras.values())
    dists = packages_distributions()
    missing = []
    for module in sorted(_imported()):
        names = {_norm(d) for d in dists.get(module, [])} or {_norm(NOT_INSTALLED.get(module, module))}
        if not names & declared:
            missing.append(f"{module} (from {', '.join(sorted(names))})")
    assert missing == []


def test_trl_is_for_the_benchmarks_only():
    core, extras = _declared()
    assert "trl" not in core and "trl" in extras["bench"]
    assert "trl" not in _imported()
