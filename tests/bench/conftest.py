"""Make the repo-root ``benchmarks`` package importable however pytest is invoked.

``benchmarks/`` is not part of the installed ``charter`` distribution, and plain ``pytest``
(unlike ``python -m pytest``) does not put the repo root on ``sys.path``.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = str(Path(__file__).resolve().parents[2])
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
