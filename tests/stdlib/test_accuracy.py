"""Precision and recall floor of every stdlib matcher on the Faker corpus (fixed seed)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

pytest.importorskip("faker")
sys.path.insert(0, str(Path(__file__).parent))

import corpus  # noqa: E402

from charter.stdlib import resolve  # noqa: E402

FLOOR = 0.97


@pytest.fixture(scope="module")
def scores() -> dict[str, corpus.Score]:
    result, _ = corpus.score(corpus.build())
    return result


def test_corpus_is_deterministic() -> None:
    # Faker dates run up to "now" by default; the corpus pins their end (corpus.END)
    # so two builds a second apart are still equal.
    assert corpus.build() == corpus.build()


def test_corpus_covers_every_entity_and_has_negatives() -> None:
    items = corpus.build()
    kinds = {i.entity for i in items}
    assert set(corpus.ENTITIES) <= kinds
    assert sum(1 for i in items if i.entity is None) >= 300


@pytest.mark.parametrize("entity", corpus.ENTITIES)
def test_precision_and_recall_floor(scores: dict[str, corpus.Score], entity: str) -> None:
    s = scores[entity]
    assert s.precision >= FLOOR, f"{entity} precision {s.precision:.3f}"
    assert s.recall >= FLOOR, f"{entity} recall {s.recall:.3f}"


TOOL_FLOOR = 0.98


def test_tool_output_corpus_floor_per_entity() -> None:
    # The tool-output corpus of benchmarks/pii_corpus.py (source, JSON, CSV, logs, shell,
    # HTML, base64, Markdown, prose full of look-alikes), a few documents per kind here;
    # `python benchmarks/pii_accuracy.py` scores the whole corpus.
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from benchmarks import pii_accuracy

    scores, mistakes = pii_accuracy.tool_scores(docs_with_pii=2, clean_docs=1)
    for entity, s in pii_accuracy.by_entity(scores).items():
        assert s.precision >= TOOL_FLOOR, (entity, [m for m in mistakes if m[1] == entity])
        assert s.recall >= TOOL_FLOOR, (entity, [m for m in mistakes if m[1] == entity])


def test_prefilters_hold_for_every_corpus_match() -> None:
    """A prefilter must match wherever its pattern does (else a value would pass unmasked)."""
    import re2

    specs = [
        s for s in (*(resolve("pii.any") or ()), *(resolve("secrets.any") or ())) if s.prefilter
    ]
    checked = dict.fromkeys((s.name for s in specs), 0)
    for item in corpus.build():
        for spec in specs:
            if re2.search(spec.pattern, item.text):
                assert re2.search(spec.prefilter, item.text), (spec.name, item.text)
                checked[spec.name] += 1
    assert len(checked) >= 6 and min(checked.values()) >= 10, checked
