"""The SDK surface: names mean one thing whatever was imported first, and `import mixforge` stays light.

Each check runs in a fresh interpreter: what it guards depends on import order, which one test session
cannot reset."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def _python(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_train_is_the_train_verb_even_after_a_training_module_was_imported():
    out = _python("""
        import mixforge.train.mixing                     # binds mixforge.train to the package
        from mixforge import train
        import mixforge.train.recipe as recipe

        seen = []
        recipe.run = lambda cfg, *, show_progress=True: seen.append((cfg, show_progress)) or "result"
        print(train("cfg", show_progress=False), seen, train is mixforge.train)
    """)
    assert out == "result [('cfg', False)] True"


def test_train_is_the_same_object_when_imported_first():
    assert _python("""
        from mixforge import train
        import mixforge.train.mixing
        import mixforge
        print(train is mixforge.train, callable(train), 'torch' in __import__('sys').modules)
    """) == "True True False"


def test_import_mixforge_loads_no_torch():
    assert _python("""
        import sys
        import mixforge
        print(sorted(m for m in ('torch', 'transformers', 'peft', 'mlflow') if m in sys.modules))
    """) == "[]"
