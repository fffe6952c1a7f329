"""Precision and recall of every stdlib matcher, on two corpora.

Run: python benchmarks/pii_accuracy.py   (prints the tables; add -v to list the mistakes)

1. The Faker corpus (tests/stdlib/corpus.py): values embedded in prose, JSON and code, and
   near-miss negatives; tests/stdlib/test_accuracy.py holds the floor.
2. The tool-output corpus (benchmarks/pii_corpus.py): Python and JS source, JSON, CSV, logs,
   shell output, HTML, base64, Markdown and prose, dense with look-alikes (ids, hashes,
   versions, timestamps, order numbers, phone-like digit runs), with planted values; scored
   per entity and per text kind. Clean documents count only false positives.
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import pii_corpus  # noqa: E402

FLOOR = 0.97
TOOL_FLOOR = 0.98
DOCS_WITH_PII = 8  # per kind, 64 KB each, ~32 planted values each
CLEAN_DOCS = 4


def load_corpus() -> Any:
    """tests/stdlib/corpus.py (imported by path: tests/ is not a package)."""
    return pii_corpus.accuracy_corpus()


def tool_scores(
    docs_with_pii: int = DOCS_WITH_PII, clean_docs: int = CLEAN_DOCS, size: int = 64 << 10
) -> tuple[dict[tuple[str, str], Any], list[tuple[str, str, str, str]]]:
    """Scores per (entity, kind) on the tool-output corpus, and the mistakes as
    (kind, entity, "FP"/"FN", value)."""
    from charter.stdlib import Scanner, resolve

    corpus = load_corpus()
    scanner = Scanner([s for e in corpus.ENTITIES for s in (resolve(e) or ())])
    scores = {(e, k): corpus.Score() for e in corpus.ENTITIES for k in pii_corpus.KINDS}
    mistakes: list[tuple[str, str, str, str]] = []
    for kind in pii_corpus.KINDS:
        docs = [pii_corpus.document(kind, size, True, seed=i) for i in range(docs_with_pii)]
        docs += [pii_corpus.document(kind, size, False, seed=i) for i in range(clean_docs)]
        for doc in docs:
            for entity in corpus.ENTITIES:
                found = Counter(doc.text[f.start : f.end] for f in scanner.find(doc.text, [entity]))
                want = Counter(v for e, v in doc.planted if e == entity)
                s = scores[(entity, kind)]
                hit = found & want
                s.tp += sum(hit.values())
                for v in want - hit:
                    s.fn += 1
                    mistakes.append((kind, entity, "FN", v))
                for v in found - hit:
                    s.fp += 1
                    mistakes.append((kind, entity, "FP", v))
    return scores, mistakes


def by_entity(scores: dict[tuple[str, str], Any]) -> dict[str, Any]:
    corpus = load_corpus()
    out = {e: corpus.Score() for e in corpus.ENTITIES}
    for (e, _), s in scores.items():
        out[e].tp += s.tp
        out[e].fp += s.fp
        out[e].fn += s.fn
    return out


def kind_table(scores: dict[tuple[str, str], Any]) -> str:
    """Markdown: one row per entity, precision/recall per text kind."""
    corpus = load_corpus()
    kinds = pii_corpus.KINDS
    lines = [
        "| entity | " + " | ".join(kinds) + " |",
        "|---|" + "---:|" * len(kinds),
    ]
    for e in corpus.ENTITIES:
        cells = [f"{scores[(e, k)].precision:.2f}/{scores[(e, k)].recall:.2f}" for k in kinds]
        lines.append(f"| `{e}` | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> int:
    corpus = load_corpus()
    items = corpus.build()
    scores, mistakes = corpus.score(items)
    print(
        f"Faker corpus: {len(items)} items, seed {corpus.SEED}, locales {', '.join(corpus.LOCALES)}"
    )
    print(corpus.table(scores))
    low = [e for e, s in scores.items() if min(s.precision, s.recall) < FLOOR]
    if "-v" in sys.argv:
        for entity, kind, text in mistakes:
            print(f"{kind} {entity}: {text[:200]!r}")
    tool, tool_mistakes = tool_scores()
    per_entity = by_entity(tool)
    n = DOCS_WITH_PII + CLEAN_DOCS
    print(
        f"\nTool-output corpus: {len(pii_corpus.KINDS)} kinds x {n} documents of 64 KB "
        f"({CLEAN_DOCS} clean), digest {pii_corpus.digest()}"
    )
    print(corpus.table(per_entity))
    print("\nprecision/recall per text kind:")
    print(kind_table(tool))
    if "-v" in sys.argv:
        for kind, entity, what, value in tool_mistakes:
            print(f"{what} {entity} in {kind}: {value[:120]!r}")
    low += [
        f"{e} (tool outputs)"
        for e, s in per_entity.items()
        if min(s.precision, s.recall) < TOOL_FLOOR
    ]
    if low:
        print(f"below the floor: {', '.join(low)}")
    return 1 if low else 0


if __name__ == "__main__":
    raise SystemExit(main())
