"""``python -m benchmarks``: run every benchmark and print one Markdown report.

Installs nothing; peer engines come from ``pip install -e ".[bench]"`` and any that do not
import are reported as unavailable.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

from benchmarks import engines, report, run


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fast smoke run, small sizes")
    parser.add_argument("--out", type=Path, help="also write the report to this file")
    parser.add_argument(
        "--engines",
        default=",".join(engines.ENGINES),
        help=f"comma-separated subset of: {', '.join(engines.ENGINES)}",
    )
    parser.add_argument("--no-pii", action="store_true", help="skip benchmarks/pii.py")
    args = parser.parse_args(argv)
    names = [name.strip() for name in args.engines.split(",") if name.strip()]
    unknown = [name for name in names if name not in engines.ENGINES]
    if unknown:
        parser.error(f"unknown engine(s): {', '.join(unknown)}")

    def progress(message: str) -> None:
        print(f"[bench] {message}", file=sys.stderr, flush=True)

    results = run.run(names, quick=args.quick, with_pii=not args.no_pii, progress=progress)
    command = " ".join(["python -m benchmarks", *map(shlex.quote, argv or sys.argv[1:])])
    text = report.render(results, names, command)
    sys.stdout.write(text)
    if args.out:
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
