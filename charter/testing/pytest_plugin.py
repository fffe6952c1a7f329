"""pytest plugin: collects `*_test.agentpolicy` files so `pytest` runs policy tests too.

Each `test` and `property` block becomes one pytest item, reported with the same text as
`charter test`. Each test file is compiled with the non-test policy files of its directory.
Charter itself is imported only when such a file is collected, so the plugin costs nothing
at start-up in projects without policy tests.

Options: `--charter-seed N` (property seed; random and shown in the header otherwise) and
`--charter-examples N` (examples per property, default 200), `--charter-min-examples N`
(meaningful examples a property needs; default a tenth of the examples).
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from charter.language import ast
    from charter.testing.runner import CaseResult
    from charter.testing.suite import Unit

TEST_SUFFIX = "_test.agentpolicy"  # charter.compiler.sources.TEST_SUFFIX, without importing it
_SEED_KEY = pytest.StashKey[int]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("charter", "Charter policy tests")
    group.addoption("--charter-seed", type=int, default=None,
                    help="seed for Charter property examples")
    group.addoption("--charter-examples", type=int, default=200,
                    help="examples generated per Charter property (default 200)")
    group.addoption("--charter-min-examples", type=int, default=None,
                    help="meaningful examples a Charter property needs to pass "
                    "(default a tenth of --charter-examples)")


def pytest_configure(config: pytest.Config) -> None:
    seed = config.getoption("charter_seed")
    config.stash[_SEED_KEY] = seed if seed is not None else random.SystemRandom().randrange(
        2**32)


def pytest_report_header(config: pytest.Config) -> str:
    return f"charter: property seed {config.stash[_SEED_KEY]} (--charter-seed to repeat)"


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if not file_path.name.endswith(TEST_SUFFIX):
        return None
    from charter.compiler.sources import walked

    # pytest enters what `charter test` skips (symbolic links to directories, directories
    # taken out of `norecursedirs`) and offers hidden files: keep to the files it runs.
    config = parent.config
    roots = [_root(config.invocation_params.dir, arg) for arg in config.args]
    if walked(file_path, roots):
        return PolicyTestFile.from_parent(parent, path=file_path)
    return None


def _root(here: Path, arg: str) -> Path:
    """A command-line path (`dir`, `file::test`) as the absolute path pytest collects."""
    return Path(os.path.abspath(here / arg.split("::", 1)[0]))


class PolicyTestFile(pytest.File):
    """A test file compiled with its directory's policy."""

    def collect(self) -> Iterator[pytest.Item]:
        from charter.compiler.sources import units
        from charter.testing.suite import load

        (found,) = units([self.path])  # the directory's policy and this test file
        unit = load(list(found.files), frozenset({str(self.path)}))
        if unit.errors or unit.policy is None:
            yield CompileErrorItem.from_parent(self, name="compile", unit=unit)
            return
        for test in unit.tests():
            yield PolicyItem.from_parent(self, name=f"test {test.name}", unit=unit, block=test)
        for prop in unit.properties():
            yield PolicyItem.from_parent(self, name=f"property {prop.name}", unit=unit,
                                         block=prop)


class PolicyFailure(Exception):
    """A failing block; its text is the `charter test` failure report."""


class _ReportedItem(pytest.Item):
    """An item whose `PolicyFailure` is reported as its text alone, without a traceback."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # Some plugins (pytest-lsp) assume every item has funcargs, as pytest.Function does.
        self.funcargs: dict[str, Any] = {}

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException],
                     style: Any = None) -> str:
        if isinstance(excinfo.value, PolicyFailure):
            return str(excinfo.value)
        return str(super().repr_failure(excinfo, style))


class PolicyItem(_ReportedItem):
    """One `test` or `property` block."""

    def __init__(self, *, unit: Unit, block: ast.Test | ast.Property, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.unit = unit
        self.block = block

    def runtest(self) -> None:
        from charter.language import ast
        from charter.testing.report import case_failure
        from charter.testing.runner import run_property, run_test

        result: CaseResult
        if isinstance(self.block, ast.Test):
            result = run_test(self.unit, self.block)
        else:
            from charter.testing.cache import hypothesis_in_cache

            seed = self.config.stash[_SEED_KEY]
            examples = int(self.config.getoption("charter_examples"))
            floor = self.config.getoption("charter_min_examples")
            with hypothesis_in_cache():  # the project's own Hypothesis tests are not moved
                result = run_property(self.unit, self.block, seed, examples,
                                      self.unit.biases(), floor)
        if result.status != "pass":
            raise PolicyFailure(case_failure(result))

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, self.block.span.line - 1, self.name


class CompileErrorItem(_ReportedItem):
    """Stands for a policy that does not compile: fails with its diagnostics."""

    def __init__(self, *, unit: Unit, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.unit = unit

    def runtest(self) -> None:
        text = "\n\n".join(d.render(self.unit.comp.sources.get(d.span.file))
                           for d in self.unit.errors)
        raise PolicyFailure(text or "the policy did not compile")

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, 0, "compile"
