"""Pending approvals: park an action that needs approval, grant it, attach the grant on retry.

The Guard signs and checks grants (`Guard.approve`, `charter.runtime.approvals`); what a host
that blocks and retries lacks is a place to keep the pending action between processes and
to find the grant again when the agent repeats the call (spec hosts.md §0.5, shape 3):

    pending = PendingApprovals(guard, SQLitePending("state.db"))
    ticket = pending.park(decision, request)            # the deny names ticket.id
    pending.grant(ticket.id, by="alice", group="finance")   # Guard.approve, token stored
    request = pending.attach(request)                   # the identical retry gets the grant
    decision = guard.check(request)
    pending.settle(request, decision)                   # used once: the ticket is spent

A ticket is keyed by the action digest (`charter.runtime.approvals.action_digest`: stage,
tool, canonical args, agent, user, session), so an edited call or the same call from another
session finds no grant and is decided afresh, and a grant attached by hand to another action
is refused (`attach(request, ticket=...)` says why; the Guard would also refuse it as
transplanted). Grants are single use: the Guard spends the nonce, and `settle` marks the
ticket used, so granting it again is refused as a replay.
"""

from __future__ import annotations

import os

# `_thread`, not `threading`: the lock and thread-local types threading re-exports, without
# importing threading (~0.6 ms of every hook process).
from _thread import _local as thread_local
from _thread import allocate_lock
from collections.abc import Mapping
from functools import cache
from typing import TYPE_CHECKING, Any, Final, Protocol

import msgspec

from charter.engine.decision import Decision
from charter.runtime.tokens import token_hex

if TYPE_CHECKING:
    import sqlite3
    from pathlib import Path

    from charter.runtime.approvals import Grant
    from charter.runtime.guard import Guard

__all__ = [
    "ApprovalError",
    "MemoryPending",
    "PendingApprovals",
    "PendingStore",
    "SQLitePending",
    "Ticket",
    "ticket_text",
]

PENDING: Final = "pending"
GRANTED: Final = "granted"
DENIED: Final = "denied"
USED: Final = "used"
STATES: Final = (PENDING, GRANTED, DENIED, USED)


class ApprovalError(ValueError):
    """A refused approval operation; the message says why (shown to the person or agent)."""


class Ticket(msgspec.Struct, frozen=True, kw_only=True):
    """One action waiting for (or given) approval. Times are seconds since the epoch."""

    id: str
    action: str  # the action digest the grant must carry
    approvers: tuple[str, ...]
    reasons: tuple[str, ...]
    rules: tuple[str, ...] = ()  # the rules that asked for approval (shown to the approver)
    tool: str
    session: str | None
    args: Any  # what the approver is shown: the call's arguments
    created_at: float
    expires_at: float
    state: str = PENDING
    grant: str | None = None  # the grant token, once granted
    by: str | None = None
    group: str | None = None
    note: str | None = None
    decided_at: float | None = None

    def expired(self, now: float) -> bool:
        return now >= self.expires_at


class PendingStore(Protocol):
    """Where tickets live between processes."""

    def put(self, ticket: Ticket) -> None: ...

    def get(self, ticket_id: str) -> Ticket | None: ...

    def by_action(self, action: str) -> list[Ticket]: ...

    def all(self) -> list[Ticket]: ...

    # Optional: `may_have_granted() -> bool`, False only when no ticket is granted. Then
    # `PendingApprovals.attach` skips digesting the request (a host's hot path: it runs
    # on every call). A store without it is asked by action, as before.


class MemoryPending:
    """Tickets in this process only."""

    def __init__(self) -> None:
        self._tickets: dict[str, Ticket] = {}
        self._granted: set[str] = set()
        self._lock = allocate_lock()

    def put(self, ticket: Ticket) -> None:
        with self._lock:
            self._tickets[ticket.id] = ticket
            if ticket.state == GRANTED:
                self._granted.add(ticket.id)
            else:
                self._granted.discard(ticket.id)

    def may_have_granted(self) -> bool:
        """Whether some ticket is granted (expired or not)."""
        return bool(self._granted)

    def get(self, ticket_id: str) -> Ticket | None:
        return self._tickets.get(ticket_id)

    def by_action(self, action: str) -> list[Ticket]:
        with self._lock:
            return [t for t in self._tickets.values() if t.action == action]

    def all(self) -> list[Ticket]:
        with self._lock:
            return sorted(self._tickets.values(), key=lambda t: t.created_at)


_SCHEMA = """
CREATE TABLE IF NOT EXISTS charter_pending (
    id TEXT PRIMARY KEY, action TEXT NOT NULL, created_at REAL NOT NULL, body BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS charter_pending_action ON charter_pending (action);
"""
_ENCODER = msgspec.json.Encoder()


@cache
def _decoder() -> msgspec.json.Decoder[Ticket]:
    # Built when a ticket is first read, not at import: resolving Ticket's 16 annotations
    # compiles each (typing.ForwardRef), and a hook call with no ticket granted reads none.
    return msgspec.json.Decoder(Ticket)


class SQLitePending:
    """Tickets in an SQLite file (the state store's file serves: the table is its own), so
    the hook process that parks a ticket and the `charter approvals` process that grants it
    share them."""

    def __init__(self, path: str | os.PathLike[str], *, timeout: float = 10.0) -> None:
        self._file = os.fspath(path)
        self._timeout = timeout
        self._local = thread_local()
        # Set before a ticket is first granted, and never removed: while it is absent no
        # ticket in the file is granted, and `may_have_granted` says so without opening the
        # database (a hook's every call asks; most never find a grant).
        self._marker = None if _in_memory(self._file) else self._file + ".granted"

    @property
    def path(self) -> Path:
        """The file (kept as text: importing pathlib is ~3 ms of every hook call)."""
        from pathlib import Path

        return Path(self._file)

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            # Connected (and the table made) on first use: a hook call that parks, grants
            # and attaches nothing never loads SQLite.
            import sqlite3

            conn = sqlite3.connect(self._file, timeout=self._timeout)
            with conn:
                conn.executescript(_SCHEMA)
            self._local.conn = conn
        return conn

    def put(self, ticket: Ticket) -> None:
        if ticket.state == GRANTED and self._marker is not None:
            _touch(self._marker)  # before the grant is in the file: see __init__
        with self._conn() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO charter_pending VALUES (?, ?, ?, ?)",
                (ticket.id, ticket.action, ticket.created_at, _ENCODER.encode(ticket)),
            )
        self._local.granted = None  # our own writes do not move data_version

    def may_have_granted(self) -> bool:
        """Whether some ticket is granted (expired or not). The tickets are read again only
        when the file changed: `PRAGMA data_version` moves when another connection (the
        `charter approvals grant` process) commits, and our own `put` forgets the answer."""
        if self._marker is not None and not os.path.exists(self._marker):
            return False
        conn = self._conn()
        version = conn.execute("PRAGMA data_version").fetchone()[0]
        known: tuple[int, bool] | None = getattr(self._local, "granted", None)
        if known is not None and known[0] == version:
            return known[1]
        granted = any(t.state == GRANTED for t in self.all())
        self._local.granted = (version, granted)
        return granted

    def get(self, ticket_id: str) -> Ticket | None:
        row = (
            self._conn()
            .execute("SELECT body FROM charter_pending WHERE id = ?", (ticket_id,))
            .fetchone()
        )
        return None if row is None else _decoder().decode(row[0])

    def by_action(self, action: str) -> list[Ticket]:
        rows = self._conn().execute(
            "SELECT body FROM charter_pending WHERE action = ? ORDER BY created_at", (action,)
        )
        return [_decoder().decode(r[0]) for r in rows]

    def all(self) -> list[Ticket]:
        rows = self._conn().execute("SELECT body FROM charter_pending ORDER BY created_at")
        return [_decoder().decode(r[0]) for r in rows]

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None


def _in_memory(file: str) -> bool:
    return file in ("", ":memory:") or file.startswith("file::memory:")


def _touch(path: str) -> None:
    if not os.path.exists(path):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))


class PendingApprovals:
    """Park, grant, deny and attach approvals over `guard` (its secret signs the grants,
    its clock dates them) and a `PendingStore` (in memory unless given)."""

    def __init__(self, guard: Guard, store: PendingStore | None = None) -> None:
        self.guard = guard
        self.store: PendingStore = store if store is not None else MemoryPending()

    def _now(self) -> float:
        return float(self.guard.clock())

    # ── the host's side ──────────────────────────────────────────────────────

    def park(self, decision: Decision, request: Mapping[str, Any], ttl: float = 900) -> Ticket:
        """The ticket for the action of `decision` (a `require_approval` from `Guard.check`
        of `request`): the pending (or denied) one for the same action if there is one,
        else a new one valid for `ttl` seconds. Raises `ApprovalError` when the decision
        names no action."""
        if decision.action is None or decision.effect != "require_approval":
            raise ApprovalError("only a require_approval decision from Guard.check can be parked")
        now = self._now()
        for old in self.store.by_action(decision.action):
            # A granted ticket whose grant was attached and still left the action needing
            # approval (rejected, or another group must approve too) is not the answer: a
            # new ticket names what is missing now, with the Guard's reasons.
            if old.state in (PENDING, DENIED) and not old.expired(now):
                return old
        session = request.get("session")
        sid = session.get("id") if isinstance(session, Mapping) else None
        tool = request.get("tool")
        name = tool.get("name") if isinstance(tool, Mapping) else tool
        ticket = Ticket(
            id=token_hex(6),
            action=decision.action,
            approvers=decision.approvers,
            reasons=decision.reasons,
            rules=decision.rules,
            tool=str(name),
            session=sid if isinstance(sid, str) else None,
            args=request.get("args"),
            created_at=now,
            expires_at=now + ttl,
        )
        self.store.put(ticket)
        return ticket

    def attach(self, request: Mapping[str, Any], ticket: str | None = None) -> dict[str, Any]:
        """`request` with the grants of its action added to `approvals`.

        Without `ticket`, every granted, unexpired ticket of the request's exact action
        (none for an edited call or another session: those are decided afresh). With
        `ticket`, that ticket's grant, or `ApprovalError` saying why it does not apply.
        """
        out = dict(request)
        if ticket is None:
            probe = getattr(self.store, "may_have_granted", None)
            if probe is not None and not probe():
                return out  # no grant anywhere: nothing to attach, no digest to compute
        # Imported here, past the probe: a call with no grant anywhere (the usual hook call)
        # digests nothing, and grants and their canon are ~0.4 ms of its imports.
        from charter.runtime.approvals import action_digest

        try:
            digest = action_digest(request)
        except ValueError:
            if ticket is not None:
                raise ApprovalError(
                    "this request cannot be approved: its arguments cannot be canonicalised"
                ) from None
            return out
        now = self._now()
        if ticket is not None:
            chosen = self._ticket(ticket)
            if chosen.state != GRANTED or chosen.grant is None:
                raise ApprovalError(f"ticket {chosen.id} is {chosen.state}, not granted")
            if chosen.action != digest:
                raise ApprovalError(
                    f"ticket {chosen.id} was granted for a different action (edited "
                    "arguments, another tool, agent or session): the grant does not apply"
                )
            tokens = [chosen.grant]
        else:
            tokens = [
                t.grant
                for t in self.store.by_action(digest)
                if t.state == GRANTED and t.grant is not None and not t.expired(now)
            ]
        if tokens:
            present = out.get("approvals")
            kept = (
                list(present)
                if isinstance(present, list | tuple)
                else ([] if present is None else [present])
            )
            out["approvals"] = kept + [t for t in tokens if t not in kept]
        return out

    def settle(self, request: Mapping[str, Any], decision: Decision) -> list[Ticket]:
        """After `Guard.check(request)`: the granted tickets whose grant let the action
        through are used (single use). Returns them."""
        present = request.get("approvals")
        if not decision.allowed or not present:
            return []
        tokens = set(present) if isinstance(present, list | tuple) else {present}
        from charter.runtime.approvals import action_digest  # see `attach`

        try:
            digest = action_digest(request)
        except ValueError:
            return []
        used = []
        for t in self.store.by_action(digest):
            if t.state == GRANTED and t.grant in tokens:
                t = msgspec.structs.replace(t, state=USED)
                self.store.put(t)
                used.append(t)
        return used

    # ── the approver's side ──────────────────────────────────────────────────

    def list(self, state: str | None = None) -> list[Ticket]:
        """Tickets, oldest first; only those in `state` when given."""
        return [t for t in self.store.all() if state is None or t.state == state]

    def get(self, ticket_id: str) -> Ticket:
        return self._ticket(ticket_id)

    def grant(self, ticket_id: str, by: str, group: str, ttl: float = 300) -> Ticket:
        """Approve the ticket as `by` of `group`: `Guard.approve` mints the grant (which
        refuses a group the action does not name, or a person the Guard's directory does not
        list), and the ticket keeps its token for `attach`. Refused (`ApprovalError`) for an
        unknown, expired, denied, already granted or already used ticket."""
        t = self._ticket(ticket_id)
        now = self._now()
        if t.state == USED:
            raise ApprovalError(
                f"ticket {t.id} was already used (replay refused): the action needs a new approval"
            )
        if t.state == DENIED:
            raise ApprovalError(f"ticket {t.id} was denied by {t.by}")
        if t.state == GRANTED:
            raise ApprovalError(f"ticket {t.id} is already granted (by {t.by} of {t.group})")
        if t.expired(now):
            raise ApprovalError(f"ticket {t.id} has expired; the agent must ask again")
        pending = Decision(
            "require_approval", False, reasons=t.reasons, approvers=t.approvers, action=t.action
        )
        try:
            minted: Grant = self.guard.approve(pending, by=by, group=group, ttl=ttl)
        except ValueError as err:
            raise ApprovalError(str(err)) from None
        done = msgspec.structs.replace(
            t,
            state=GRANTED,
            grant=minted.to_token(),
            by=by,
            group=group,
            decided_at=now,
            expires_at=minted.expires_at,
        )
        self.store.put(done)
        return done

    def deny(self, ticket_id: str, by: str, reason: str | None = None) -> Ticket:
        """Refuse the ticket; the agent's retry is told who refused and why."""
        t = self._ticket(ticket_id)
        if t.state in (USED, DENIED):
            raise ApprovalError(f"ticket {t.id} is already {t.state}")
        done = msgspec.structs.replace(
            t, state=DENIED, grant=None, by=by, note=reason, decided_at=self._now()
        )
        self.store.put(done)
        return done

    def _ticket(self, ticket_id: str) -> Ticket:
        t = self.store.get(ticket_id)
        if t is None:
            raise ApprovalError(f"no approval ticket {ticket_id!r}")
        return t


def ticket_text(ticket: Ticket) -> str:
    """What the agent (and the person watching it) is told about a parked action."""
    groups = ", ".join(ticket.approvers) or "an approver"
    reasons = "; ".join(ticket.reasons)
    if ticket.state == DENIED:
        note = f": {ticket.note}" if ticket.note else ""
        return f"approval denied by {ticket.by} (ticket {ticket.id}){note}"
    head = f"approval required from {groups} (ticket {ticket.id})"
    how = (
        f"an approver runs: charter approvals grant {ticket.id} --as NAME --group "
        f"{ticket.approvers[0] if ticket.approvers else 'GROUP'}; then retry the same call"
    )
    return f"{head}: {reasons}; {how}" if reasons else f"{head}; {how}"
