"""Candidate-dense worst cases for every stdlib matcher: time and peak memory per call.

Run: python benchmarks/pii_worst.py [--quick]
Each case is a text made of one matcher's candidates only, valid ones (every candidate is a
hit) or ones RE2 admits and the validator rejects, scanned with `scan` (`contains`), `count`
and `redact`, each in a fresh process so that peak RSS belongs to that call alone. A call past
the scanner's limits is refused (ScanError: a deny with the reason in a policy); the time to
refusal is what is reported then. A 50 MB text of e-mail addresses (issue 18 / D8) is refused
by the size limit before any scanning.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

ROOT = Path(__file__).resolve().parents[1]
SIZE = 4 << 20

# name -> (matcher, unit repeated to SIZE bytes)
CASES: dict[str, tuple[str, str]] = {
    "email valid": ("pii.email", "a.b@example.com "),
    "email rejected (label > 63)": ("pii.email", "x@" + "a" * 64 + ".com "),
    "phone valid": ("pii.phone", "(555) 555-0123, "),
    "phone rejected (no country 999)": ("pii.phone", "+999 1234 5678 "),
    "phone-like runs (no candidate)": ("pii.phone", "5855128937 12:30:45 "),
    "ssn valid": ("pii.ssn", "123-45-6780 "),
    "ssn rejected (area 000)": ("pii.ssn", "000-12-3456 "),
    "card valid": ("pii.card", "4111111111111111 "),
    "card rejected (Luhn)": ("pii.card", "4111111111111112 "),
    "iban valid": ("pii.iban", "DE89370400440532013000 "),
    "iban rejected (mod 97)": ("pii.iban", "DE00370400440532013000 "),
    "ip valid": ("pii.ip", "10.0.0.1 "),
    "ip rejected (::N slice)": ("pii.ip", "[::2] "),
    "aws rejected (entropy)": ("secrets.aws_access_key", "AKIAAAAAAAAAAAAAAAAA "),
    "github rejected (entropy)": ("secrets.github_token", "ghp_" + "a" * 36 + " "),
    "slack rejected (entropy)": ("secrets.slack_token", "xoxb-12345678-" + "a" * 24 + " "),
    "stripe rejected (entropy)": ("secrets.stripe_key", "sk_live_" + "a" * 24 + " "),
    "openai rejected (entropy)": ("secrets.openai_key", "sk-" + "x" * 40 + " "),
    "jwt rejected (not JSON)": ("secrets.jwt", "eyJhbGciOiJIUzI1NiJ9.eyJub3Q.c2ln "),
    "private key rejected (empty)": (
        "secrets.private_key",
        "-----BEGIN RSA PRIVATE KEY-----\n...\n-----END RSA PRIVATE KEY-----\n",
    ),
    "generic rejected (placeholder)": ("secrets.generic", "token = changeme123\n"),
}
QUICK = (
    "email valid",
    "phone rejected (no country 999)",
    "card rejected (Luhn)",
    "jwt rejected (not JSON)",
)
OPS = ("scan", "count", "redact")


def _rss_mb() -> float:
    """Peak RSS of this process in MB: VmHWM (per address space, so a parent's peak does not
    carry over as ru_maxrss does across fork and exec), else ru_maxrss."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def one(case: str, op: str, size: int = SIZE) -> dict[str, Any]:
    """Run one case in this process; the result as a dict (printed as JSON by `main`)."""
    from charter.stdlib import ScanError, Scanner, resolve

    name, unit = CASES.get(case, ("pii.email", "a.b@example.com "))
    scanner = Scanner([*(resolve("pii.any") or ()), *(resolve("secrets.any") or ())])
    text = (unit * (size // len(unit) + 1))[:size]
    base = _rss_mb()
    t0 = time.perf_counter()
    try:
        if op == "scan":
            outcome = "hit" if name in scanner.scan(text) else "none"
        elif op == "count":
            outcome = f"{scanner.count(text, name)} hits"
        else:
            outcome = f"{sum(scanner.redact(text, [name])[1].values())} replaced"
    except ScanError as err:
        outcome = "refused: " + str(err).split(";")[0][:60]
    seconds = time.perf_counter() - t0
    return {
        "mbps": size / seconds / 1e6,
        "seconds": seconds,
        "rss_mb": _rss_mb(),
        "rss_growth_mb": _rss_mb() - base,
        "outcome": outcome,
    }


def _child(case: str, op: str, size: int) -> dict[str, Any]:
    code = (
        "import json, sys; sys.path.insert(0, sys.argv[1]); from benchmarks import pii_worst; "
        "print(json.dumps(pii_worst.one(sys.argv[2], sys.argv[3], int(sys.argv[4]))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(ROOT), case, op, str(size)],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
        cwd=ROOT,
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def run(quick: bool = False) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    cases = QUICK if quick else tuple(CASES)
    for case in cases:
        for op in OPS:
            r = _child(case, op, SIZE)
            rows.append(
                {
                    "name": f"worst case 4 MB {case}: {op} -> {r['outcome']}",
                    "value": round(r["mbps"], 2),
                    "unit": "MB/s",
                    "target": f"peak RSS {r['rss_mb']:.0f} MB (+{r['rss_growth_mb']:.0f})",
                    "ok": None,
                }
            )
    big = _child("50 MB of e-mail addresses", "redact", 50 << 20)
    rows.append(
        {
            "name": f"50 MB of e-mail addresses: redact -> {big['outcome']}",
            "value": round(big["seconds"] * 1000, 1),
            "unit": "ms",
            "target": f"peak RSS {big['rss_mb']:.0f} MB",
            "ok": None,
        }
    )
    return rows


def main() -> int:
    for r in run("--quick" in sys.argv):
        print(f"{r['name']:<92} {r['value']:>9.2f} {r['unit']:<5} {r['target']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
