"""Registry of stdlib matchers by module, matcher groups (`pii.any`), and user matchers."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from charter.stdlib import pii, secrets
from charter.stdlib.spec import MatcherSpec

__all__ = ["GROUPS", "MODULES", "MatcherSpec", "placeholder_for", "resolve", "user_matcher"]


def _module(specs: tuple[MatcherSpec, ...]) -> Mapping[str, MatcherSpec]:
    return MappingProxyType({s.name.split(".", 1)[1]: s for s in specs})


MODULES: Mapping[str, Mapping[str, MatcherSpec]] = MappingProxyType(
    {"pii": _module(pii.SPECS), "secrets": _module(secrets.SPECS)}
)
"""Module name -> short matcher name -> spec, e.g. `MODULES["pii"]["email"]`."""

GROUPS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "pii.any": tuple(s.name for s in pii.SPECS),
        "secrets.any": tuple(s.name for s in secrets.SPECS),
    }
)
"""Group name -> qualified member names, in redaction priority order."""

_BY_NAME: Mapping[str, MatcherSpec] = MappingProxyType(
    {s.name: s for specs in (pii.SPECS, secrets.SPECS) for s in specs}
)


def resolve(qualified: str) -> tuple[MatcherSpec, ...] | None:
    """Specs for a qualified stdlib name (`pii.email`) or group (`pii.any`); None if unknown."""
    spec = _BY_NAME.get(qualified)
    if spec is not None:
        return (spec,)
    members = GROUPS.get(qualified)
    if members is None:
        return None
    return tuple(_BY_NAME[m] for m in members)


def placeholder_for(name: str) -> str:
    """The placeholder a user matcher called `name` redacts to: `[EMPLOYEE_ID]`."""
    return "[" + name.upper() + "]"


def user_matcher(name: str, pattern: str) -> MatcherSpec:
    """A spec for `matcher NAME = r"PATTERN"`. The whole match (group 0) is the value and
    there is no validator. The pattern is assumed checked with `compile_user_pattern`."""
    if not name.isidentifier():
        raise ValueError(f"matcher name {name!r} is not an identifier")
    return MatcherSpec(
        name=name,
        pattern=pattern,
        placeholder=placeholder_for(name),
        doc=f'user matcher r"{pattern}"',
    )
