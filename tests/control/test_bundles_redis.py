"""Redis as the policy source (issue 16, L-S3) on a real redis-server: two host processes
pick up a `charter push`; an older `active` written back does not roll them back; a bundle
with a bad signature is refused and they keep serving; the backstop poll catches a push
the subscription missed; a host starts on its kept bundle when Redis is down."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from charter.cli.main import cli
from charter.control.bundle import build_bundle
from charter.runtime.bundle import BundleError
from charter.runtime.changes import read_changes
from charter.runtime.live_redis_source import RedisSource, follow_redis
from tests.waiting import wait_for

ROOT = Path(__file__).resolve().parents[2]
SECRET = bytes(range(32))
KEYS = {"ops-1": SECRET}
X = {"tool": "x", "args": {"n": 1}}


def policy_dir(where: Path, tag: str) -> Path:
    where.mkdir(parents=True, exist_ok=True)
    (where / "policy.agentpolicy").write_text(
        f'policy "p"\ndefault deny\ntool "x" (n: int)\n@id("{tag}")\nallow tool "x"\n'
    )
    return where


def bundle(tmp: Path, tag: str, key: bytes = SECRET) -> bytes:
    built = build_bundle(policy_dir(tmp / tag, tag), key=key, key_id="ops-1", properties=0)
    assert built.data is not None
    return built.data


@pytest.fixture
def prefix() -> str:
    return f"test-{uuid.uuid4().hex}:"


HOST = """
import json, sys, time
from charter.runtime.live_redis_source import follow_redis
live = follow_redis({url!r}, prefix={prefix!r}, keys={{"ops-1": {secret!r}}},
                    poll_interval_s=0.2)
seen = None
while True:
    now = (live.decide({{"tool": "x", "args": {{"n": 1}}}}).rules, live.watcher.reloads_rejected)
    if now != seen:
        seen = now
        print(json.dumps({{"rules": list(now[0]), "rejected": now[1]}}), flush=True)
    time.sleep(0.005)
"""


class Host:
    """A host process following the Redis source; `reports` is what it printed."""

    def __init__(self, url: str, prefix: str) -> None:
        code = HOST.format(url=url, prefix=prefix, secret=SECRET)
        self.proc = subprocess.Popen(
            [sys.executable, "-c", code],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        self.reports: list[dict[str, object]] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.reports.append(json.loads(line))

    def rules(self) -> list[str]:
        return [str(r["rules"][0]) for r in self.reports]  # type: ignore[index]

    def rejected(self) -> int:
        return int(self.reports[-1]["rejected"]) if self.reports else 0  # type: ignore[call-overload]

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


def push(path: Path, url: str, prefix: str, *extra: str) -> str:
    out = CliRunner().invoke(cli, ["push", str(path), "--redis", url, "--prefix", prefix, *extra])
    assert out.exit_code == 0, out.output
    return out.output


def test_two_host_processes_follow_pushes_and_never_roll_back(
    redis_url: str, prefix: str, tmp_path: Path
) -> None:
    import redis

    source = RedisSource(redis_url, prefix=prefix)
    source.push(bundle(tmp_path, "v1"), actor="setup")
    hosts = [Host(redis_url, prefix), Host(redis_url, prefix)]
    try:
        for h in hosts:
            wait_for(lambda h=h: h.rules() == ["v1"], "a host starting on v1")  # type: ignore[misc]
        (tmp_path / "v2.bundle").write_bytes(bundle(tmp_path, "v2"))
        (tmp_path / "key").write_text(SECRET.hex())
        said = push(tmp_path / "v2.bundle", redis_url, prefix, "--key-file", str(tmp_path / "key"))
        assert "as seq 2" in said
        for h in hosts:
            wait_for(lambda h=h: h.rules()[-1:] == ["v2"], "the push reaching a host")  # type: ignore[misc]

        # An older `active` written back (a restored backup, a replayed write) and announced.
        r = redis.Redis.from_url(redis_url)
        active, _ = source.read()
        assert active is not None and active["seq"] == 2
        r.set(f"{prefix}active", json.dumps({**active, "seq": 1, "bundle": _first(r, prefix)}))
        r.publish(f"{prefix}events", json.dumps({"kind": "active", "seq": 1}))

        # A bundle signed with another secret under the same key id.
        (tmp_path / "bad.bundle").write_bytes(bundle(tmp_path, "v9", key=bytes(32)))
        push(tmp_path / "bad.bundle", redis_url, prefix)  # no key given: the hosts verify
        for h in hosts:
            wait_for(lambda h=h: h.rejected() == 1, "a host refusing the bad bundle")  # type: ignore[misc]

        (tmp_path / "v3.bundle").write_bytes(bundle(tmp_path, "v3"))
        push(tmp_path / "v3.bundle", redis_url, prefix)
        for h in hosts:
            wait_for(lambda h=h: h.rules()[-1:] == ["v3"], "v3 reaching a host")  # type: ignore[misc]
            # every version this host served, in order: never v1 again, never the bad one
            assert [k for i, k in enumerate(h.rules()) if i == 0 or h.rules()[i - 1] != k] == [
                "v1",
                "v2",
                "v3",
            ]
        r.close()
    finally:
        for h in hosts:
            h.stop()


def _first(r: object, prefix: str) -> str:
    kept: list[bytes] = r.lrange(f"{prefix}bundles", 0, -1)  # type: ignore[attr-defined]
    return kept[-1].decode()


def test_push_refuses_a_bundle_its_key_does_not_verify(
    redis_url: str, prefix: str, tmp_path: Path
) -> None:
    (tmp_path / "bad.bundle").write_bytes(bundle(tmp_path, "v1", key=bytes(32)))
    (tmp_path / "key").write_text(SECRET.hex())
    out = CliRunner().invoke(
        cli,
        [
            "push",
            str(tmp_path / "bad.bundle"),
            "--redis",
            redis_url,
            "--prefix",
            prefix,
            "--key-file",
            str(tmp_path / "key"),
        ],
    )
    assert out.exit_code == 1 and "bad signature" in out.output
    assert RedisSource(redis_url, prefix=prefix).read() == (None, None)
    (tmp_path / "junk").write_bytes(b"junk")
    junk = CliRunner().invoke(cli, ["push", str(tmp_path / "junk"), "--redis", redis_url])
    assert junk.exit_code == 1 and "not a readable tar" in junk.output


@pytest.fixture
def host(redis_url: str, prefix: str, tmp_path: Path) -> Iterator[tuple[RedisSource, object]]:
    writer = RedisSource(redis_url, prefix=prefix)
    writer.push(bundle(tmp_path, "v1"))
    live = follow_redis(
        redis_url, prefix=prefix, keys=KEYS, state_dir=tmp_path / "state", poll_interval_s=0.2
    )
    yield writer, live
    live.close()


def test_the_backstop_poll_catches_a_push_the_subscription_missed(
    host: tuple[RedisSource, object], redis_url: str, prefix: str, tmp_path: Path
) -> None:
    import redis

    writer, live = host
    assert live.decide(X).rules == ("v1",)  # type: ignore[attr-defined]
    # A push announced where nobody listens: only the backstop poll can see it.
    quiet = RedisSource(redis_url, prefix=prefix)
    quiet.channel = f"{prefix}elsewhere"
    quiet.push(bundle(tmp_path, "v2"))
    wait_for(lambda: live.decide(X).rules == ("v2",), "the poll applying the push")  # type: ignore[attr-defined]
    # Quiet: the channel's subscribers are dropped; the push is published to nobody.
    admin = redis.Redis.from_url(redis_url)
    admin.client_kill_filter(_type="pubsub")
    writer.push(bundle(tmp_path, "v3"))
    wait_for(lambda: live.decide(X).rules == ("v3",), "the push after a lost subscription")  # type: ignore[attr-defined]
    admin.close()
    log = tmp_path / "state" / "changes.jsonl"
    wait_for(lambda: len(list(read_changes(log))) == 3, "its change record")  # after the swap
    changes = list(read_changes(log))
    assert [c["action"] for c in changes] == ["activate", "activate", "activate"]
    assert changes[-1]["actor"] == "key:ops-1" and changes[-1]["active_seq"] == 3


def test_only_the_newest_bundles_are_kept(
    host: tuple[RedisSource, object], redis_url: str, prefix: str, tmp_path: Path
) -> None:
    import redis

    writer, live = host
    digests = [writer.push(bundle(tmp_path, f"k{i}"))[1] for i in range(7)]
    r = redis.Redis.from_url(redis_url)
    kept = [d.decode() for d in r.lrange(f"{prefix}bundles", 0, -1)]
    assert kept == digests[::-1][:5]
    stored = {k.decode() for k in r.scan_iter(f"{prefix}bundle:*")}
    assert stored == {f"{prefix}bundle:{d}" for d in kept}
    r.close()
    wait_for(lambda: live.decide(X).rules == ("k6",), "the newest push")  # type: ignore[attr-defined]


def test_a_host_starts_on_its_kept_bundle_when_redis_is_down(
    host: tuple[RedisSource, object], tmp_path: Path
) -> None:
    _, live = host
    live.close()  # type: ignore[attr-defined]
    down = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    again = follow_redis(down, keys=KEYS, state_dir=tmp_path / "state", start=False)
    assert again.decide(X).rules == ("v1",) and again.status().state == "DEGRADED"
    assert again.status().unreachable[0].what == "source"
    again.close()
    stale = follow_redis(
        down, keys=KEYS, state_dir=tmp_path / "state", stale_after_s=1e-6, start=False
    )
    assert stale.status().state == "STALE"  # unreachable for longer than stale_after_s
    stale.close()
    with pytest.raises(BundleError, match="no last-known-good bundle"):
        follow_redis(down, keys=KEYS, state_dir=tmp_path / "none", start=False)


def test_a_bundle_with_a_bad_signature_at_start_is_never_served(
    redis_url: str, prefix: str, tmp_path: Path
) -> None:
    RedisSource(redis_url, prefix=prefix).push(bundle(tmp_path, "v1", key=bytes(32)))
    with pytest.raises(BundleError, match="bad signature"):
        follow_redis(redis_url, prefix=prefix, keys=KEYS, start=False)


def test_an_older_active_state_written_back_is_ignored(
    redis_url: str, prefix: str, tmp_path: Path
) -> None:
    import redis

    writer = RedisSource(redis_url, prefix=prefix)
    writer.push(bundle(tmp_path, "v1"))
    source = RedisSource(redis_url, prefix=prefix)
    live = source.follow(KEYS, start=False)
    older, _ = source.read()
    writer.push(bundle(tmp_path, "v2"))
    assert source.sync() and live.decide(X).rules == ("v2",) and source.seq == 2
    r = redis.Redis.from_url(redis_url)
    r.set(f"{prefix}active", json.dumps(older))  # seq 1, naming v1's bundle (still kept)
    assert not source.sync()
    assert live.decide(X).rules == ("v2",) and source.seq == 2
    # the next push still goes above every seq a host applied
    assert writer.push(bundle(tmp_path, "v3"))[0] == 3
    assert source.sync() and live.decide(X).rules == ("v3",)
    r.close()
    live.close()


def test_an_active_state_whose_bundle_is_gone_is_waited_out(
    redis_url: str, prefix: str, tmp_path: Path
) -> None:
    import redis

    writer = RedisSource(redis_url, prefix=prefix)
    writer.push(bundle(tmp_path, "v1"))
    source = RedisSource(redis_url, prefix=prefix)
    live = source.follow(KEYS, start=False)
    _, digest = writer.push(bundle(tmp_path, "v2"))
    r = redis.Redis.from_url(redis_url)
    r.delete(f"{prefix}bundle:{digest}")  # evicted, or deleted by hand
    assert not source.sync() and source.seq == 1  # not applied, retried at the next sync
    assert live.decide(X).rules == ("v1",)
    r.set(f"{prefix}active", b"not json")
    with pytest.raises(ValueError, match="not an active state"):
        source.sync()
    assert live.decide(X).rules == ("v1",)
    writer.push(bundle(tmp_path, "v3"))
    assert source.sync() and live.decide(X).rules == ("v3",)
    r.close()
    live.close()
    with pytest.raises(ValueError, match="decode_responses"):
        RedisSource(redis.Redis.from_url(redis_url, decode_responses=True))


def test_a_kept_bundle_is_made_active_again(redis_url: str, prefix: str, tmp_path: Path) -> None:
    writer = RedisSource(redis_url, prefix=prefix)
    _, first = writer.push(bundle(tmp_path, "v1"))
    source = RedisSource(redis_url, prefix=prefix)
    live = source.follow(KEYS, start=False)
    writer.push(bundle(tmp_path, "v2"))
    assert source.sync() and live.decide(X).rules == ("v2",)
    base = ["push", "--redis", redis_url, "--prefix", prefix]
    listed = json.loads(CliRunner().invoke(cli, [*base, "--list"]).output)
    assert [k["active"] for k in listed] == [True, False] and listed[1]["bundle"] == first
    assert listed[0]["key_id"] == "ops-1" and listed[0]["builder"] == ""

    rolled = CliRunner().invoke(cli, [*base, "--to", "previous", "--actor", "oncall"])
    assert rolled.exit_code == 0 and f"re-activated {first} as seq 3" in rolled.output
    assert source.sync() and live.decide(X).rules == ("v1",)  # verified and applied again
    active, _ = source.read()
    assert active is not None and active["actor"] == "oncall" and active["bundle"] == first
    by_policy = listed[1]["digest"][:6]  # the policy digest's prefix works too
    assert CliRunner().invoke(cli, [*base, "--to", listed[0]["bundle"]]).exit_code == 0
    assert source.sync() and live.decide(X).rules == ("v2",)
    assert CliRunner().invoke(cli, [*base, "--to", by_policy]).exit_code == 0
    assert source.sync() and live.decide(X).rules == ("v1",)
    missing = CliRunner().invoke(cli, [*base, "--to", "ffff"])
    assert missing.exit_code == 1 and "matches no kept bundle" in missing.output
    assert CliRunner().invoke(cli, base).exit_code == 2  # neither a file nor --to
    live.close()


def test_pushes_and_every_hosts_changes_go_to_the_redis_stream(
    redis_url: str, prefix: str, tmp_path: Path
) -> None:
    import redis

    writer = RedisSource(redis_url, prefix=prefix)
    writer.push(bundle(tmp_path, "v1"), actor="release-bot")
    source = RedisSource(redis_url, prefix=prefix)
    live = source.follow(KEYS, state_dir=tmp_path / "state", start=False, host="host-a")
    writer.push(bundle(tmp_path, "v2", key=bytes(32)), actor="intruder")
    assert not source.sync()  # refused
    r = redis.Redis.from_url(redis_url)
    rows = [
        (f[b"action"].decode(), f.get(b"host", b"").decode(), json.loads(f[b"record"]))
        for _, f in r.xrange(f"{prefix}changes")
    ]
    assert [(a, h) for a, h, _ in rows] == [
        ("push", ""),
        ("activate", "host-a"),
        ("push", ""),
        ("reject", "host-a"),
    ]
    assert rows[0][2]["actor"] == "release-bot" and rows[2][2]["actor"] == "intruder"
    assert rows[3][2]["stage_failed"] == "signature"
    local = [c["action"] for c in read_changes(tmp_path / "state" / "changes.jsonl")]
    assert local == ["activate", "reject"]  # the host's own file has the same records
    r.close()
    live.close()


def test_a_hosts_rollback_holds_until_the_next_push(
    redis_url: str, prefix: str, tmp_path: Path
) -> None:
    writer = RedisSource(redis_url, prefix=prefix)
    writer.push(bundle(tmp_path, "v1"))
    source = RedisSource(redis_url, prefix=prefix)
    live = source.follow(KEYS, state_dir=tmp_path / "state", start=False)
    writer.push(bundle(tmp_path, "v2"))
    assert source.sync() and live.decide(X).rules == ("v2",)
    live.rollback(actor="oncall")
    assert live.decide(X).rules == ("v1",)
    assert not source.sync() and live.decide(X).rules == ("v1",)  # same seq: held
    live.unpin()
    assert live.decide(X).rules == ("v2",)  # the active bundle again
    live.rollback()
    writer.push(bundle(tmp_path, "v3"))
    assert source.sync() and live.decide(X).rules == ("v3",)  # a new push ends it
    live.close()


def test_a_flushed_redis_restarts_the_count_and_hosts_follow_it(
    redis_url: str, prefix: str, tmp_path: Path
) -> None:
    import redis

    writer = RedisSource(redis_url, prefix=prefix)
    writer.push(bundle(tmp_path, "v1"))
    source = RedisSource(redis_url, prefix=prefix)
    live = source.follow(KEYS, start=False)
    for tag in ("v2", "v3"):
        writer.push(bundle(tmp_path, tag))
        assert source.sync()
    assert source.seq == 3 and live.decide(X).rules == ("v3",)
    r = redis.Redis.from_url(redis_url)
    r.delete(*r.keys(f"{prefix}*"))  # what a FLUSHALL or a Redis without persistence does
    assert writer.push(bundle(tmp_path, "v4"))[0] == 1  # the count starts again...
    assert source.sync() and live.decide(X).rules == ("v4",)  # ...under a new epoch
    older, _ = source.read()
    writer.push(bundle(tmp_path, "v5"))
    assert source.sync() and source.seq == 2
    r.set(f"{prefix}active", json.dumps(older))  # within one epoch, still no rollback
    assert not source.sync() and live.decide(X).rules == ("v5",)
    r.close()
    live.close()
