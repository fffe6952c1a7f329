"""The `pii` module: personal data matchers (RE2 candidates, confirmed by validators).

RE2 has no look-around, so a pattern that needs "not preceded by a digit or letter" consumes
that one character and puts the value in capture group 1 (`MatcherSpec.group`). The right
side uses `\\b`, which is zero-width, so adjacent values separated by one character are
both found.
"""

from __future__ import annotations

from charter.stdlib import validators as v
from charter.stdlib.spec import MatcherSpec

# Characters that, right before a number, mean it is part of a bigger token: an id
# (`ORD-123`, `#123`, `v1.2`), a path, an amount or an email.
_NUM_LEFT = r"(?:^|[^0-9A-Za-z_+\-./#@$:])"

EMAIL = MatcherSpec(
    name="pii.email",
    pattern=(
        r"(?:^|[^\pL\pN_.%+\-])"
        r"([\pL\pN_%+\-]+(?:\.[\pL\pN_%+\-]+)*"
        r"@(?:[\pL\pN](?:[\pL\pN\-]*[\pL\pN])?\.)+\pL{2,})\b"
    ),
    placeholder="[EMAIL]",
    validator=v.email,
    doc="Email address (local@domain.tld).",
    group=1,
)
# Label lengths (<= 63) are checked by the validator: a counted repetition over Unicode
# classes makes RE2's reverse DFA an order of magnitude slower.

PHONE = MatcherSpec(
    name="pii.phone",
    pattern=(
        _NUM_LEFT + r"("
        r"(?:\+|00)?\(?\d{1,5}\)?"
        r"(?:[ .\-]?(?:\(0\)|\(\d{1,5}\)|\d{1,6})){1,6}"
        r"(?:[ ]?(?:x|ext\.?|extension)[ ]?\d{1,6})?"
        r")\b"
    ),
    placeholder="[PHONE]",
    validator=v.phone,
    doc="Phone number: E.164/international, or national US, UK, DE, FR, IN formats.",
    group=1,
)

SSN = MatcherSpec(
    name="pii.ssn",
    pattern=_NUM_LEFT + r"(\d{3}-\d{2}-\d{4}|\d{3} \d{2} \d{4})\b",
    placeholder="[SSN]",
    validator=v.ssn,
    doc="US Social Security number (AAA-GG-SSSS), never-issued ranges rejected.",
    group=1,
)

CARD = MatcherSpec(
    name="pii.card",
    # Neither preceded nor followed by another separated number: in a spaced IBAN such as
    # "FR10 4903 1147 8905 9630 1850 534" the middle may be a Luhn-valid 16-digit run.
    pattern=(
        r"(?:^ ?|[^0-9A-Za-z_+\-./#@$: ]|[^0-9] )"
        r"((?:\d[ \-]?){11,18}\d)(?:$|[^0-9A-Za-z_ \-]|[ \-](?:$|[^0-9]))"
    ),
    placeholder="[CARD]",
    validator=v.card_number,
    doc="Payment card number of a major brand, Luhn-checked.",
    group=1,
)


def _iban_pattern() -> str:
    # One alternative per country with its exact length, so a following upper-case word is
    # never swallowed into the candidate (the validator could not shorten it again).
    alts = []
    for country, length in sorted(v.IBAN_LENGTHS.items()):
        alts.append(f"{country}[0-9]{{2}}(?: ?[0-9A-Z]){{{length - 4}}}")
    return r"(?:^|[^0-9A-Za-z_])(" + "|".join(alts) + r")\b"


IBAN = MatcherSpec(
    name="pii.iban",
    pattern=_iban_pattern(),
    placeholder="[IBAN]",
    validator=v.iban,
    doc="International Bank Account Number, country length and mod-97 checked.",
    group=1,
)

IP = MatcherSpec(
    name="pii.ip",
    pattern=(
        r"(?:^|[^0-9A-Za-z_.:])("
        r"(?:[0-9]{1,3}\.){3}[0-9]{1,3}"
        r"|(?:[0-9A-Fa-f]{0,4}:){2,7}(?:[0-9]{1,3}(?:\.[0-9]{1,3}){3}|[0-9A-Fa-f]{0,4})"
        r"(?:%[0-9A-Za-z]+)?"
        r")(?:$|[^0-9A-Za-z_.:]|[.:](?:$|[^0-9A-Za-z_]))"
    ),
    placeholder="[IP]",
    validator=v.ip,
    doc="IP address, v4 (dotted quad) or v6, validated.",
    group=1,
)

SPECS: tuple[MatcherSpec, ...] = (EMAIL, PHONE, SSN, CARD, IBAN, IP)
