"""Precision and recall of every stdlib matcher on the deterministic corpus.

Run: python benchmarks/pii_accuracy.py   (prints the table; add -v to list the mistakes)
The corpus lives in tests/stdlib/corpus.py; tests/stdlib/test_accuracy.py holds the floor.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

FLOOR = 0.97


def load_corpus() -> ModuleType:
    """Import tests/stdlib/corpus.py by path (tests/ is not a package)."""
    path = Path(__file__).resolve().parent.parent / "tests" / "stdlib" / "corpus.py"
    spec = importlib.util.spec_from_file_location("charter_pii_corpus", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def main() -> int:
    corpus = load_corpus()
    items = corpus.build()
    scores, mistakes = corpus.score(items)
    print(f"{len(items)} items, seed {corpus.SEED}, locales {', '.join(corpus.LOCALES)}")
    print(corpus.table(scores))
    if "-v" in sys.argv:
        for entity, kind, text in mistakes:
            print(f"{kind} {entity}: {text[:200]!r}")
    low = [e for e, s in scores.items() if min(s.precision, s.recall) < FLOOR]
    if low:
        print(f"below {FLOOR}: {', '.join(low)}")
    return 1 if low else 0


if __name__ == "__main__":
    raise SystemExit(main())
