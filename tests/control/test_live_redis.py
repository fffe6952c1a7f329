"""Kill switches across processes over a real Redis (issue 16, L-X5, L-AC5 at test scale):
a kill written by one handle denies in every other, through pub/sub, through the backstop
poll when the subscription is killed, and in a separate process."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

import charter
from charter.runtime.live import KillSwitch, Live
from charter.runtime.live_redis import RedisControl
from tests.waiting import wait_for

POLICY = 'policy "k"\ndefault allow\n'
EMAIL = {"tool": "email.send", "args": {}}
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def prefix() -> str:
    return f"test-{uuid.uuid4().hex}:"


@pytest.fixture
def pair(redis_url: str, prefix: str) -> Iterator[tuple[Live, Live]]:
    lives = []
    for _ in range(2):
        live = Live(charter.compile(POLICY))
        control = RedisControl(redis_url, prefix=prefix, poll_interval_s=0.2).attach(live)
        wait_for(control.synced.is_set, "first sync")
        lives.append(live)
    yield lives[0], lives[1]
    for live in lives:
        live.close()


def test_a_kill_in_one_handle_denies_in_the_other(pair: tuple[Live, Live]) -> None:
    a, b = pair
    assert b.decide(EMAIL).allowed
    sid = a.kill("email.*", "incident")
    assert not a.decide(EMAIL).allowed  # here at once
    wait_for(lambda: not b.decide(EMAIL).allowed, "the kill reaching the other handle")
    assert b.decide(EMAIL).rules == (f"kill:{sid}",)
    assert b.decide(EMAIL).reasons == (f"kill switch {sid}: incident",)
    assert a.unkill(sid)
    wait_for(lambda: b.decide(EMAIL).allowed, "the unkill reaching the other handle")
    assert a.decide(EMAIL).allowed


def test_concurrent_kills_from_two_handles_are_both_kept(pair: tuple[Live, Live]) -> None:
    a, b = pair
    s1 = a.kill("email.send", "one")
    s2 = b.kill("web.fetch", "two")
    for live in pair:
        wait_for(
            lambda lv=live: {s.id for s in lv.switches} == {s1, s2},  # type: ignore[misc]
            "both switches everywhere",
        )


def test_the_backstop_poll_catches_a_kill_the_subscription_missed(
    pair: tuple[Live, Live], redis_url: str
) -> None:
    import redis

    a, b = pair
    client = redis.Redis.from_url(redis_url)
    client.client_kill_filter(_type="pubsub")  # every subscriber's connection dropped
    sid = a.kill("email.send", "while b was disconnected")
    wait_for(lambda: b.decide(EMAIL).rules == (f"kill:{sid}",), "the poll catching up")
    client.close()


def test_a_writer_without_a_handle_and_a_late_joiner(redis_url: str, prefix: str) -> None:
    writer = RedisControl(redis_url, prefix=prefix)
    writer.kill(KillSwitch("ops1", ("email.*",), "from the CLI"))
    live = Live(charter.compile(POLICY))
    control = RedisControl(redis_url, prefix=prefix, poll_interval_s=0.2).attach(live)
    wait_for(control.synced.is_set, "first sync")
    assert live.decide(EMAIL).rules == ("kill:ops1",)  # state read on joining
    live.close()


CHILD = """
import sys, time
import charter
from charter.runtime.live import Live
from charter.runtime.live_redis import RedisControl
live = Live(charter.compile('policy "k"\\ndefault allow\\n'))
control = RedisControl(sys.argv[1], prefix=sys.argv[2], poll_interval_s=0.5).attach(live)
control.synced.wait(20)
print("ready", flush=True)
end = time.monotonic() + 30
while live.decide({"tool": "email.send", "args": {}}).allowed and time.monotonic() < end:
    time.sleep(0.001)
print(" ".join(live.decide({"tool": "email.send", "args": {}}).rules), flush=True)
"""


def test_a_kill_reaches_another_process(redis_url: str, prefix: str) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, redis_url, prefix],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "ready"
        RedisControl(redis_url, prefix=prefix).kill(KillSwitch("x1", ("email.*",), "stop"))
        assert child.stdout.readline().strip() == "kill:x1"
    finally:
        child.wait(timeout=30)
