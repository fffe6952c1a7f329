"""Running `test` and `property` blocks: `charter test`, coverage and the pytest plugin.

    from charter.testing import run
    report = run([Path("examples/")], seed=1, examples=200)
    report.exit_code      # 0 when every test and property passed

Kept import-free so that loading the pytest plugin (which lives in this package) stays cheap;
the names below are resolved on first use.
"""

from __future__ import annotations

from typing import Any

__all__ = ["CaseResult", "SessionReport", "run", "run_property", "run_test"]


def __getattr__(name: str) -> Any:
    if name in ("run", "SessionReport"):
        from charter.testing import session

        return getattr(session, name)
    if name in ("CaseResult", "run_property", "run_test"):
        from charter.testing import runner

        return getattr(runner, name)
    raise AttributeError(name)
