"""`charter serve POLICY`: the HTTP sidecar with the approval inbox (docs/hosts.md).

    charter serve examples/support --listen 127.0.0.1:8181 --state sqlite:state.db \\
        --approvers approvers.toml --log decisions.jsonl

Loopback by default. `--state` is `memory` or an SQLite file (shared with `charter
approvals` and `charter hook`: the same tickets and grant secret), or a `redis://` URL (then
`--secret-file` signs the grants). `--approvers` names who may approve for which group, each
with a token; the inbox page is `http://LISTEN/approvals`.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from charter.cli.common import fail

_CONFIG = "CHARTER_SERVE_CONFIG"

if TYPE_CHECKING:
    from charter.hosts.approvals import PendingApprovals
    from charter.hosts.serve import Sidecar
    from charter.runtime.guard import Guard
    from charter.runtime.live import Live
    from charter.runtime.policy import Policy
    from charter.runtime.state import Store


_KEYS = {
    "listen": "listen",
    "state": "state",
    "secret_file": "secret_file",
    "approvers": "approvers_path",
    "log": "log",
    "max_body": "max_body",
    "otlp": "otlp",
    "opa_log": "opa_log",
    "opa_log_url": "opa_log_url",
    "watch": "watch",
    "workers": "workers",
    "state_dir": "state_dir",
    "control": "control",
    "bundle_key": "bundle_keys",
    "bundle_prefix": "bundle_prefix",
}
_PATHS = {"secret_file", "approvers", "log", "opa_log", "state_dir"}


def _config(ctx: click.Context, _: click.Parameter, value: str | None) -> None:
    """Defaults from a TOML file (`[serve]` or top-level keys named like the options);
    options given on the command line win. Paths are relative to the file."""
    if value is None:
        return
    import tomllib

    where = Path(value)
    try:
        data = tomllib.loads(where.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        fail(f"--config {where}: {err}")
    table = data.get("serve", data)
    if not isinstance(table, dict):
        fail(f"--config {where}: [serve] must be a table")
    unknown = sorted(set(table) - set(_KEYS))
    if unknown:
        fail(f"--config {where}: unknown key {unknown[0]!r}; keys: {', '.join(sorted(_KEYS))}")
    defaults: dict[str, Any] = {}
    for key, val in table.items():
        if key in _PATHS and isinstance(val, str):
            val = str(where.parent / val)
        if key == "state" and isinstance(val, str) and val.startswith("sqlite:"):
            val = "sqlite:" + str(where.parent / val.removeprefix("sqlite:"))
        defaults[_KEYS[key]] = val
    ctx.default_map = {**(ctx.default_map or {}), **defaults}


@click.command("serve")
@click.argument("policy", metavar="POLICY")
@click.option(
    "--config",
    type=click.Path(dir_okay=False, exists=True),
    is_eager=True,
    expose_value=False,
    callback=_config,
    help="TOML file of these options' values (keys like listen, state, approvers)",
)
@click.option(
    "--listen", default="127.0.0.1:8181", show_default=True, help="HOST:PORT, or unix:PATH"
)
@click.option(
    "--state",
    default="memory",
    show_default=True,
    help="memory, sqlite:PATH (shared with `charter approvals`) or redis://…",
)
@click.option(
    "--secret-file",
    type=click.Path(dir_okay=False, exists=True),
    help="the grant secret (hex), for a Redis store",
)
@click.option(
    "--approvers",
    "approvers_path",
    type=click.Path(dir_okay=False, exists=True),
    help="TOML/JSON: [approvers.NAME] token = …, groups = [...]",
)
@click.option("--log", type=click.Path(dir_okay=False), help="decision log (JSON lines)")
@click.option(
    "--max-body",
    default=1024 * 1024,
    show_default=True,
    type=click.IntRange(1),
    help="largest request body in bytes",
)
@click.option("--otlp", help="send decision spans to this OTLP/HTTP endpoint")
@click.option(
    "--opa-log",
    type=click.Path(dir_okay=False),
    help="also write each decision in OPA's decision-log field names (JSON lines)",
)
@click.option("--opa-log-url", help="upload the OPA-shaped events there (gzip JSON arrays)")
@click.option("--watch", is_flag=True, help="reload when the policy's files change")
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(1),
    help="worker processes (more than one needs an SQLite or Redis state)",
)
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False),
    help="serve POLICY as a live host: gated reloads, last-known-good versions, change "
    "log, kill switches, status.json and `charter rollback` here; adds /status, "
    "/health?strict",
)
@click.option(
    "--control",
    metavar="FILE|redis://…",
    help="with --state-dir: follow the kill switches `charter kill --control FILE` (this "
    "machine's hosts) or `charter kill --redis URL` (prefix charter:) write",
)
@click.option(
    "--bundle-key",
    "bundle_keys",
    multiple=True,
    metavar="ID=FILE",
    help="a key that verifies a bundle POLICY (`charter bundle`): HMAC hex or Ed25519 public "
    "PEM; repeat for a ring",
)
@click.option(
    "--bundle-prefix",
    default="charter:",
    show_default=True,
    help="the key prefix of a redis:// POLICY (where `charter push` uploads bundles)",
)
def serve_cmd(
    policy: str,
    listen: str,
    state: str,
    secret_file: str | None,
    approvers_path: str | None,
    log: str | None,
    max_body: int,
    otlp: str | None,
    opa_log: str | None,
    opa_log_url: str | None,
    watch: bool,
    workers: int,
    state_dir: str | None,
    control: str | None,
    bundle_keys: tuple[str, ...],
    bundle_prefix: str,
) -> None:
    """Serve POLICY (a policy directory or file, a signed bundle, or redis://… where
    `charter push` activates bundles) over HTTP: /v1/decide, /v1/approvals, /approvals
    (the inbox), /metrics."""
    if control is not None and state_dir is None:
        fail("--control needs --state-dir (kill switches apply to a live host)")
    if workers > 1 and state_dir is not None:
        fail(
            "--state-dir is one host's (its versions, commands and status): run one worker, "
            "or one charter serve per state dir"
        )
    if workers > 1 and state == "memory":
        fail(
            "--workers needs a shared state: --state sqlite:PATH or redis://… (a memory "
            "store per worker would split every budget and limit)"
        )
    config: dict[str, Any] = {
        "policy": policy,
        "state": state,
        "secret_file": secret_file,
        "approvers_path": approvers_path,
        "log": log,
        "max_body": max_body,
        "otlp": otlp,
        "opa_log": opa_log,
        "opa_log_url": opa_log_url,
        "watch": watch,
        "state_dir": state_dir,
        "control": control,
        "bundle_keys": list(bundle_keys),
        "bundle_prefix": bundle_prefix,
    }
    sidecar = build(**config)  # also checks the options before any worker starts
    import uvicorn

    kw: dict[str, Any] = {"log_level": "warning", "access_log": False}
    if listen.startswith("unix:"):
        kw["uds"] = listen.removeprefix("unix:")
    else:
        host, _, port = listen.rpartition(":")
        if not host or not port.isdigit():
            fail(f"--listen: HOST:PORT or unix:PATH, found {listen!r}")
        kw["host"], kw["port"] = host.strip("[]"), int(port)
    print(
        f"charter serve: {sidecar.guard.policy.info.name} on {listen}"
        + (f", {workers} workers" if workers > 1 else ""),
        file=sys.stderr,
        flush=True,
    )
    if workers == 1:
        uvicorn.run(sidecar.app(), **kw)
        return
    # Each worker process builds its own sidecar from the same options, over the shared
    # store (its counters, tickets and grant secret are the same for all).
    os.environ[_CONFIG] = json.dumps(config)
    uvicorn.run("charter.cli.serve:app_from_env", factory=True, workers=workers, **kw)


def app_from_env() -> Any:
    """The ASGI app of one worker of `charter serve --workers N`."""
    config = json.loads(os.environ[_CONFIG])
    return build(**config).app()


def build(
    policy: str,
    state: str,
    secret_file: str | None,
    approvers_path: str | None,
    log: str | None,
    max_body: int,
    otlp: str | None = None,
    opa_log: str | None = None,
    opa_log_url: str | None = None,
    watch: bool = False,
    state_dir: str | None = None,
    control: str | None = None,
    bundle_keys: Sequence[str] = (),
    bundle_prefix: str = "charter:",
) -> Sidecar:
    """The sidecar the options describe (exits with the reason when they cannot make one)."""
    import charter
    from charter.hosts.approvals import PendingApprovals, SQLitePending
    from charter.hosts.serve import Approvers, AuthError, Sidecar, load_approvers
    from charter.language.source import CompileError
    from charter.runtime.bundle import BundleError
    from charter.runtime.guard import Guard

    if _from_redis(policy):
        if state_dir is None:
            fail(
                f"{policy}: a Redis policy source needs --state-dir (its last bundle is kept there)"
            )
    elif not Path(policy).exists():
        fail(f"{policy}: no such file or directory")
    # A bundle (`charter bundle`) is verified and its compiled artifact served: no compile.
    ring = _ring(policy, bundle_keys)
    compiled: Policy | None = None
    if state_dir is None:  # a live host gates the source itself (and may start on an LKG)
        try:
            compiled = _bundle_policy(policy, ring) if ring is not None else charter.load(policy)
        except (CompileError, BundleError) as err:
            fail(str(err))
    approvers = Approvers()
    if approvers_path is not None:
        try:
            approvers = load_approvers(approvers_path)
        except AuthError as err:
            fail(str(err))
    directory = approvers.directory() if approvers else None
    tracer = _tracer(otlp) if otlp else None

    def reload() -> Policy:  # POST /v1/reload and SIGHUP compile the same source again
        return _bundle_policy(policy, ring) if ring is not None else charter.load(policy)

    secret = None
    if secret_file is not None:
        try:
            secret = bytes.fromhex(Path(secret_file).read_text(encoding="ascii").strip())
        except (OSError, ValueError) as err:
            fail(f"--secret-file: {err}")

    def deciding(store: Store | None, secret: bytes | None) -> tuple[Guard, Live | None]:
        if compiled is not None:
            return Guard(compiled, state=store, log=log, secret=secret, approvers=directory), None
        assert state_dir is not None
        live = _live(policy, state_dir, store, log, secret, directory, control, ring, bundle_prefix)
        return live.guard, live

    def sidecar(
        guard: Guard, live: Live | None, pending: PendingApprovals | None = None, **kw: Any
    ) -> Sidecar:
        return Sidecar(
            guard,
            pending,
            approvers=approvers,
            max_body=max_body,
            source=policy,
            tracer=tracer,
            reload=reload if live is None else None,
            opa_log=opa_log,
            opa_log_url=opa_log_url,
            watch=policy if watch and live is None else None,
            live=live,
            **kw,
        )

    if state == "memory":
        return sidecar(*deciding(None, secret))
    if state.startswith("redis://"):
        from charter.runtime.state.redis import RedisStore

        if secret is None:
            fail("--state redis://… needs --secret-file (grants must verify across restarts)")
        return sidecar(*deciding(RedisStore(state), secret), store_kind="redis")
    from charter.cli.hook_state import secret_for
    from charter.runtime.state.sqlite import SQLiteStore

    path = Path(state.removeprefix("sqlite:"))
    try:
        secret = secret if secret is not None else secret_for(path)
    except (OSError, ValueError) as err:
        fail(f"cannot open the state file {path}: {err}")
    guard, live = deciding(SQLiteStore(path), secret)
    return sidecar(guard, live, PendingApprovals(guard, SQLitePending(path)), store_kind="sqlite")


def _live(
    policy: str,
    state_dir: str,
    store: Store | None,
    log: str | None,
    secret: bytes | None,
    directory: Any,
    control: str | None = None,
    ring: dict[str, Any] | None = None,
    bundle_prefix: str = "charter:",
) -> Live:
    """A live handle on the policy directory (`charter.control.watch`): the same gate as
    `charter gate`, the kept versions and commands in `state_dir`; or, with `ring`, on a
    bundle file (`runtime.live_bundle.watch_bundle`: verified, never compiled); with
    `control`, the kill switches of a control file or a Redis (prefix `charter:`) followed."""
    from charter.control import LiveError, watch
    from charter.runtime.bundle import BundleError

    try:
        if _from_redis(policy):
            from charter.runtime.live_redis_source import follow_redis

            live = follow_redis(
                policy,
                prefix=bundle_prefix,
                keys=ring,
                state_dir=state_dir,
                state=store,
                log=log,
                secret=secret,
                approvers=directory,
            )
        elif ring is not None:
            from charter.runtime.live_bundle import watch_bundle

            live = watch_bundle(
                policy,
                keys=ring,
                state_dir=state_dir,
                state=store,
                log=log,
                secret=secret,
                approvers=directory,
            )
        else:
            live = watch(
                policy,
                state_dir=state_dir,
                state=store,
                log=log,
                secret=secret,
                approvers=directory,
            )
    except (LiveError, BundleError, ValueError, OSError) as err:
        fail(f"cannot serve {policy} live: {err}")
    if control is None:
        return live
    try:
        if control.startswith(("redis://", "rediss://", "unix://")):
            from charter.runtime.live_redis import RedisControl

            RedisControl(control).attach(live)
        else:
            from charter.runtime.live_file import FileControl

            FileControl(control).attach(live)
    except Exception as err:  # noqa: BLE001 - no host that ignores the switches it was told of
        live.close()
        fail(f"--control {control}: {err}")
    return live


def _from_redis(policy: str) -> bool:
    return policy.startswith(("redis://", "rediss://", "unix://"))


def _ring(policy: str, bundle_keys: Sequence[str]) -> dict[str, Any] | None:
    """The key ring when POLICY is a bundle (a tar), else None; exits on a bad key."""
    import tarfile

    from charter.runtime.bundle import load_key

    if not _from_redis(policy) and not (Path(policy).is_file() and tarfile.is_tarfile(policy)):
        if bundle_keys:
            fail("--bundle-key is for a bundle POLICY (`charter bundle DIR -o FILE`)")
        return None
    if not bundle_keys:
        fail(f"{policy} serves bundles: give the keys that verify them (--bundle-key ID=FILE)")
    ring: dict[str, Any] = {}
    for item in bundle_keys:
        kid, sep, path = item.partition("=")
        if not sep or not kid or not path:
            fail(f"--bundle-key: ID=FILE, found {item!r}")
        try:
            ring[kid] = load_key(path)
        except ValueError as err:
            fail(f"--bundle-key {kid}: {err}")
    return ring


def _bundle_policy(policy: str, ring: dict[str, Any]) -> Policy:
    from charter.runtime.bundle import read_bundle

    return read_bundle(policy, ring).policy


def _tracer(endpoint: str) -> object:
    """A tracer exporting to the OTLP/HTTP collector at `endpoint`."""
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # type: ignore[import-not-found]
            OTLPSpanExporter,
        )
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError:
        fail("--otlp needs opentelemetry-sdk and opentelemetry-exporter-otlp-proto-http")
    provider = TracerProvider(resource=Resource.create({"service.name": "charter-serve"}))
    exporter = OTLPSpanExporter(endpoint=endpoint.rstrip("/") + "/v1/traces")
    provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider.get_tracer("charter")
