"""`charter.runtime.request`: one reading of a request for every path that decides it.

`read` turns whatever a host sends into a `Call` or the malformed-request deny naming the
field, and never raises; `fast_key` is its plain case, and must never accept a request
`read` refuses or read it differently. The Guard reads requests with the same function.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Iterator, Mapping
from types import MappingProxyType
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import charter
from charter.engine.decision import Decision, PolicyInfo
from charter.runtime.guard import Guard
from charter.runtime.request import STAGES, Call, fast_key, read

INFO = PolicyInfo("p", "1", "d")


class Tag(enum.StrEnum):
    READ = "read"


class Text(str):
    """A str subclass: its `__eq__` and `__hash__` could be anything, so it is refused."""


def reason(raw: object) -> str:
    found = read(raw, INFO)
    assert isinstance(found, Decision), found
    assert found.effect == "deny" and not found.allowed and found.policy == INFO
    assert len(found.errors) == 1 and found.errors[0].rule is None  # no rule caused it
    assert found.reasons == (found.errors[0].reason,)
    return found.reasons[0]


# ── read ─────────────────────────────────────────────────────────────────────


@pytest.mark.parametrize(("tool", "call"), [
    ("kb.read", ("tool_call", "kb.read", (), None)),
    ({"name": "kb.read"}, ("tool_call", "kb.read", (), None)),
    ({"name": "kb.read", "tags": None, "server": None}, ("tool_call", "kb.read", (), None)),
    ({"name": "kb.read", "tags": []}, ("tool_call", "kb.read", (), None)),
    ({"name": "kb.read", "tags": ["read", "read"]}, ("tool_call", "kb.read", ("read", "read"),
                                                     None)),
    ({"name": "kb.read", "tags": ("a",), "server": "kb.corp", "x": 1},
     ("tool_call", "kb.read", ("a",), "kb.corp")),
])
def test_a_well_formed_request_is_a_call(tool: Any, call: tuple[Any, ...]) -> None:
    request = {"tool": tool, "args": {"q": 1}}
    found = read(request)
    assert isinstance(found, Call)
    assert (found.stage, found.name, found.tags, found.server) == call
    assert found.req is request  # a dict is read in place, never copied


@pytest.mark.parametrize("stage", STAGES)
def test_every_stage_is_read(stage: str) -> None:
    found = read({"stage": stage, "tool": "t"})
    assert isinstance(found, Call) and found.stage == stage


@pytest.mark.parametrize("stage", ["model_input", "model_output"])
def test_a_model_request_need_not_name_a_tool(stage: str) -> None:
    found = read({"stage": stage, "input": "hi"})
    assert isinstance(found, Call) and (found.name, found.tags, found.server) == ("", (), None)


def test_null_stage_and_null_tags_are_absent() -> None:
    found = read({"stage": None, "tool": {"name": "a", "tags": None}})
    assert isinstance(found, Call) and (found.stage, found.tags) == ("tool_call", ())


def test_json_text_bytes_and_mappings_are_read() -> None:
    text = json.dumps({"tool": {"name": "a", "tags": ["x"]}, "args": {"n": 2.5}})
    for raw in (text, text.encode(), bytearray(text.encode()), memoryview(text.encode())):
        found = read(raw)
        assert isinstance(found, Call) and (found.name, found.tags) == ("a", ("x",))
        assert str(found.req["args"]["n"]) == "2.5"  # numbers decode exactly
    proxy = MappingProxyType({"tool": "a"})
    found = read(proxy)
    assert isinstance(found, Call) and type(found.req) is dict and found.req == {"tool": "a"}


def test_a_call_is_read_as_it_is() -> None:
    call = read({"tool": "a"})
    assert isinstance(call, Call) and read(call) is call


@pytest.mark.parametrize(("raw", "says"), [
    (b"{", "malformed request: not valid JSON"),
    ("[1, 2]", "malformed request: the request must be a JSON object; found a list"),
    ("null", "malformed request: the request must be a JSON object; found null"),
    (7, "malformed request: expected a JSON object, found int"),
    (["tool"], "malformed request: expected a JSON object, found list"),
    ({"tool": "a", "stage": "bogus"}, "malformed request: stage must be one of"),
    ({"tool": "a", "stage": 3}, "malformed request: stage must be one of"),
    ({"tool": "a", "stage": Text("tool_call")}, "malformed request: stage must be one of"),
    ({}, "malformed request: tool missing (a tool_call request names its tool)"),
    ({"stage": "tool_result"}, "malformed request: tool missing (a tool_result request"),
    ({"tool": None}, "malformed request: tool missing"),
    ({"tool": ""}, "malformed request: tool name is empty"),
    ({"tool": 0}, "malformed request: tool must be a name or an object with a name"),
    ({"tool": ["a"]}, "malformed request: tool must be a name or an object with a name"),
    ({"tool": Text("a")}, "malformed request: tool must be a name or an object with a name"),
    ({"tool": {}}, "malformed request: tool.name missing"),
    ({"tool": {"name": None}}, "malformed request: tool.name missing"),
    ({"tool": {"name": ""}}, "malformed request: tool.name is empty"),
    ({"tool": {"name": 3}}, "malformed request: tool.name must be a string; found an int"),
    ({"tool": {"name": Text("a")}}, "malformed request: tool.name must be a string"),
    ({"tool": {"name": "a", "tags": "read"}}, "malformed request: tool.tags must be a list"),
    ({"tool": {"name": "a", "tags": {}}}, "malformed request: tool.tags must be a list"),
    ({"tool": {"name": "a", "tags": 0}}, "malformed request: tool.tags must be a list"),
    ({"tool": {"name": "a", "tags": ["r", 1]}},
     "malformed request: tool.tags must be a list of strings; tool.tags[1] is an int"),
    ({"tool": {"name": "a", "tags": [None]}}, "malformed request: tool.tags must be a list"),
    ({"tool": {"name": "a", "tags": [Tag.READ]}}, "malformed request: tool.tags must be a"),
    ({"tool": {"name": "a", "server": 3}},
     "malformed request: tool.server must be a string; found an int"),
    ({"tool": {"name": "a", "server": ["s"]}}, "malformed request: tool.server must be a"),
])
def test_a_malformed_request_is_a_deny_naming_the_field(raw: object, says: str) -> None:
    assert reason(raw).startswith(says)


@pytest.mark.parametrize(("raw", "field", "message"), [
    ({"tool": ""}, "tool", "tool name is empty"),
    ({"tool": {}}, "tool.name", "tool.name missing"),
    ({"tool": {"name": ""}}, "tool.name", "tool.name is empty"),
    ({"tool": {"name": 3}}, "tool.name", "tool.name must be a string; found an int"),
    ({"tool": ["a"]}, "tool",
     "tool must be a name or an object with a name; found a list of 1 item"),
    ({"tool": 7}, "tool", "tool must be a name or an object with a name; found an int"),
    ({"args": {}}, "tool", "tool missing (a tool_call request names its tool)"),
    ({"tool": "a", "stage": 3}, "stage", None),
    ({"tool": {"name": "a", "tags": "r"}}, "tool.tags", None),
    ({"tool": {"name": "a", "tags": ["r", 1]}}, "tool.tags[1]", None),
    ({"tool": {"name": "a", "server": 3}}, "tool.server", None),
    ("[1]", None, "the request must be a JSON object; found a list of 1 item"),
    (7, None, "expected a JSON object, found int"),
])
def test_a_malformed_request_has_one_error_naming_the_field_and_no_rule(
        raw: object, field: str | None, message: str | None) -> None:
    found = read(raw, INFO)
    assert isinstance(found, Decision)
    (error,) = found.errors
    assert error.rule is None and error.field == field
    if message is not None:
        assert error.message == message
    assert found.reasons == (f"malformed request: {error.message}",)
    # The decision, errors and all, is plain JSON: an error is an object with three fields.
    assert msgspec.json.decode(found.to_json())["errors"] == [
        {"rule": None, "field": field, "message": error.message}]


class Hostile(Mapping[str, Any]):
    """A mapping whose every method raises."""

    def __getitem__(self, key: str) -> Any:
        raise RuntimeError("boom")

    def __iter__(self) -> Iterator[str]:
        raise RuntimeError("boom")

    def __len__(self) -> int:
        raise RuntimeError("boom")


def test_reading_never_raises() -> None:
    assert reason(Hostile()) == "malformed request: cannot read the request: RuntimeError"


def test_reasons_never_quote_request_values() -> None:
    secret = "sk_live_0123456789abcdef"
    for raw in ({"tool": {"name": "a", "tags": [secret, 1]}}, {"tool": {"name": 7},
                                                               "stage": secret}):
        assert secret not in reason(raw)


# ── fast_key ─────────────────────────────────────────────────────────────────


@pytest.mark.parametrize(("raw", "key"), [
    ({"tool": "a"}, ("tool_call", "a")),
    ({"tool": "a", "stage": None}, ("tool_call", "a")),
    ({"tool": "a", "stage": "tool_result"}, ("tool_result", "a")),
    ({"tool": {"name": "a"}}, ("tool_call", "a")),
    ({"tool": {"name": "a", "tags": [], "server": "s"}}, ("tool_call", "a")),
    ({"stage": "model_input", "input": "hi"}, ("model_input", "")),
    ({"tool": {"name": "a", "tags": ["r"]}}, None),  # tags: the caller reads it
    ({"tool": ""}, None), ({"tool": {"name": ""}}, None), ({"tool": {}}, None),
    ({"stage": "model_input", "tool": ""}, None), ({}, None), ({"tool": "a", "stage": 1}, None),
    ({"tool": {"name": "a", "server": 1}}, None), (MappingProxyType({"tool": "a"}), None),
])
def test_fast_key(raw: Any, key: tuple[str, str] | None) -> None:
    assert fast_key(raw) == key


NAMES = st.sampled_from(["a", "kb.read", "", "x.y.z"])
ODD = st.one_of(st.none(), st.booleans(), st.integers(-1, 1), st.floats(), st.text(max_size=3),
                st.binary(max_size=2), st.just(Text("a")), st.just(Tag.READ), st.just([]),
                st.just({}), st.just(["a"]), st.just({"name": "a"}))
TAG_LISTS = st.lists(st.one_of(st.sampled_from(["read", "write", ""]), ODD), max_size=3)
TOOLS = st.one_of(
    NAMES, ODD,
    st.fixed_dictionaries({}, optional={
        "name": st.one_of(NAMES, ODD), "tags": st.one_of(TAG_LISTS, ODD),
        "server": st.one_of(st.sampled_from(["s", ""]), ODD), "extra": ODD}),
)
RAW = st.one_of(
    st.fixed_dictionaries({}, optional={
        "tool": TOOLS, "stage": st.one_of(st.sampled_from([*STAGES, None, "bogus", ""]), ODD),
        "args": ODD}),
    ODD,
)


@settings(max_examples=500, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(RAW)
def test_fast_key_accepts_only_what_read_reads_the_same(raw: Any) -> None:
    found = read(raw)
    key = fast_key(raw)
    if key is not None:
        assert isinstance(found, Call)
        assert (found.stage, found.name, found.tags) == (*key, ())
    if isinstance(found, Call):
        assert type(found.name) is str and all(type(t) is str for t in found.tags)
        assert found.server is None or type(found.server) is str
        assert found.stage in STAGES and (found.name or found.stage not in ("tool_call",
                                                                             "tool_result"))


# ── regressions: one reading everywhere ──────────────────────────────────────


@pytest.mark.parametrize(("warm", "odd"), [
    ({"tool": ""}, {"tool": {"name": ""}}),  # architecture review §4.4, bug 2
    ({"stage": "model_input"}, {"stage": "model_input", "tool": ""}),
    ({"stage": "model_input"}, {"stage": "model_input", "tool": {"name": ""}}),
    ({"stage": "model_output"}, {"stage": "model_output", "tool": {}}),
    ({"tool": "a"}, {"tool": {"name": "a", "server": 3}}),
    ({"tool": {"name": "a", "tags": ["r"]}}, {"tool": {"name": "a", "tags": ["r", 1]}}),
    ({"tool": {"name": "a", "tags": ["r"]}}, {"tool": {"name": "a", "tags": [Text("r")]}}),
    ({"tool": "a"}, {"tool": Text("a")}),
])
def test_no_earlier_request_opens_a_malformed_one(warm: Any, odd: Any) -> None:
    policy = charter.compile('policy "p"\ndefault allow\n')
    fresh = policy.decide(odd)
    assert fresh.effect == "deny" and fresh.reasons[0].startswith("malformed request")
    policy.decide(warm)
    assert policy.decide(odd) == fresh == policy.interpret(odd)


LIMITED = """
policy "p"
default allow
limit calls(tool "a") <= 1 per session
"""


def test_a_null_stage_does_not_skip_the_guards_limits() -> None:
    # The Guard once read `"stage": null` as malformed and let the pure `decide` answer,
    # which knows no counters: the limit never applied.
    guard = Guard(charter.compile(LIMITED))
    request = {"tool": "a", "stage": None, "session": {"id": "s"}}
    assert [guard.check(dict(request)).effect for _ in range(3)] == ["allow", "deny", "deny"]


def test_the_guard_reads_tool_objects_as_policy_does() -> None:
    guard = Guard(charter.compile(LIMITED))
    request = {"tool": {"name": "a", "server": "s"}, "session": {"id": "s"}}
    assert [guard.check(dict(request)).effect for _ in range(2)] == ["allow", "deny"]
    tagged = {"tool": {"name": "a", "tags": ["x"]}, "session": {"id": "t"}}
    assert [guard.check(dict(tagged)).effect for _ in range(2)] == ["allow", "deny"]


@given(RAW)
@settings(max_examples=150, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
def test_the_guard_denies_what_read_refuses_with_the_same_reason(raw: Any) -> None:
    policy = charter.compile(LIMITED)
    found = read(raw, policy.info)
    decision = Guard(policy).check(raw)
    if isinstance(found, Decision):
        assert decision == found == policy.decide(raw)
    else:
        assert not decision.reasons or not decision.reasons[0].startswith("malformed")
