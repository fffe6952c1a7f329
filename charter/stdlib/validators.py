"""Validators that confirm a regex candidate: checksums, numbering plans, decoding, entropy.

Each takes the matched text (already narrowed by the RE2 pattern) and returns whether it is
a real instance of the entity. They are pure string arithmetic — no regex engine — so that
the only pattern matching on the hot path is RE2's.
"""

from __future__ import annotations

import math
from collections import Counter

_DIGITS = frozenset("0123456789")
# Separators people put inside numbers, mapped to spaces so `str.split` finds the groups.
_SEPARATORS = str.maketrans({c: " " for c in "+()-./\t"})


def digits_of(text: str) -> str:
    """Return the ASCII digits of `text`, in order."""
    if text.isdigit() and text.isascii():
        return text
    return "".join(c for c in text if c in _DIGITS)


def digit_groups(text: str) -> list[str]:
    """Split `text` into its runs of digits (text is a regex candidate: digits and the
    separators `space + ( ) - . /`)."""
    return text.translate(_SEPARATORS).split()


# --- cards -------------------------------------------------------------------------------


# Digit byte -> byte of the digit sum of twice that digit ("6" -> 12 -> 1+2 -> "3").
_LUHN_DOUBLE = bytes.maketrans(b"0123456789", b"0246813579")


def luhn(digits: str) -> bool:
    """Luhn (mod 10) checksum over a string of ASCII digits."""
    if not digits or not digits.isdigit() or not digits.isascii():
        return False
    # Summing bytes runs in C; subtract the ASCII offset of "0" per digit afterwards.
    raw = digits.encode("ascii")
    total = sum(raw[-1::-2]) + sum(raw[-2::-2].translate(_LUHN_DOUBLE)) - 48 * len(raw)
    return total % 10 == 0


def _card_brand_ok(d: str) -> bool:
    """Whether the issuer prefix (IIN) and length fit a major card brand."""
    n = len(d)
    p2, p3, p4 = int(d[:2]), int(d[:3]), int(d[:4])
    if d[0] == "4":  # Visa
        return n in (13, 16, 19)
    if 51 <= p2 <= 55 or 2221 <= p4 <= 2720:  # Mastercard
        return n == 16
    if p2 in (34, 37):  # American Express
        return n == 15
    if p4 == 6011 or p2 == 65 or 644 <= p3 <= 649:  # Discover
        return 16 <= n <= 19
    if p2 == 35:  # JCB (3528-3589 issued; test ranges use all of 35xx)
        return 16 <= n <= 19
    if p4 in (2131, 1800):  # JCB, legacy 15-digit
        return n == 15
    if 300 <= p3 <= 305 or p2 in (36, 38, 39):  # Diners Club
        return 14 <= n <= 19
    if p2 == 62:  # UnionPay
        return 16 <= n <= 19
    if p2 in (50, 56, 57, 58) or p4 in (6304, 6759, 6761, 6762, 6763, 6390):  # Maestro
        return 12 <= n <= 19
    return False


def card_number(text: str) -> bool:
    """A payment card number: brand prefix and length, Luhn, and consistent grouping."""
    d = digits_of(text)
    if not 12 <= len(d) <= 19 or not _card_brand_ok(d) or not luhn(d):
        return False
    if len(d) == len(text):
        return True
    if ("-" in text) == (" " in text):  # both kinds of separator: not a printed card
        return False
    # Printed groupings only: a stray tail such as "... 4628 49" is the end of a spaced
    # IBAN or account number, not a card.
    return tuple(len(g) for g in digit_groups(text)) in _CARD_SHAPES


_CARD_SHAPES = frozenset({(4, 4, 4), (4, 4, 4, 4), (4, 4, 4, 4, 3), (4, 6, 5), (4, 6, 4)})


# --- IBAN --------------------------------------------------------------------------------

IBAN_LENGTHS: dict[str, int] = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22,
    "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28,
    "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23,
    "GL": 18, "GR": 27, "GT": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26,
    "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20,
    "LV": 21, "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MR": 27, "MT": 31, "MU": 30, "NL": 18,
    "NO": 15, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "SA": 24,
    "SC": 31, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "ST": 25, "SV": 28, "TL": 23, "TN": 24,
    "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20,
}  # fmt: skip


def iban_mod97(compact: str) -> bool:
    """ISO 13616 check: move the first four characters to the end, letters to numbers, mod 97."""
    if len(compact) < 5 or not compact.isascii() or not compact.isalnum():
        return False
    rearranged = (compact[4:] + compact[:4]).upper()
    return int(rearranged.translate(_IBAN_LETTERS)) % 97 == 1


# "A" -> "10" ... "Z" -> "35" (ISO 13616), one table lookup per character.
_IBAN_LETTERS = {ord(c): str(10 + i) for i, c in enumerate("ABCDEFGHIJKLMNOPQRSTUVWXYZ")}


def iban(text: str) -> bool:
    """An IBAN: known country, that country's length, two check digits, mod-97 == 1."""
    compact = text.replace(" ", "")
    country = compact[:2]
    if IBAN_LENGTHS.get(country) != len(compact) or not compact[2:4].isdigit():
        return False
    return iban_mod97(compact)


# --- US SSN ------------------------------------------------------------------------------


def ssn(text: str) -> bool:
    """A US SSN outside the SSA's never-issued ranges (area 000/666/900-999, group 00,
    serial 0000) and not one of the well-known advertising numbers."""
    d = digits_of(text)
    if len(d) != 9:
        return False
    area, group, serial = int(d[:3]), int(d[3:5]), int(d[5:])
    if area == 0 or area == 666 or area >= 900 or group == 0 or serial == 0:
        return False
    return d not in ("078051120", "219099999", "123456789")


# --- IP addresses ------------------------------------------------------------------------


def ipv4(text: str) -> bool:
    """Dotted-quad IPv4: four decimal octets 0-255 without leading zeros."""
    parts = text.split(".")
    if len(parts) != 4:
        return False
    for p in parts:
        if not p.isdigit() or not p.isascii() or len(p) > 3 or (len(p) > 1 and p[0] == "0"):
            return False
        if int(p) > 255:
            return False
    return True


def ipv6(text: str) -> bool:
    """An IPv6 address (RFC 4291 text forms, optional zone id)."""
    addr = text.split("%", 1)[0]
    if addr.count(":") < 2:
        return False
    # A bare "::" is more often a C++/Rust path separator than the unspecified address.
    if addr == "::":
        return False
    # `x[::2]` is a Python slice; of the one-group `::N` forms only loopback is common.
    if addr.startswith("::") and ":" not in addr[2:] and "." not in addr and addr != "::1":
        return False
    import ipaddress  # here: loading the matchers (every hook call) does not need it

    try:
        ipaddress.IPv6Address(addr)
    except ValueError:
        return False
    return True


def ip(text: str) -> bool:
    """IPv4 or IPv6."""
    return ipv4(text) if "." in text and ":" not in text else ipv6(text)


# --- email -------------------------------------------------------------------------------


def email(text: str) -> bool:
    """Structural checks the pattern cannot express: dots in the local part, label hyphens."""
    local, _, domain = text.rpartition("@")
    if not local or local[0] == "." or local[-1] == "." or ".." in local:
        return False
    labels = domain.split(".")
    if len(labels) < 2 or not labels[-1].isalpha():
        return False
    return all(0 < len(lbl) <= 63 and lbl[0] != "-" and lbl[-1] != "-" for lbl in labels)


# --- phone -------------------------------------------------------------------------------


# ITU-T E.164 assigned country calling codes (1 to 3 digits).
_CC3 = (
    "211 212 213 216 218 220 221 222 223 224 225 226 227 228 229 230 231 232 233 234 235 "
    "236 237 238 239 240 241 242 243 244 245 246 247 248 249 250 251 252 253 254 255 256 "
    "257 258 260 261 262 263 264 265 266 267 268 269 290 291 297 298 299 350 351 352 353 "
    "354 355 356 357 358 359 370 371 372 373 374 375 376 377 378 380 381 382 383 385 386 "
    "387 389 420 421 423 500 501 502 503 504 505 506 507 508 509 590 591 592 593 594 595 "
    "596 597 598 599 670 672 673 674 675 676 677 678 679 680 681 682 683 685 686 687 688 "
    "689 690 691 692 800 808 850 852 853 855 856 870 878 880 881 882 883 886 888 960 961 "
    "962 963 964 965 966 967 968 970 971 972 973 974 975 976 977 979 992 993 994 995 996 "
    "998"
)
_CC2 = (
    "20 27 30 31 32 33 34 36 39 40 41 43 44 45 46 47 48 49 51 52 53 54 55 56 57 58 60 61 "
    "62 63 64 65 66 81 82 84 86 90 91 92 93 94 95 98"
)
COUNTRY_CODES = frozenset(("1 7 " + _CC2 + " " + _CC3).split())


def _country_code(d: str) -> str | None:
    for n in (1, 2, 3):
        if d[:n] in COUNTRY_CODES:
            return d[:n]
    return None


def _e164_ok(d: str) -> bool:
    """Digits after `+` or `00` (trunk `(0)` already removed) fit that country's plan."""
    cc = _country_code(d)
    if cc is None:
        return False
    if cc == "7":  # Russia / Kazakhstan: ten national digits
        return len(d) == 11
    if d.startswith("1"):  # NANP: area code and exchange never start with 0 or 1
        return len(d) == 11 and d[1] not in "01" and d[4] not in "01"
    if d.startswith("44"):
        return len(d) in (11, 12)
    if d.startswith("49"):
        return 8 <= len(d) <= 15
    if d.startswith("33"):
        return len(d) == 11 and d[2] != "0"
    if d.startswith("91"):
        return len(d) == 12
    return 8 <= len(d) <= 15 and d[0] != "0"


def _strip_extension(text: str) -> str:
    # The pattern only admits lower-case "x", "ext", "ext." and "extension" markers.
    for marker in ("x", "e"):
        at = text.find(marker)
        if at >= 0:
            text = text[:at]
    return text.rstrip()


def _national_trunk_ok(d: str, sizes: list[int]) -> bool:
    """A national number with trunk 0 (UK, DE, FR, IN): 10-11 digits, not `00`, written whole,
    as area + one or two groups of at least 3 digits, or in French pairs. Dates such as
    `01.02.2024 10` (groups 2-2-4-2) fail."""
    if len(d) not in (10, 11) or d[1] == "0":
        return False
    if len(sizes) == 1 or sizes == [2, 2, 2, 2, 2]:
        return True
    return len(sizes) <= 3 and 2 <= sizes[0] <= 5 and min(sizes[1:]) >= 3


_NANP_SHAPES = ([3, 3, 4], [10], [1, 3, 3, 4], [11])


def phone(text: str) -> bool:
    """A phone number in E.164 / international form, or a national form of US, UK, DE, FR or
    IN. The pattern has already fixed the shape (separators, trunk prefix, or a phone word
    before a bare run); this checks the numbering plan: assigned country code and length,
    NANP area/exchange digits, national lengths and groupings."""
    core = _strip_extension(text.strip())
    if core.startswith("+") or core.startswith("00"):
        d = digits_of(core.replace("(0)", "", 1))
        if core.startswith("00"):
            d = d[2:]
        return _e164_ok(d)
    d = digits_of(core)
    sizes = [len(g) for g in digit_groups(core)]
    if d.startswith("0"):
        return _national_trunk_ok(d, sizes)
    if len(d) == 11 and d[0] == "1":  # 1-800-555-0199
        d = d[1:]
    if len(d) != 10:
        return False
    if d[0] not in "01" and d[3] not in "01" and sizes in _NANP_SHAPES:  # area, exchange
        return True
    # Indian mobile numbers: ten digits starting 6-9, written whole or 5+5.
    return d[0] in "6789" and sizes in ([10], [5, 5])


# --- secrets -----------------------------------------------------------------------------


def shannon_entropy(text: str) -> float:
    """Shannon entropy in bits per character."""
    if not text:
        return 0.0
    n = len(text)
    return -sum(k / n * math.log2(k / n) for k in Counter(text).values())


def _char_classes(text: str) -> int:
    lower = any(c.islower() for c in text)
    upper = any(c.isupper() for c in text)
    digit = any(c.isdigit() for c in text)
    other = any(not c.isalnum() for c in text)
    return lower + upper + digit + other


def random_token(text: str, floor: float = 3.0) -> bool:
    """A machine-generated token: not a placeholder like `xxxx…` or `AKIA…EXAMPLE…` padding,
    entropy at least `floor` bits per character."""
    return shannon_entropy(text) >= floor and _char_classes(text) >= 2


def aws_key_id(text: str) -> bool:
    """An AWS access key id: the 16 characters after the prefix are random base32, so
    filler such as `AKIAXXXXXXXXXXXXXXXX` is rejected by entropy."""
    return shannon_entropy(text[4:]) >= 2.5


_PLACEHOLDER_WORDS = ("example", "changeme", "redacted", "placeholder", "your", "xxxx", "****")


def _is_reference(v: str) -> bool:
    """Whether a value is code or a template that *names* a secret rather than containing
    one: `${VAR}`, `$VAR`, `{{ var }}`, `%(var)s`, `<key>`, `get_key()`, `os.environ[...]`,
    `settings.api_key`."""
    if v[0] in "<{" or v.startswith(("${", "$(", "%(")):
        return True
    var = v[1:]
    if v[0] == "$" and var.isidentifier() and (var.isupper() or var.islower()):
        return True  # $API_KEY; a mixed-case "$O4NDXlvDtZY" is more likely a literal
    cut = len(v)
    for i, c in enumerate(v):
        if c in "([":
            cut = i
            break
    name = v[:cut]
    # A call `f(...)` or an index `x[...]`: closed by the bracket that opened it, or cut off
    # right after it (`get_key(`). "mPBz80cEDTH71Bv0(7rK2Ou(" is a password, not a call.
    closer = {"(": ")", "[": "]"}.get(v[cut]) if cut < len(v) else None
    shaped = closer is not None and (v[-1] == closer or cut == len(v) - 1)
    if shaped and name and all(p.isidentifier() for p in name.split(".")):
        return True
    parts = v.split(".")
    return len(parts) > 1 and all(p.isidentifier() for p in parts)


def secret_value(text: str) -> bool:
    """The value side of `api_key = value`: a literal high-entropy string with a digit or an
    upper-case letter, not a reference (`${VAR}`, `get_key()`, `config.secret`), placeholder,
    keyword or number."""
    v = text.strip().strip("\"'`")
    if len(v) < 8 or v.isdigit() or _is_reference(v):
        return False
    low = v.lower()
    if any(w in low for w in _PLACEHOLDER_WORDS) or low in ("none", "null", "true", "false"):
        return False
    if not any(c.isdigit() or c.isupper() for c in v):
        return False  # identifiers such as "access_token" or "prod-db-credentials"
    # Short random strings cannot reach 3 bits/char (12 characters top out at 3.58).
    floor = min(3.0, 0.7 * math.log2(len(v)))
    return shannon_entropy(v) >= floor and _char_classes(v) >= 2


def _b64url_json(part: str) -> object:
    # Imported here: loading the matchers (every hook call) needs neither (json is ~1.4 ms
    # of a fresh process).
    import base64
    import json

    padded = part + "=" * (-len(part) % 4)
    raw = base64.urlsafe_b64decode(padded.encode("ascii"))
    return json.loads(raw)


def jwt(text: str) -> bool:
    """A JSON Web Token: header and payload decode (base64url) to JSON objects, the header
    names an `alg`, and the signature is present unless `alg` is `none`."""
    parts = text.split(".")
    if len(parts) != 3:
        return False
    try:
        header = _b64url_json(parts[0])
        payload = _b64url_json(parts[1])
    except (ValueError, UnicodeDecodeError):  # binascii.Error and JSONDecodeError too
        return False
    if not isinstance(header, dict) or not isinstance(payload, dict):
        return False
    alg = header.get("alg")
    if not isinstance(alg, str):
        return False
    return bool(parts[2]) or alg.lower() == "none"


def pem_private_key(text: str) -> bool:
    """A PEM private key block with a body of plausible base64 (not an empty template)."""
    body_start = text.find("-----", 10)
    body = text[body_start + 5 :] if body_start >= 0 else text
    b64 = sum(1 for c in body if c.isalnum() or c in "+/=")
    return b64 >= 64
