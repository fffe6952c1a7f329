"""The matchers one policy uses, compiled once into one RE2 Set (via charter.stdlib)."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Any

from charter.engine import ir
from charter.stdlib.values import RequestError


class PolicyMatchers:
    """Scans values for every matcher a policy refers to, in one Set pass per value."""

    def __init__(self, user: dict[str, ir.MatcherInfo], used: Iterable[str]) -> None:
        self._user = user
        self._used = tuple(dict.fromkeys(used))
        self._scanner: Any = None
        self._scan_error: type[Exception] = Exception  # set with the scanner

    @property
    def scanner(self) -> Any:
        if self._scanner is None:
            from charter.stdlib.matchers import resolve, user_matcher
            from charter.stdlib.scanner import ScanError, Scanner

            specs = []
            for name in self._used:
                info = self._user.get(name)
                if info is not None:
                    specs.append(user_matcher(name, info.pattern))
                else:
                    found = resolve(name)
                    if found:
                        specs.extend(found)
            unique = {s.name: s for s in specs}
            self._scanner = Scanner(list(unique.values()))
            self._scan_error = ScanError
        return self._scanner

    def scan(self, value: object) -> frozenset[str]:
        found: frozenset[str] = self.scanner.scan(value)
        return found

    def count(self, value: object, names: Collection[str]) -> int:
        return sum(int(self.scanner.count(value, n)) for n in names)

    def may_find(self, value: object, names: Collection[str]) -> bool:
        """Whether `value` may hold a match of any of `names` (groups allowed): one Set pass,
        no validation; False means nothing to redact. A value the scanner refuses is a
        RequestError naming why."""
        try:
            found: bool = self.scanner.may_match(value, names)
        except self._scan_error as err:
            raise RequestError(f"cannot scan for redaction: {err}") from None
        return found

    def counts(self, value: object, names: Collection[str]) -> dict[str, int]:
        """Replacements `redact` would make per matcher, without building the redacted value.
        A value the scanner refuses (too large, too deep) is a RequestError naming why."""
        try:
            out: dict[str, int] = self.scanner.counts(value, names)
        except self._scan_error as err:
            raise RequestError(f"cannot scan for redaction: {err}") from None
        return out

    def redact(self, value: object, names: Collection[str]) -> tuple[object, dict[str, int]]:
        out: tuple[object, dict[str, int]] = self.scanner.redact(value, names)
        return out


def used_matchers(policy: ir.Policy) -> list[str]:
    """Every matcher name the policy's rules mention (contains, count, redact)."""
    names: list[str] = []
    for rule in policy.rules:
        if rule.cond is not None:
            for node in ir.walk(rule.cond):
                if isinstance(node, ir.Contains | ir.CountOf):
                    names.extend(node.matchers)
        names.extend(rule.redact)
    return names
