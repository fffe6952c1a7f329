"""Speed of the stdlib matchers (one RE2 Set, all 14 pii and secrets matchers) on tool outputs.

Run: python benchmarks/pii.py [--quick] [--no-worst] [--markdown]
Prints, in one process, per text kind of benchmarks/pii_corpus.py (Python and JS source, JSON,
CSV, logs, shell output, HTML, base64, Markdown, prose):
- µs to scan 200 B, and MB/s at 4 KB, 64 KB and 1 MB, clean and with planted PII/secrets
  (`scan`, what `contains` costs), plus MB/s of `redact` on the texts with PII;
- the same texts through Presidio's recognizers for the same entities, called directly (no NLP
  model): Email, Phone, CreditCard, Iban, Ip, UsSsn, and PatternRecognizers with the secrets
  patterns; as "Charter is N x faster". Presidio runs at 200 B, 4 KB and 64 KB (its phone
  recognizer takes seconds per 64 KB; 1 MB would take minutes per text). Skipped with a
  note if presidio-analyzer (the `bench` extra) is absent;
- a value of four strings scanned in one joined Set pass beside string by string;
- a clean `tool_result` under `redact pii.any, secrets.any` through `Policy.decide` beside
  its hand-written twin (the same Scanner's redact, then "allow");
- a pathological user pattern `(a+)+$` on 256 KB and 1 MB: time per MB stays flat (linear);
- candidate-dense worst cases per matcher (benchmarks/pii_worst.py, MB/s and peak RSS, each
  in its own process).
`run()` returns the rows (name, value, unit, target, ok) for the benchmark suite's report.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import pii_corpus  # noqa: E402
from charter.stdlib import Scanner, resolve, user_matcher  # noqa: E402

TARGET_CLEAN_US = 3.0
TARGET_CLEAN_MBPS = 300.0  # 64 KB and 1 MB
TARGET_PII_MBPS = 100.0  # 64 KB and 1 MB
TARGET_PRESIDIO_RATIO = 50.0
TARGET_REDACT_TWIN = 1.2

SIZES = (("200 B", 200), ("4 KB", 4 << 10), ("64 KB", 64 << 10), ("1 MB", 1 << 20))
PRESIDIO_MAX = 64 << 10

Row = dict[str, Any]


def all_specs() -> list[Any]:
    return [*(resolve("pii.any") or ()), *(resolve("secrets.any") or ())]


def best_us(fn: Callable[[], object], number: int, repeat: int = 5) -> float:
    """Best-of-`repeat` mean time of one call, in microseconds."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter_ns()
        for _ in range(number):
            fn()
        best = min(best, (time.perf_counter_ns() - t0) / number / 1000)
    return best


def _row(
    name: str, value: float | None, unit: str, target: str = "", ok: bool | None = None
) -> Row:
    v = None if value is None else round(value, 3)
    return {"name": name, "value": v, "unit": unit, "target": target, "ok": ok}


# --- Presidio ------------------------------------------------------------------------------


def presidio() -> tuple[list[Any] | None, str]:
    """Presidio recognizers for the 14 entities, or None and why not."""
    try:
        import re

        import tldextract.tldextract as tld
        from presidio_analyzer import Pattern, PatternRecognizer
        from presidio_analyzer.predefined_recognizers import (
            CreditCardRecognizer,
            EmailRecognizer,
            IbanRecognizer,
            IpRecognizer,
            PhoneRecognizer,
            UsSsnRecognizer,
        )
    except ImportError as err:
        return None, f"presidio-analyzer not importable ({err}); pip install presidio-analyzer"
    # The email recognizer's TLD check would try to download the public suffix list.
    tld.TLD_EXTRACTOR = tld.TLDExtract(suffix_list_urls=())
    recognizers: list[Any] = [
        EmailRecognizer(),
        PhoneRecognizer(),
        CreditCardRecognizer(),
        IbanRecognizer(),
        IpRecognizer(),
        UsSsnRecognizer(),
    ]
    for spec in resolve("secrets.any") or ():
        entity = spec.name.split(".", 1)[1].upper()
        recognizers.append(
            PatternRecognizer(
                supported_entity=entity,
                patterns=[Pattern(entity, spec.pattern, 0.5)],
                global_regex_flags=re.MULTILINE,
            )
        )
    return recognizers, (
        "Presidio: Email, Phone, CreditCard, Iban, Ip, UsSsn recognizers + 8 PatternRecognizers "
        "with the secrets patterns, called directly"
    )


def presidio_us(recognizers: list[Any], text: str) -> float:
    def run() -> None:
        for r in recognizers:
            r.analyze(text, r.supported_entities, None)

    number = 20 if len(text) <= 256 else 1
    return best_us(run, number, repeat=3 if len(text) <= 4096 else 1)


# --- per text kind -------------------------------------------------------------------------


def _number(size: int) -> int:
    return max(3, min(20_000, (8 << 20) // size))


def kind_rows(scanner: Scanner, recognizers: list[Any] | None, quick: bool) -> list[Row]:
    rows: list[Row] = []
    names = ["pii.any", "secrets.any"]
    sizes = SIZES[:3] if quick else SIZES
    for kind in pii_corpus.KINDS:
        for label, size in sizes:
            for with_pii in (False, True):
                text = pii_corpus.text(kind, size, with_pii)
                state = "with PII" if with_pii else "clean"
                n = _number(size)
                us = best_us(lambda t=text: scanner.scan(t), n, repeat=5 if size < 1 << 20 else 3)
                name = f"{kind} {label} {state}: scan"
                if size == 200:
                    ok = us < TARGET_CLEAN_US if not with_pii else None
                    target = f"< {TARGET_CLEAN_US}" if not with_pii else ""
                    rows.append(_row(name, us, "us", target, ok))
                else:
                    mbps = size / us
                    goal = TARGET_PII_MBPS if with_pii else TARGET_CLEAN_MBPS
                    timed = size >= 64 << 10
                    target = f">= {goal:g}" if timed else ""
                    rows.append(_row(name, mbps, "MB/s", target, mbps >= goal if timed else None))
                if with_pii and size > 200:
                    r_us = best_us(
                        lambda t=text: scanner.redact(t, names), max(1, n // 4), repeat=3
                    )
                    rows.append(_row(f"{kind} {label} with PII: redact", size / r_us, "MB/s"))
                if recognizers is not None and size <= PRESIDIO_MAX:
                    ratio = presidio_us(recognizers, text) / us
                    rows.append(
                        _row(
                            f"{kind} {label} {state}: Presidio / Charter",
                            ratio,
                            "x",
                            f">= {TARGET_PRESIDIO_RATIO:g}",
                            ratio >= TARGET_PRESIDIO_RATIO,
                        )
                    )
    return rows


# --- values of several strings, redact twin, pathological pattern --------------------------


def multi_string_rows(scanner: Scanner) -> list[Row]:
    args = {
        "to": "ops-team",
        "subject": "Weekly order export " + pii_corpus.text("prose", 60, False),
        "body": pii_corpus.text("json", 200, False),
        "ref": "ORD-2024-118533",
    }
    joined = "\n".join(args.values())
    one = best_us(lambda: scanner.scan(args), 20_000)
    per_string = best_us(lambda: [scanner.scan(v) for v in args.values()], 20_000)
    single = best_us(lambda: scanner.scan(joined), 20_000)
    return [
        _row("4-argument call: scan(value), one joined Set pass", one, "us"),
        _row("  the same strings scanned one by one", per_string, "us"),
        _row("  the same text as one string", single, "us"),
    ]


REDACT_POLICY = """
policy "redact-bench" version "1"
use pii, secrets
default allow
@id("mask")
on tool_result redact pii.any, secrets.any in result
"""


def redact_twin_rows() -> list[Row]:
    import charter

    policy = charter.compile(REDACT_POLICY)
    scanner = Scanner(all_specs())
    names = ("pii.any", "secrets.any")
    rows = []
    for label, size in (("200 B", 200), ("4 KB", 4 << 10), ("64 KB", 64 << 10)):
        body = pii_corpus.text("json", size, False)
        request = {"stage": "tool_result", "tool": "crm.read", "result": {"body": body, "n": 3}}

        def twin(req: dict[str, Any] = request) -> str:
            _, counts = scanner.redact(req["result"], names)
            return "allow" if not counts else "allow+redact"

        decision = policy.decide(request)
        assert decision.allowed and [r.counts for r in decision.redactions] == [{}]
        assert twin() == "allow"
        n = max(20, _number(size) // 4)
        ours = theirs = float("inf")
        for _ in range(9):  # interleaved, so that drift hits both sides alike; best of each
            ours = min(ours, best_us(lambda r=request: policy.decide(r), n, repeat=1))
            theirs = min(theirs, best_us(twin, n, repeat=1))
        ratio = ours / theirs
        rows.append(
            _row(
                f"clean tool_result {label} under redact: decide / hand-written twin",
                ratio,
                "x",
                f"<= {TARGET_REDACT_TWIN}",
                ratio <= TARGET_REDACT_TWIN,
            )
        )
    return rows


def pathological_rows() -> list[Row]:
    evil = Scanner([user_matcher("evil", r"(a+)+$")])
    rows = []
    for label, size in (("256 KB", 256 << 10), ("1 MB", 1 << 20)):
        adversarial = "a" * (size - 1) + "!"
        us = best_us(lambda t=adversarial: evil.scan(t), 3, repeat=2)
        per_mb = us / 1000 / (size / (1 << 20))
        rows.append(
            _row(f"pathological (a+)+$ on {label}: ms per MB", per_mb, "ms/MB", "flat (linear)")
        )
    return rows


def run(quick: bool = False, worst: bool = True) -> list[Row]:
    """All benchmark rows: name, value, unit, target, ok (None when there is no target)."""
    scanner = Scanner(all_specs())
    assert scanner.scan("Reply to jo.doe@example.com asap") == {"pii.email"}
    recognizers, note = presidio()
    rows: list[Row] = [
        _row(f"{len(scanner.specs)} matchers; texts digest {pii_corpus.digest()}", None, ""),
        _row(note, None, ""),
    ]
    rows += kind_rows(scanner, recognizers, quick)
    rows += multi_string_rows(scanner)
    rows += redact_twin_rows()
    rows += pathological_rows()
    if worst:
        from benchmarks import pii_worst

        rows += pii_worst.run(quick)
    return rows


def kind_table(rows: list[Row]) -> str:
    """The per-kind rows as one Markdown table (for docs/performance.md)."""
    by = {r["name"]: r["value"] for r in rows}
    head = (
        "| text | 200 B clean µs | 4 KB | 64 KB | 1 MB | 64 KB PII | 1 MB PII "
        "| redact 64 KB PII | Presidio / Charter (min, max) |"
    )
    out = [head, "|---|" + "---:|" * 8]
    for kind in pii_corpus.KINDS:

        def cell(label: str, state: str, what: str = "scan", k: str = kind) -> str:
            v = by.get(f"{k} {label} {state}: {what}")
            return "—" if v is None else f"{v:.0f}" if v >= 10 else f"{v:.2f}"

        ratios = [
            r["value"] for r in rows if r["name"].startswith(kind + " ") and "Presidio" in r["name"]
        ]
        span = f"{min(ratios):.0f}× – {max(ratios):.0f}×" if ratios else "—"
        out.append(
            f"| {kind} | {cell('200 B', 'clean')} | {cell('4 KB', 'clean')} | "
            f"{cell('64 KB', 'clean')} | {cell('1 MB', 'clean')} | {cell('64 KB', 'with PII')} | "
            f"{cell('1 MB', 'with PII')} | {cell('64 KB', 'with PII', 'redact')} | {span} |"
        )
    return "\n".join(out)


def main() -> int:
    quick = "--quick" in sys.argv
    rows = run(quick, worst="--no-worst" not in sys.argv)
    if "--markdown" in sys.argv:
        print(kind_table(rows) + "\n")
    for r in rows:
        if r["value"] is None:
            print(r["name"])
            continue
        verdict = "" if r["ok"] is None else ("  ok" if r["ok"] else "  MISSED")
        target = f"  (target {r['target']})" if r["target"] else ""
        print(f"{r['name']:<66} {r['value']:>10.2f} {r['unit']:<5}{target}{verdict}")
    missed = [r["name"] for r in rows if r["ok"] is False]
    print(f"\n{len(missed)} targets missed" + (": " + "; ".join(missed) if missed else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
