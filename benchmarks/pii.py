"""Speed of the stdlib matchers (one RE2 Set, every pii and secrets matcher).

Run: python benchmarks/pii.py
Prints, in one process:
- µs to scan a 200-byte tool argument with every stdlib matcher, clean and with a hit;
- MB/s on 4 KB, 64 KB and 1 MB texts (clean, and with a sprinkling of PII);
- the same texts through Presidio's predefined *pattern* recognizers called directly
  (no NLP model), as a speed ratio (skipped, with a note, if presidio-analyzer is absent);
- a pathological user pattern `(a+)+$` on 256 KB and 1 MB adversarial inputs: time per MB
  stays flat, i.e. linear.
`run()` returns the same rows as dicts for the benchmark suite's report.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from charter.stdlib import Scanner, resolve, user_matcher

TARGET_CLEAN_US = 3.0
TARGET_HIT_US = 15.0
TARGET_MBPS_1MB = 200.0
TARGET_PRESIDIO_RATIO = 50.0

ARG_CLEAN = (
    "Please summarise the quarterly report for the northern region and list the three "
    "largest open tickets, grouped by product area, with owner and status. Keep it short "
    "and friendly, thanks!"
)
ARG_HIT = ARG_CLEAN[:150] + " Reply to jo.doe@example.com asap"


def _all_specs() -> list[Any]:
    return [*(resolve("pii.any") or ()), *(resolve("secrets.any") or ())]


def _best_us(fn: Callable[[], object], number: int, repeat: int = 5) -> float:
    """Best-of-`repeat` mean time of one call, in microseconds."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter_ns()
        for _ in range(number):
            fn()
        best = min(best, (time.perf_counter_ns() - t0) / number / 1000)
    return best


def _text(size: int, with_pii: bool) -> str:
    from faker import Faker

    fake = Faker("en_US")
    fake.seed_instance(7)
    parts: list[str] = []
    total = 0
    while total < min(size, 64 << 10):
        s = fake.paragraph(nb_sentences=6)
        if with_pii and len(parts) % 8 == 0:
            s += f" Contact {fake.email()} or {fake.phone_number()}."
        parts.append(s)
        total += len(s) + 1
    block = "\n".join(parts)
    return (block * (size // len(block) + 1))[:size]


def _presidio() -> tuple[list[Any] | None, str]:
    try:
        import tldextract.tldextract as tld
        from presidio_analyzer.predefined_recognizers import (
            CreditCardRecognizer,
            EmailRecognizer,
            IbanRecognizer,
            IpRecognizer,
            UsSsnRecognizer,
        )
    except ImportError as err:
        return None, f"presidio-analyzer not importable ({err}); skipping Presidio rows"
    # The email recognizer's TLD check would try to download the public suffix list.
    tld.TLD_EXTRACTOR = tld.TLDExtract(suffix_list_urls=())
    recognizers = [
        EmailRecognizer(),
        CreditCardRecognizer(),
        IbanRecognizer(),
        IpRecognizer(),
        UsSsnRecognizer(),
    ]
    return recognizers, "Presidio: Email, CreditCard, Iban, Ip, UsSsn pattern recognizers"


def _row(
    name: str, value: float, unit: str, target: str = "", ok: bool | None = None
) -> dict[str, Any]:
    return {"name": name, "value": round(value, 3), "unit": unit, "target": target, "ok": ok}


def run() -> list[dict[str, Any]]:
    """All benchmark rows: name, value, unit, target, ok (None when there is no target)."""
    rows: list[dict[str, Any]] = []
    scanner = Scanner(_all_specs())
    assert scanner.scan(ARG_CLEAN) == frozenset() and scanner.scan(ARG_HIT) == {"pii.email"}
    clean = _best_us(lambda: scanner.scan(ARG_CLEAN), 20_000)
    hit = _best_us(lambda: scanner.scan(ARG_HIT), 20_000)
    n = len(scanner.specs)
    rows.append(
        _row(
            f"scan 200 B clean, {n} matchers",
            clean,
            "us",
            f"< {TARGET_CLEAN_US}",
            clean < TARGET_CLEAN_US,
        )  # fmt: skip
    )
    rows.append(
        _row(
            f"scan 200 B with a hit, {n} matchers",
            hit,
            "us",
            f"< {TARGET_HIT_US}",
            hit < TARGET_HIT_US,
        )  # fmt: skip
    )

    recognizers, note = _presidio()
    rows.append({"name": note, "value": None, "unit": "", "target": "", "ok": None})
    for label, size in (("4 KB", 4 << 10), ("64 KB", 64 << 10), ("1 MB", 1 << 20)):
        for with_pii in (False, True):
            text = _text(size, with_pii)
            kind = "with PII" if with_pii else "clean"
            number = max(1, (4 << 20) // size)
            us = _best_us(lambda t=text: scanner.scan(t), number, repeat=3)  # type: ignore[misc]
            mbps = size / us  # bytes per µs == MB/s
            target, ok = "", None
            if size == 1 << 20 and not with_pii:
                target, ok = f">= {TARGET_MBPS_1MB}", mbps >= TARGET_MBPS_1MB
            rows.append(_row(f"scan {label} {kind}", mbps, "MB/s", target, ok))
            if recognizers is not None:

                def presidio(t: str = text) -> None:
                    for r in recognizers:
                        r.analyze(t, r.supported_entities, None)

                p_us = _best_us(presidio, 1, repeat=2 if size < (1 << 20) else 1)
                ratio = p_us / us
                rows.append(
                    _row(
                        f"  Presidio {label} {kind}: charter is N x faster",
                        ratio,
                        "x",
                        f">= {TARGET_PRESIDIO_RATIO}",
                        ratio >= TARGET_PRESIDIO_RATIO,
                    )  # fmt: skip
                )

    evil = Scanner([user_matcher("evil", r"(a+)+$")])
    for label, size in (("256 KB", 256 << 10), ("1 MB", 1 << 20)):
        adversarial = "a" * (size - 1) + "!"
        us = _best_us(lambda t=adversarial: evil.scan(t), 3, repeat=2)  # type: ignore[misc]
        rows.append(
            _row(
                f"pathological (a+)+$ on {label} adversarial: ms per MB",
                us / 1000 / (size / (1 << 20)),
                "ms/MB",
                "flat (linear)",
                None,
            )  # fmt: skip
        )
    return rows


def main() -> int:
    rows = run()
    for r in rows:
        if r["value"] is None:
            print(r["name"])
            continue
        verdict = "" if r["ok"] is None else ("  ok" if r["ok"] else "  MISSED")
        target = f"  (target {r['target']})" if r["target"] else ""
        print(f"{r['name']:<58} {r['value']:>10.2f} {r['unit']:<5}{target}{verdict}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
