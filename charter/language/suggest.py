"""Did-you-mean suggestions for names, fields, tools and keywords."""

from __future__ import annotations

from collections.abc import Iterable


def closest(word: str, candidates: Iterable[str], cutoff: float = 0.6) -> str | None:
    """The candidate closest to `word`, if any is close enough."""
    pool = sorted(set(candidates))
    import difflib  # only when a name is unknown: not paid by every compile

    matches = difflib.get_close_matches(word, pool, n=1, cutoff=cutoff)
    if matches:
        return matches[0]
    lowered = {c.lower(): c for c in pool}
    return lowered.get(word.lower())


def did_you_mean(word: str, candidates: Iterable[str], quote: str = "`") -> str | None:
    """A `help:` text such as "did you mean `amount`?", or None."""
    best = closest(word, candidates)
    return f"did you mean {quote}{best}{quote}?" if best else None
