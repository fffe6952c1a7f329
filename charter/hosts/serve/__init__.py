"""`charter serve`: Charter as an HTTP sidecar (spec hosts.md §4), with the approval inbox.

    from charter.hosts.serve import Sidecar
    app = Sidecar(guard, pending, approvers=load_approvers("approvers.toml")).app()

Needs Starlette (and uvicorn to serve it): `pip install 'charter[serve]'`.
"""

from __future__ import annotations

from charter.hosts.serve.app import MAX_BATCH, MAX_BODY, Sidecar
from charter.hosts.serve.auth import Approver, Approvers, AuthError, load_approvers

__all__ = [
    "MAX_BATCH",
    "MAX_BODY",
    "Approver",
    "Approvers",
    "AuthError",
    "Sidecar",
    "load_approvers",
]
