"""`charter hook install AGENT`: not yet written."""

from __future__ import annotations

import sys
from typing import NoReturn


def install_main(argv: list[str]) -> NoReturn:
    print("charter: hook install is not available yet", file=sys.stderr)
    sys.exit(2)
