"""Mess up the layout of policy text without changing its tokens: respace, reindent, join
continuation lines and break lines between tokens.

Blank lines between items are left alone (the formatter keeps one where the author left
some), and so is the placement of comments relative to code.
"""

from __future__ import annotations

import random
import re

from charter.language.lexicon import ITEM_KEYWORDS

_TOKEN = re.compile(
    r'r?"(?:[^"\\\n]|\\.)*"|#[^\n]*|[0-9]+(?:\.[0-9]+)?[smhd]?|[A-Za-z_]\w*|==|!=|<=|>=|\S'
)
_CONTINUATION = ("when", "unless", "because", "then")


def _wordish(tok: str) -> bool:
    return tok[0].isalnum() or tok[0] in '_"' or tok.startswith('r"')


def _join(tokens: list[str], rng: random.Random) -> str:
    out = tokens[0]
    for prev, tok in zip(tokens, tokens[1:], strict=False):
        glue = rng.choice(["", " ", "  ", "\t"])
        if _wordish(prev) and _wordish(tok) and glue == "":
            glue = " "
        if tok.startswith("#"):
            glue = " " + glue  # a trailing comment stays trailing
        out += glue + tok
    return out


def scramble(text: str, seed: int) -> str:
    """A copy of `text` that formats back to the same thing."""
    rng = random.Random(seed)
    lines: list[list[str]] = []
    for line in text.split("\n"):
        tokens = _TOKEN.findall(line)
        joinable = (
            tokens and lines and lines[-1] and tokens[0] in _CONTINUATION
            and not lines[-1][-1].startswith("#")
        )
        if joinable and rng.random() < 0.6:
            lines[-1].extend(tokens)
        else:
            lines.append(tokens)
    out: list[str] = []
    for tokens in lines:
        if not tokens:
            out.append(rng.choice(["", " ", "\t"]))
            continue
        chunks: list[list[str]] = [[tokens[0]]]
        for tok in tokens[1:]:
            # A line may not start with an item keyword (it would start a new item) nor with a
            # comment (it would stop being a trailing one).
            breakable = tok not in ITEM_KEYWORDS and not tok.startswith("#")
            if breakable and rng.random() < 0.15:
                chunks.append([tok])
            else:
                chunks[-1].append(tok)
        for chunk in chunks:
            out.append(" " * rng.randrange(0, 7) + _join(chunk, rng) + rng.choice(["", " "]))
    return "\n".join(out)
