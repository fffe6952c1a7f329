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
    # Every match holds its `@`. The Unicode classes make this pattern three quarters of
    # the Set's compile time for `pii.any` and `secrets.any` (~5 ms, once per process: a
    # hook call pays it every time); the Set holds `@` and the pattern runs only on a
    # value that has one.
    prefilter="@",
    # The same on ASCII text (see `MatcherSpec.ascii_pattern`): \pL is [A-Za-z], \pN [0-9].
    ascii_pattern=(
        r"(?:^|[^A-Za-z0-9_.%+\-])"
        r"([A-Za-z0-9_%+\-]+(?:\.[A-Za-z0-9_%+\-]+)*"
        r"@(?:[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?\.)+[A-Za-z]{2,})\b"
    ),
)
# Label lengths (<= 63) are checked by the validator: a counted repetition over Unicode
# classes makes RE2's reverse DFA an order of magnitude slower.

# Phone numbers: RE2 admits only phone-shaped spans, so that digit runs in code, JSON, CSV
# and logs (ids, amounts, timestamps, versions) never reach the validator.
# - international: `+` or `00`, a country code and 7-17 more digits in groups;
# - NANP: 3-3-4 with separators, `(3) 3-4`, optionally `1-` in front;
# - national with trunk 0 (UK, DE, FR, IN): an area code closed by a separator or `)`;
# - a bare digit run only right after a phone word (`phone`, `tel`, `mobile`, `fax`, ...):
#   `req=5855128937` is a request id, `phone: 5855128937` a phone; so is an Indian mobile
#   written 5+5 (`98765 43210`), which alone looks like two counts in a table.
# The value is capture group 1 (no context) or 2 (after a phone word).
_PHONE_EXT = r"(?:[ ]?(?:x|ext\.?|extension)[ ]?\d{1,6})?"
_PHONE_INTL = r"(?:\+|00)[1-9](?:[ .\-]?(?:\(0\)|\(\d{1,4}\)|\d)){6,16}"
_PHONE_NANP = r"(?:1[ .\-])?(?:\([2-9]\d{2}\)[ .\-]?|[2-9]\d{2}[ .\-])[2-9]\d{2}[ .\-]\d{4}"
# After the area code: up to three groups of 3+ digits, or French pairs (0X XX XX XX XX); so a
# date such as "05.01.2024 12:30" (groups 2-2-4-2) is no candidate.
_PHONE_TRUNK = (
    r"(?:\(0[1-9]\d{0,4}\)[ ]?|0[1-9]\d{0,4}[ .\-/])"
    r"(?:\d{3,8}(?:[ .\-/]\d{3,8}){0,2}|\d{2}(?:[ .\-]\d{2}){3})"
)
_PHONE_BARE = r"(?:0[1-9]\d{8,9}|1?[2-9]\d{9}|[6-9]\d{4} \d{5})"
_PHONE_WORD = (
    r"\b(?i:phone|telephone|tel|mobile|mob|cell|cellphone|fax|sms|whatsapp|contact"
    r"|call(?: me)?(?: at| on)?)(?i:[ _\-]?(?:no|num|number|nr|#))?(?i:s)?\b[^0-9A-Za-z\n+(]{0,6}"
)
# As `_NUM_LEFT`, and not right after "digit space": "DE89 3704 0044 0532 0130 00" holds
# "0044 0532 0130 00", which is a spaced IBAN's tail, not a phone.
_PHONE_LEFT = r"(?:^ ?|[^0-9A-Za-z_+\-./#@$: ]|[^0-9] )"
_PHONE_RIGHT = r"(?:$|[^0-9A-Za-z_\-]|[\-.](?:$|[^0-9]))"
_PHONE_SHAPES = f"{_PHONE_INTL}|{_PHONE_NANP}|{_PHONE_TRUNK}"

PHONE = MatcherSpec(
    name="pii.phone",
    pattern=(
        f"{_PHONE_LEFT}((?:{_PHONE_SHAPES}){_PHONE_EXT}){_PHONE_RIGHT}"
        f"|{_PHONE_WORD}((?:{_PHONE_SHAPES}|{_PHONE_BARE}){_PHONE_EXT}){_PHONE_RIGHT}"
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


def _card_pattern() -> str:
    """A card number written whole (12-19 digits) or in a printed grouping with one kind of
    separator, longest grouping first. Issuer numbers start with 2-6 (or JCB's 1800).

    Neither may be preceded by another separated number: in a spaced IBAN such as
    "FR10 4903 1147 8905 9630 1850 534" the middle may be a Luhn-valid 16-digit run. A grouped
    number may be followed by a short separated number (the expiry in "4111 1111 1111 1111
    12 29") but not by another group of four or more digits, which would make it a longer
    number; a number written whole may be followed by a separated one ("4111111111111111
    1229")."""
    shapes = ((4, 4, 4, 4, 3), (4, 4, 4, 4), (4, 6, 5), (4, 6, 4), (4, 4, 4))
    # The first group of every shape is four digits, written out below.
    grouped = "|".join(
        "".join(sep + rf"\d{{{n}}}" for n in shape[1:]) for shape in shapes for sep in " -"
    )
    left = r"(?:^ ?|[^0-9A-Za-z_+\-./#@$: ]|[^0-9] )"
    # Of issuer numbers led by 1 only JCB's legacy 1800 is a card; snowflake ids (19 digits,
    # led by 1) are thus no candidates.
    whole = r"((?:[2-6]\d{11,18}|1800\d{11}))(?:$|[^0-9A-Za-z_\-]|-(?:$|[^0-9]))"
    printed = (
        rf"((?:[2-6]\d{{3}}|1800)(?:{grouped}))"
        r"(?:$|[^0-9A-Za-z_ \-]|[ \-](?:$|[^0-9]|\d{1,3}(?:$|[^0-9])))"
    )
    return f"{left}(?:{whole}|{printed})"


CARD = MatcherSpec(
    name="pii.card",
    pattern=_card_pattern(),
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

_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_IPV4 = rf"{_OCTET}(?:\.{_OCTET}){{3}}"
_HEX4 = r"[0-9A-Fa-f]{1,4}"
# IPv6 as RFC 4291 writes it: eight groups, six and a dotted quad, or `::` compression. A
# run such as `12:30:45` (a time) or `00:1a:2b:3c:4d:5e` (a MAC) is none of these, so logs
# and source code give RE2 nothing to hand to the validator.
_IPV6 = (
    rf"(?:{_HEX4}:){{7}}{_HEX4}"
    rf"|(?:{_HEX4}:){{6}}{_IPV4}"
    rf"|{_HEX4}(?::{_HEX4}){{0,6}}::(?:(?:{_HEX4}:){{0,5}}{_IPV4}|{_HEX4}(?::{_HEX4}){{0,6}})?"
    # Led by "::": loopback, or two groups or more. `x[::2]` is a Python slice, `::` a
    # C++/Rust path separator.
    rf"|::(?:(?:{_HEX4}:){{0,5}}{_IPV4}|{_HEX4}(?::{_HEX4}){{1,6}}|1)"
)

IP = MatcherSpec(
    name="pii.ip",
    pattern=(
        rf"(?:^|[^0-9A-Za-z_.:])({_IPV4}|(?:{_IPV6})(?:%[0-9A-Za-z]+)?)"
        r"(?:$|[^0-9A-Za-z_.:]|[.:](?:$|[^0-9A-Za-z_]))"
    ),
    placeholder="[IP]",
    validator=v.ip,
    doc="IP address, v4 (dotted quad) or v6, validated.",
    group=1,
)

SPECS: tuple[MatcherSpec, ...] = (EMAIL, PHONE, SSN, CARD, IBAN, IP)
