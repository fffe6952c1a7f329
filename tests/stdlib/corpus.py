"""Deterministic accuracy corpus for the stdlib matchers (Faker, fixed seed).

Positives: Faker values in several locales (en_US, en_GB, de_DE, fr_FR, en_IN) and realistic
secrets in each vendor format, embedded in prose, JSON and code. Negatives: look-alikes (order
ids, UUIDs, versions, timestamps, hashes, phone-like numbers, Luhn-failing card numbers, bad
IBAN checksums, never-issued SSNs, placeholder credentials) in the same contexts.

Each `Item` names the entity it contains (or None) and the exact value; an entity's matcher is
scored on every item: finding the value is a true positive, any other match a false positive.

Faker occasionally produces values that are invalid by the entity's own standard (IBANs one
character short, Maestro numbers with the non-existent IIN 0604, Indian numbers starting with
0-5 or German ones with the international prefix 00 as area code); those are dropped from the
positives, and the choice is stated here so that the scores stay honest.

A phone written as a bare digit run ("0257600090", "8825281378") is a phone only next to a
phone word (issue 19: a bare ten-digit run is far more often an id); the corpus writes those
positives as "tel. 0257600090", and bare runs without one are among the negatives.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import json
import string
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from random import Random

from faker import Faker

SEED = 20251121
# Faker's dates and times run up to "now" unless told otherwise; a fixed end keeps the corpus
# the same from one run (and one second) to the next.
END = datetime(2025, 11, 21, tzinfo=UTC)
PER_ENTITY = 180
LOCALES = ("en_US", "en_GB", "de_DE", "fr_FR", "en_IN")

PII = ("pii.email", "pii.phone", "pii.ssn", "pii.card", "pii.iban", "pii.ip")
SECRETS = (
    "secrets.aws_access_key",
    "secrets.github_token",
    "secrets.slack_token",
    "secrets.stripe_key",
    "secrets.openai_key",
    "secrets.jwt",
    "secrets.private_key",
    "secrets.generic",
)
ENTITIES = PII + SECRETS


@dataclass(frozen=True)
class Item:
    text: str
    entity: str | None  # None for a negative
    value: str | None


B62 = string.ascii_letters + string.digits


def _rand(rng: Random, alphabet: str, n: int) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


# --- contexts ------------------------------------------------------------------------------

PROSE = (
    "Hi team, the customer asked us to use {v} for the follow-up on ticket #4821.",
    "{v}",
    "Notes from the call (2024-03-18 14:05): value given was {v}. Will confirm by Friday.",
    "Bitte verwenden Sie {v} für die Rückfrage — danke schön!",
    "Merci de noter : {v} (référence dossier 2024/117).",
    "As discussed, here it is: {v}\nLet me know if anything else is needed.",
)


def _json_ctx(fake: Faker, rng: Random, v: str) -> str:
    doc = {
        "id": fake.uuid4(),
        "order": f"ORD-{rng.randint(2019, 2025)}-{rng.randint(100000, 999999)}",
        "created_at": fake.iso8601(end_datetime=END),
        "amount": f"{rng.randint(1, 99999)}.{rng.randint(0, 99):02d}",
        "customer": {"name": fake.name(), "field": v, "tags": ["vip", "renewal"]},
        "version": f"{rng.randint(1, 9)}.{rng.randint(0, 20)}.{rng.randint(0, 40)}",
    }
    return json.dumps(doc, ensure_ascii=rng.random() < 0.5)


CODE = (
    'client = Client(url="https://api.example.com/v2", credential="{v}")',
    "const value = '{v}'; // TODO move to vault",
    "curl -s https://api.example.com/items -d 'value={v}' -H 'X-Request-Id: 42'",
    "# contact: {v}\nprint(process(record))",
    'headers = {{"Authorization": "Bearer {v}", "Accept": "application/json"}}',
)


def embed(fake: Faker, rng: Random, v: str) -> tuple[str, str]:
    """`v` in a random context, and `v` as it appears in that text (JSON escapes it)."""
    kind = rng.randrange(3)
    if kind == 0:
        return rng.choice(PROSE).format(v=v), v
    if kind == 1:
        text = _json_ctx(fake, rng, v)
        escaped = json.dumps(v, ensure_ascii='"field": "' + v not in text)[1:-1]
        return text, escaped
    return rng.choice(CODE).format(v=v), v


# --- PII positives -------------------------------------------------------------------------


def _phone(fake: Faker, rng: Random) -> str | None:
    locale = rng.choice(LOCALES)
    p: str = fake[locale].phone_number()
    d = "".join(c for c in p if c.isdigit())
    if d.startswith("00") and not p.startswith(("+", "00")):
        return None  # "00..." is the international prefix, not a national area code
    if len(d) == 10 and not p.startswith(("+", "0")) and d[0] in "012345" and locale == "en_IN":
        return None  # no Indian number starts 0-5
    return p


def _card(fake: Faker, rng: Random) -> str | None:
    kind = rng.choice(
        ["visa16", "visa13", "visa19", "mastercard", "amex", "discover", "diners", "jcb16",
         "jcb15", "maestro"]
    )  # fmt: skip
    n: str = fake.credit_card_number(card_type=kind)
    if n.startswith("0604"):
        return None
    style = rng.randrange(3)
    if style == 1 and len(n) == 16:
        return " ".join(n[i : i + 4] for i in range(0, 16, 4))
    if style == 2 and len(n) == 16:
        return "-".join(n[i : i + 4] for i in range(0, 16, 4))
    if style == 1 and len(n) == 15:
        return f"{n[:4]} {n[4:10]} {n[10:]}"
    return n


def _iban_valid(s: str) -> bool:
    from charter.stdlib.validators import iban

    return iban(s)


def _iban(fake: Faker, rng: Random) -> str | None:
    v: str = fake.iban()
    if not _iban_valid(v):
        return None
    if rng.random() < 0.4:
        return " ".join(v[i : i + 4] for i in range(0, len(v), 4))
    return v


def _ip(fake: Faker, rng: Random) -> str:
    r = rng.randrange(4)
    if r == 0:
        return str(fake.ipv4_public())
    if r == 1:
        return str(fake.ipv4_private())
    v6 = str(fake.ipv6())
    return str(ipaddress.IPv6Address(v6)) if r == 2 else v6


# --- secret positives ----------------------------------------------------------------------


def _aws(fake: Faker, rng: Random) -> str:
    return rng.choice(["AKIA", "ASIA"]) + _rand(rng, string.ascii_uppercase + "234567", 16)


def _github(fake: Faker, rng: Random) -> str:
    if rng.random() < 0.25:
        return f"github_pat_{_rand(rng, B62, 22)}_{_rand(rng, B62, 59)}"
    return rng.choice(["ghp", "gho", "ghu", "ghs", "ghr"]) + "_" + _rand(rng, B62, 36)


def _slack(fake: Faker, rng: Random) -> str:
    r = rng.randrange(3)
    digits = string.digits
    if r == 0:
        return f"xoxb-{_rand(rng, digits, 12)}-{_rand(rng, digits, 13)}-{_rand(rng, B62, 24)}"
    if r == 1:
        return (
            f"xoxp-{_rand(rng, digits, 12)}-{_rand(rng, digits, 12)}-"
            f"{_rand(rng, digits, 13)}-{_rand(rng, '0123456789abcdef', 32)}"
        )
    upper = string.ascii_uppercase + digits
    return (
        f"https://hooks.slack.com/services/T{_rand(rng, upper, 8)}/"
        f"B{_rand(rng, upper, 10)}/{_rand(rng, B62, 24)}"
    )


def _stripe(fake: Faker, rng: Random) -> str:
    r = rng.randrange(3)
    if r == 0:
        return f"sk_live_{_rand(rng, B62, rng.choice([24, 99]))}"
    if r == 1:
        return f"rk_test_{_rand(rng, B62, 24)}"
    return f"whsec_{_rand(rng, B62, 32)}"


def _openai(fake: Faker, rng: Random) -> str:
    r = rng.randrange(3)
    if r == 0:
        return f"sk-{_rand(rng, B62, 20)}T3BlbkFJ{_rand(rng, B62, 20)}"
    if r == 1:
        return f"sk-proj-{_rand(rng, B62 + '_-', 74)}T3BlbkFJ{_rand(rng, B62 + '_-', 74)}"
    return f"sk-ant-api03-{_rand(rng, B62 + '_-', 93)}AA"


def _jwt(fake: Faker, rng: Random) -> str:
    header = {"alg": rng.choice(["HS256", "RS256"]), "typ": "JWT"}
    payload = {
        "sub": fake.uuid4(),
        "name": fake.name(),
        "iat": rng.randint(1_600_000_000, 1_800_000_000),
    }
    h = _b64url(json.dumps(header, separators=(",", ":")).encode())
    p = _b64url(json.dumps(payload, separators=(",", ":")).encode())
    sig = hmac.new(fake.password().encode(), f"{h}.{p}".encode(), hashlib.sha256).digest()
    return f"{h}.{p}.{_b64url(sig)}"


def _pem(fake: Faker, rng: Random) -> str:
    kind = rng.choice(["RSA ", "EC ", "OPENSSH ", ""])
    body = base64.b64encode(rng.randbytes(rng.choice([121, 270, 600]))).decode()
    lines = "\n".join(body[i : i + 64] for i in range(0, len(body), 64))
    return f"-----BEGIN {kind}PRIVATE KEY-----\n{lines}\n-----END {kind}PRIVATE KEY-----"


GENERIC_CTX = (
    'DB_PASSWORD="{v}"',
    "api_key: {v}",
    '{{"client_secret": "{v}", "client_id": "app-42"}}',
    "export SERVICE_TOKEN={v}",
    "settings.auth_token = '{v}'",
    "password => '{v}'",
)


def _generic(fake: Faker, rng: Random) -> str:
    return fake.password(length=rng.choice([12, 16, 24, 32]), special_chars=rng.random() < 0.3)


GENERATORS: dict[str, Callable[[Faker, Random], str | None]] = {
    "pii.email": lambda f, r: str(f.email()),
    "pii.phone": _phone,
    "pii.ssn": lambda f, r: str(f["en_US"].ssn()),
    "pii.card": _card,
    "pii.iban": _iban,
    "pii.ip": _ip,
    "secrets.aws_access_key": _aws,
    "secrets.github_token": _github,
    "secrets.slack_token": _slack,
    "secrets.stripe_key": _stripe,
    "secrets.openai_key": _openai,
    "secrets.jwt": _jwt,
    "secrets.private_key": _pem,
    "secrets.generic": _generic,
}


# --- negatives -----------------------------------------------------------------------------


def _luhn_ok(d: str) -> bool:
    from charter.stdlib.validators import luhn

    return luhn(d)


def _negatives(fake: Faker, rng: Random) -> list[str]:
    d = string.digits
    out: list[str] = []
    for _ in range(12):
        # Card-like numbers failing Luhn, and Luhn-passing numbers with no card IIN.
        n = rng.choice("3456") + _rand(rng, d, 15)
        while _luhn_ok(n):
            n = n[:-1] + str((int(n[-1]) + 1) % 10)
        out.append(n)
        out.append(" ".join(n[i : i + 4] for i in range(0, 16, 4)))
        m = "9" + _rand(rng, d, 15)
        out.append(m)
        bad_area = rng.choice(["000", "666", "9" + _rand(rng, d, 2)])
        out += [
            fake.uuid4(),
            hashlib.sha1(rng.randbytes(8)).hexdigest(),
            hashlib.sha256(rng.randbytes(8)).hexdigest(),
            f"ORD-{rng.randint(2019, 2025)}-{_rand(rng, d, 7)}",
            f"INV-{_rand(rng, d, 10)}",
            f"order #{_rand(rng, d, 10)}",
            str(rng.randint(1_600_000_000, 1_800_000_000)),  # Unix seconds
            str(rng.randint(1_600_000_000_000, 1_800_000_000_000)),  # Unix millis
            fake.iso8601(end_datetime=END),
            fake.date(pattern="%d.%m.%Y", end_datetime=END),
            fake.date(pattern="%Y-%m-%d %H:%M:%S", end_datetime=END),
            f"v{rng.randint(0, 9)}.{rng.randint(0, 30)}.{rng.randint(0, 99)}.{rng.randint(0, 9)}",
            f"{rng.randint(0, 9)}.{rng.randint(0, 30)}.{rng.randint(0, 99)}",
            f"build {rng.randint(2019, 2025)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}.1",
            f"978-{rng.randint(0, 9)}-{_rand(rng, d, 3)}-{_rand(rng, d, 5)}-{rng.randint(0, 9)}",
            f"{rng.randint(10000, 99999)}-{_rand(rng, d, 4)}",  # ZIP+4
            f"${rng.randint(1, 999)},{_rand(rng, d, 3)},{_rand(rng, d, 3)}.{_rand(rng, d, 2)}",
            f"{rng.randint(1, 9)} {_rand(rng, d, 3)} {_rand(rng, d, 3)} EUR",
            f"{rng.randint(1, 999)}.{rng.randint(256, 999)}.{rng.randint(0, 255)}.7",  # octet > 255
            f"1.3.6.1.4.1.{rng.randint(1, 99999)}.{rng.randint(1, 9)}",
            fake.mac_address(),
            fake.time(end_datetime=END),
            bad_area + f"-{_rand(rng, d, 2)}-{_rand(rng, d, 4)}",  # never-issued SSN area
            f"{_rand(rng, d, 3)}-00-{_rand(rng, d, 4)}",
            f"PN-{_rand(rng, d, 3)}-{_rand(rng, d, 2)}-{_rand(rng, d, 4)}",
            f"1{_rand(rng, d, 9)}",  # starts with 1: no NANP number does
            f"req={rng.choice('23456789')}{_rand(rng, d, 9)}",  # a bare ten-digit id
            f"account 0{rng.choice('123456789')}{_rand(rng, d, 9)}",  # zero-led, no phone word
            _rand(rng, d, 8),
            _rand(rng, d, 12),
            f"{rng.choice(['DE', 'GB', 'FR'])}{_rand(rng, d, 2)}{_rand(rng, d, 18)}",  # bad mod-97
            f"XX{_rand(rng, d, 20)}",
            _rand(rng, string.ascii_uppercase + d, 16),
            "std::vector<std::string> v; ns::Type::member",
            "ratio 16:9, time 12:30:45, score 3:1",
            f"@{fake.user_name()} mentioned you",
            f"{fake.user_name()}@localhost",
            f"npm i {fake.word()}@{rng.randint(1, 9)}.{rng.randint(0, 9)}.{rng.randint(0, 9)}",
            f"{fake.user_name()} at {fake.domain_name().replace('.', ' dot ')}",
            '@app.route("/api/v1/items")',
            "AKIA" + "X" * 16,
            "AKIA" + _rand(rng, string.ascii_lowercase, 16),
            "ghp_" + "x" * 36,
            "ghp_" + _rand(rng, B62, 20),
            "xoxb-your-token-here",
            "sk_test_" + _rand(rng, B62, 10),
            "pk_live_" + _rand(rng, B62, 24),
            "sk-" + "x" * 40,
            "sk-proj-your-api-key-here",
            "eyJhbGciOiJIUzI1NiJ9.not-base64!.sig",
            "eyJ" + _rand(rng, B62, 30) + "." + _rand(rng, B62, 30) + "." + _rand(rng, B62, 20),
            "-----BEGIN PUBLIC KEY-----\n" + base64.b64encode(rng.randbytes(90)).decode(),
            "-----BEGIN CERTIFICATE-----\n" + base64.b64encode(rng.randbytes(90)).decode(),
            "-----BEGIN RSA PRIVATE KEY-----\n...\n-----END RSA PRIVATE KEY-----",
            base64.b64encode(rng.randbytes(36)).decode(),
            'password = os.environ["DB_PASSWORD"]',
            "api_key = get_api_key()",
            f"token_count = {_rand(rng, d, 9)}",
            "secret: <redacted>",
            "password: ********",
            "token = None",
            "api_key = settings.api_key",
            'password = "changeme"',
            'token_type = "access_token"',
            "API_KEY=${API_KEY}",
            'secret_name = "prod-db-credentials"',
            "max_tokens=4096",
        ]
    return out


def build() -> list[Item]:
    """The whole corpus, identical on every call and machine (fixed seed)."""
    fake = Faker(list(LOCALES))
    fake.seed_instance(SEED)
    rng = Random(SEED)
    items: list[Item] = []
    for entity, gen in GENERATORS.items():
        made = 0
        while made < PER_ENTITY:
            v = gen(fake, rng)
            if v is None:
                continue
            if entity == "secrets.generic":
                text = rng.choice(GENERIC_CTX).format(v=v)
            elif entity == "pii.phone" and v.isdigit():
                text, _ = embed(fake, rng, f"tel. {v}")
            elif entity == "secrets.private_key" and rng.random() < 0.5:
                text = json.dumps({"path": "deploy/key.pem", "content": v})
                v = json.dumps(v)[1:-1]  # the key as it appears inside the JSON text
            else:
                text, v = embed(fake, rng, v)
            items.append(Item(text, entity, v))
            made += 1
    for neg in _negatives(fake, rng):
        items.append(Item(embed(fake, rng, neg)[0], None, None))
    return items


@dataclass
class Score:
    tp: int = 0
    fp: int = 0
    fn: int = 0

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0


def score(items: list[Item]) -> tuple[dict[str, Score], list[tuple[str, str, str]]]:
    """Score every entity's matcher on every item. Returns the scores and the mistakes as
    (entity, kind "FP"/"FN", text)."""
    from charter.stdlib import Scanner, resolve

    specs = [s for e in ENTITIES for s in (resolve(e) or ())]
    scanner = Scanner(specs)
    scores = {e: Score() for e in ENTITIES}
    mistakes: list[tuple[str, str, str]] = []
    for item in items:
        for entity in ENTITIES:
            found = [item.text[f.start : f.end] for f in scanner.find(item.text, [entity])]
            expected = item.value if item.entity == entity else None
            s = scores[entity]
            if expected is not None:
                if expected in found:
                    s.tp += 1
                    found.remove(expected)
                else:
                    s.fn += 1
                    mistakes.append((entity, "FN", item.text))
            for extra in found:
                s.fp += 1
                mistakes.append((entity, "FP", f"{extra!r} in {item.text}"))
    return scores, mistakes


def table(scores: dict[str, Score]) -> str:
    """Precision/recall per entity as a text table."""
    lines = [f"{'entity':<24} {'tp':>5} {'fp':>4} {'fn':>4} {'precision':>9} {'recall':>7}"]
    for e, s in scores.items():
        lines.append(f"{e:<24} {s.tp:>5} {s.fp:>4} {s.fn:>4} {s.precision:>9.3f} {s.recall:>7.3f}")
    return "\n".join(lines)
