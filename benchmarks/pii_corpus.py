"""Tool outputs for the matcher benchmarks, made here (deterministic, no downloads).

Text kinds are what agents' tools actually return: Python and JS source, JSON API responses,
CSV exports, server logs, shell output, HTML, base64 blobs, Markdown, and prose. Clean texts
are full of look-alikes: numeric and UUID ids, request ids (`req=5855128937`), hashes,
versions, timestamps, order numbers, amounts, ports, pids, times, slices, MACs, phone-like digit
runs. Texts "with PII" also carry one planted PII value or secret about every
`PLANT_EVERY` bytes, rendered the way that kind of text holds it (a JSON field, a CSV cell, a
log key, a string literal); `document()` returns the planted values as they appear in the
text, so that `benchmarks/pii_accuracy.py` can score precision and recall on them.

Positive values come from the accuracy corpus's generators (tests/stdlib/corpus.py, Faker with
a fixed seed). A phone written as a bare digit run is planted only next to a phone word
(`"phone": ...`, `phone=`, `tel.`): without one it is indistinguishable from an id, and
Charter does not call it a phone (docs/matchers.md).
"""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import json
import string
import sys
import uuid
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from random import Random
from types import ModuleType

SEED = 19
PLANT_EVERY = 2048
KINDS = (
    "python", "javascript", "json", "csv", "logs", "shell", "html", "base64", "markdown", "prose",
)  # fmt: skip

HEX = "0123456789abcdef"


@cache
def accuracy_corpus() -> ModuleType:
    """tests/stdlib/corpus.py, imported by path (tests/ is not a package)."""
    path = Path(__file__).resolve().parent.parent / "tests" / "stdlib" / "corpus.py"
    spec = importlib.util.spec_from_file_location("charter_pii_corpus", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


# --- look-alikes ---------------------------------------------------------------------------


def _digits(rng: Random, n: int) -> str:
    return str(rng.randint(1, 9)) + "".join(rng.choice(string.digits) for _ in range(n - 1))


def _hex(rng: Random, n: int) -> str:
    return "".join(rng.choice(HEX) for _ in range(n))


class Look:
    """Random look-alike values, one method per kind of token."""

    def __init__(self, rng: Random) -> None:
        self.r = rng

    def uuid(self) -> str:
        return str(uuid.UUID(int=self.r.getrandbits(128), version=4))

    def req_id(self) -> str:
        return _digits(self.r, 10)

    def snowflake(self) -> str:
        # Snowflake ids (Twitter, Discord, ...) are timestamp-based: 19 digits led by 1 today.
        # A random 16-19 digit run with a card brand prefix passes Luhn one time in ten and
        # is a card to any detector.
        return str(self.r.randint(1_100_000_000_000_000_000, 1_999_999_999_999_999_999))

    def order(self) -> str:
        return f"ORD-{self.r.randint(2019, 2025)}-{_digits(self.r, 6)}"

    def sha(self, n: int = 40) -> str:
        return _hex(self.r, n)

    def version(self) -> str:
        r = self.r
        return f"{r.randint(0, 9)}.{r.randint(0, 30)}.{r.randint(0, 99)}"

    def ts(self) -> str:
        r = self.r
        return (
            f"2025-{r.randint(1, 12):02d}-{r.randint(1, 28):02d}T{r.randint(0, 23):02d}:"
            f"{r.randint(0, 59):02d}:{r.randint(0, 59):02d}.{r.randint(0, 999):03d}Z"
        )

    def time(self) -> str:
        r = self.r
        return f"{r.randint(0, 23):02d}:{r.randint(0, 59):02d}:{r.randint(0, 59):02d}"

    def date(self) -> str:
        r = self.r
        return f"{r.randint(1, 28):02d}.{r.randint(1, 12):02d}.{r.randint(2019, 2025)}"

    def amount(self) -> str:
        return f"{self.r.randint(1, 99999)}.{self.r.randint(0, 99):02d}"

    def epoch(self) -> str:
        return str(self.r.randint(1_600_000_000, 1_800_000_000))

    def epoch_ms(self) -> str:
        return str(self.r.randint(1_600_000_000_000, 1_800_000_000_000))

    def digit_run(self) -> str:  # phone-like: 10 or 11 digits, no phone word
        return _digits(self.r, self.r.choice([10, 11]))

    def mac(self) -> str:
        return ":".join(_hex(self.r, 2) for _ in range(6))

    def word(self) -> str:
        return self.r.choice(WORDS)

    def host(self) -> str:
        return f"{self.word()}-{self.r.randint(1, 40)}.svc.internal"


WORDS = (
    "order", "item", "customer", "status", "total", "refund", "invoice", "shipment", "account",
    "queue", "worker", "cache", "session", "report", "region", "batch", "ticket", "product",
    "vendor", "price", "stock", "update", "fetch", "parse", "render", "build", "deploy",
)  # fmt: skip


# --- clean generators: one chunk (a few hundred bytes) of a text kind per call --------------


def _python(lk: Look) -> str:
    r, w = lk.r, lk.word()
    limit = r.randint(10, 500)
    return (
        f"def {w}_{r.randint(1, 99)}(items: list[dict], limit: int = {limit}) -> int:\n"
        f'    """Return the {w} count (since v{lk.version()}, see #{r.randint(100, 9999)})."""\n'
        f"    total = 0\n"
        f"    for i, row in enumerate(items[::2]):\n"
        f'        if row.get("id") == {lk.req_id()} or row["ref"] == "{lk.order()}":\n'
        f'            total += row.get("qty", 0) * {lk.amount()}\n'
        f'    cache_key = "{lk.sha(32)}"  # {lk.ts()}\n'
        f"    return total + 0x{_hex(r, 4)} % {r.randint(2, 97)}\n\n"
    )


def _javascript(lk: Look) -> str:
    w = lk.word()
    return (
        f"export async function load{w.title()}(id = {lk.snowflake()}n) {{\n"
        f"  const res = await fetch(`/api/v2/{w}s/${{id}}?v={lk.version()}&t={lk.epoch_ms()}`);\n"
        f'  const etag = "{lk.sha(40)}";\n'
        f"  if (res.status !== 200) throw new Error(`{w} ${{id}} failed at {lk.time()}`);\n"
        f"  return {{ ...(await res.json()), uuid: '{lk.uuid()}', ratio: 16 / 9 }};\n"
        f"}}\n"
    )


def _json_record(lk: Look) -> dict[str, object]:
    r = lk.r
    return {
        "id": lk.uuid(),
        "order_number": lk.order(),
        "customer_id": int(lk.req_id()),
        "external_id": lk.snowflake(),
        "created_at": lk.ts(),
        "total": lk.amount(),
        "currency": r.choice(["USD", "EUR", "GBP"]),
        "items": [{"sku": f"SKU-{_digits(r, 6)}", "qty": r.randint(1, 9)} for _ in range(2)],
        "version": lk.version(),
        "checksum": lk.sha(64),
    }


def _json(lk: Look) -> str:
    return json.dumps(_json_record(lk)) + ",\n"


def _csv(lk: Look) -> str:
    r = lk.r
    rows = []
    for _ in range(4):
        rows.append(
            f"{lk.order()},{lk.req_id()},{lk.snowflake()},SKU-{_digits(r, 6)},{r.randint(1, 40)},"
            f"{lk.amount()},{lk.ts()},{r.choice(['paid', 'shipped', 'refunded'])},{lk.digit_run()}"
        )
    return "\n".join(rows) + "\n"


def _logs(lk: Look) -> str:
    r = lk.r
    lines = []
    for _ in range(3):
        lines.append(
            f"{lk.ts()} {r.choice(['INFO', 'WARN', 'DEBUG'])} [{lk.host()}] req={lk.req_id()} "
            f"trace={lk.sha(32)} {r.choice(['GET', 'POST'])} /api/v1/{lk.word()}s/{lk.req_id()} "
            f"status={r.choice([200, 201, 404, 500])} dur={r.randint(1, 999)}.{r.randint(0, 9)}ms "
            f"pid={r.randint(100, 65535)} at {lk.time()} build {lk.version()}"
        )
    return "\n".join(lines) + "\n"


def _shell(lk: Look) -> str:
    r = lk.r
    return (
        f"-rw-r--r--  1 app  staff  {r.randint(100, 9_999_999):>8} Jan {r.randint(1, 28):>2} "
        f"{lk.time()[:5]} {lk.word()}_{lk.req_id()}.log\n"
        f"app  {r.randint(100, 65535):>6}  {r.randint(0, 99)}.{r.randint(0, 9)}  "
        f"{r.randint(1, 9)}.{r.randint(0, 9)} {r.randint(10000, 999999):>7} ?  Ss {lk.time()[:5]} "
        f"  {r.randint(0, 99)}:{r.randint(0, 59):02d} python -m {lk.word()} --port "
        f"{r.randint(1024, 65535)}\n"
        f"commit {lk.sha(40)}\nDate:   {lk.date()} {lk.time()} +0000\n"
        f"{lk.word()}=={lk.version()}\n/dev/disk{r.randint(1, 9)}s{r.randint(1, 5)}  "
        f"{r.randint(10, 999)}Gi  {r.randint(1, 99)}%  {lk.mac()}\n"
    )


def _html(lk: Look) -> str:
    r = lk.r
    return (
        f'<div class="{lk.word()}-card" data-id="{lk.req_id()}" style="color:#{_hex(r, 6)}">\n'
        f'  <a href="/{lk.word()}s/{lk.order()}?v={lk.version()}">{lk.word().title()} '
        f"#{r.randint(1000, 99999)}</a>\n"
        f'  <time datetime="{lk.ts()}">{lk.date()} {lk.time()[:5]}</time>\n'
        f'  <span class="price">{lk.amount()} EUR</span><img src="/i/{lk.sha(16)}.png">\n'
        f"</div>\n"
    )


def _base64(lk: Look) -> str:
    raw = lk.r.randbytes(342)
    b64 = base64.b64encode(raw).decode()
    return "\n".join(b64[i : i + 76] for i in range(0, len(b64), 76)) + "\n"


def _markdown(lk: Look) -> str:
    r = lk.r
    return (
        f"## {lk.word().title()} {lk.version()}\n\n"
        f"- Fixed {lk.word()} parsing ([#{r.randint(100, 9999)}](../pull/{r.randint(100, 9999)}))"
        f" in `{lk.sha(7)}`\n"
        f"| order | qty | total | at |\n|---|---:|---:|---|\n"
        f"| {lk.order()} | {r.randint(1, 9)} | {lk.amount()} | {lk.ts()} |\n\n"
        f"```bash\npip install {lk.word()}=={lk.version()}\n```\n\n"
    )


def _prose(lk: Look) -> str:
    r = lk.r
    words = [lk.word() for _ in range(r.randint(25, 45))]
    return " ".join(words).capitalize() + ". Thanks, see you on Friday!\n"


CLEAN: dict[str, Callable[[Look], str]] = {
    "python": _python,
    "javascript": _javascript,
    "json": _json,
    "csv": _csv,
    "logs": _logs,
    "shell": _shell,
    "html": _html,
    "base64": _base64,
    "markdown": _markdown,
    "prose": _prose,
}

# --- planting ------------------------------------------------------------------------------

# How each kind holds a value: `{k}` is a key naming the entity, `{v}` the value.
HOLDERS: dict[str, tuple[str, ...]] = {
    "python": ('{k} = "{v}"\n', "# owner: {v}\n", 'client.send(to="{v}")\n'),
    "javascript": ("const {k} = '{v}';\n", "// reach {v}\n"),
    "json": ('{{"{k}": "{v}", "note": "from the CRM"}},\n',),
    "csv": ("{o},{v},{n}\n",),
    "logs": ("{t} INFO [api] {k}={v} accepted\n",),
    "shell": ("export {K}={v}\n", "{k}: {v}\n"),
    "html": ('<p class="{k}">{v}</p>\n', "<tr><td>{k}</td><td>{v}</td></tr>\n"),
    "base64": ("{k}: {v}\n",),
    "markdown": ("- {k}: `{v}`\n", "Contact: {v}\n\n"),
    "prose": ("Please use {v} for this, thanks.\n",),
}

KEYS = {
    "pii.email": "email",
    "pii.phone": "phone",
    "pii.ssn": "ssn",
    "pii.card": "card",
    "pii.iban": "iban",
    "pii.ip": "client_ip",
    "secrets.aws_access_key": "aws_key_id",
    "secrets.github_token": "gh",
    "secrets.slack_token": "slack",
    "secrets.stripe_key": "stripe",
    "secrets.openai_key": "openai",
    "secrets.jwt": "session",
    "secrets.private_key": "key_pem",
    "secrets.generic": "api_key",
}


@dataclass(frozen=True)
class Document:
    kind: str
    text: str
    planted: tuple[tuple[str, str], ...]  # (entity, value as it appears in `text`)


def _value(entity: str, fake: object, rng: Random) -> str:
    gen = accuracy_corpus().GENERATORS[entity]
    while True:
        v = gen(fake, rng)
        # Faker's national formats ("0##########") sometimes give "00...": the international
        # prefix, not a national number (area codes never start with 0). Its only
        # international format with 00 is "001-...".
        if entity == "pii.phone" and v and v.startswith("00") and not v.startswith("001-"):
            continue
        if v is not None:
            return str(v)


def _hold(kind: str, entity: str, v: str, lk: Look) -> tuple[str, str]:
    """Text holding `v` in `kind`'s syntax, and `v` as it appears there."""
    key = KEYS[entity]
    bare_phone = entity == "pii.phone" and v.isdigit()
    template = lk.r.choice(HOLDERS[kind])
    if bare_phone and ("{k}" not in template or "{k}</td>" in template):
        template = "phone: {v}\n"
    if entity == "secrets.generic" and ("{k}" not in template or kind == "html"):
        template = "api_key: {v}\n"
    shown = v
    if kind == "json" or (kind in ("python", "javascript") and "\n" in v):
        shown = json.dumps(v)[1:-1]
    text = template.format(k=key, K=key.upper(), v=shown, o=lk.order(), n=lk.req_id(), t=lk.ts())
    return text, shown


@cache
def _fake() -> object:
    from faker import Faker

    corpus = accuracy_corpus()
    fake = Faker(list(corpus.LOCALES))
    fake.seed_instance(SEED)
    return fake


def document(kind: str, size: int, with_pii: bool, seed: int = SEED) -> Document:
    """About `size` bytes of `kind` (cut at a chunk boundary, never inside a value)."""
    key = f"{kind}/{size}/{with_pii}/{seed}"
    rng = Random(key)
    _fake().seed_instance(zlib.crc32(key.encode()))  # each document its own values
    lk = Look(rng)
    make = CLEAN[kind]
    entities = accuracy_corpus().ENTITIES
    parts: list[str] = []
    planted: list[tuple[str, str]] = []
    total = 0
    next_plant = rng.randint(0, PLANT_EVERY // 2) if with_pii else size + 1
    while total < size:
        if total >= next_plant:
            entity = entities[len(planted) % len(entities)]
            chunk, shown = _hold(kind, entity, _value(entity, _fake(), rng), lk)
            planted.append((entity, shown))
            next_plant += PLANT_EVERY
        else:
            chunk = make(lk)
        if total + len(chunk) > size and parts:
            break
        parts.append(chunk)
        total += len(chunk)
    text = "".join(parts)
    return Document(kind, text, tuple(planted))


@cache
def text(kind: str, size: int, with_pii: bool) -> str:
    """A benchmark text of exactly `size` characters: a 64 KB document repeated (planted
    values repeat with it), cut at the end."""
    base = document(kind, min(size, 64 << 10), with_pii).text
    if len(base) >= size:
        return base[:size]
    return (base * (size // len(base) + 1))[:size]


def digest() -> str:
    """A short digest of every kind's 64 KB documents, to show two runs used the same texts."""
    h = hashlib.sha256()
    for kind in KINDS:
        for with_pii in (False, True):
            h.update(document(kind, 64 << 10, with_pii).text.encode())
    return h.hexdigest()[:12]
