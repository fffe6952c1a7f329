"""Loggers made on first use.

Importing `logging` is a few milliseconds of every fresh process (a hook call is one per tool
call), so the runtime's modules name their logger and get it only when there is something
to report.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import logging

__all__ = ["logger"]


def logger(name: str) -> logging.Logger:
    """`logging.getLogger(name)`, importing `logging` on the first call."""
    import logging

    return logging.getLogger(name)
