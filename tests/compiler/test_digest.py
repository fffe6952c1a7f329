"""`Policy.digest` names a version by its files' contents and names below the policy
directory, never by where the directory sits: CI, bundles, hosts and logs compare it."""

from __future__ import annotations

import shutil
from pathlib import Path

from charter.compiler.pipeline import compile_sources
from charter.compiler.sources import discover
from charter.language.source import Source

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "support"


def digest(files: list[Path], as_given: list[str] | None = None) -> str:
    names = as_given or [str(f) for f in files]
    comp = compile_sources([Source(n, f.read_text()) for n, f in zip(names, files, strict=True)])
    assert comp.compiled is not None, comp.errors
    return comp.compiled.ir.digest


def copy(to: Path) -> list[Path]:
    shutil.copytree(EXAMPLE, to)
    return discover(to)


def test_the_same_files_elsewhere_are_the_same_version(tmp_path: Path) -> None:
    a = copy(tmp_path / "ci" / "build" / "policies")
    b = copy(tmp_path / "etc" / "charter")
    assert digest(a) == digest(b)
    # a path as the CLI gets it (relative) names the same version as an absolute one
    rel = [str(f.relative_to(tmp_path)) for f in a]
    assert digest(a, rel) == digest(b)


def test_content_and_names_below_the_directory_still_count(tmp_path: Path) -> None:
    files = copy(tmp_path / "p")
    before = digest(files)
    policy = next(f for f in files if f.name == "policy.agentpolicy")
    policy.write_text(policy.read_text() + "\n")
    assert digest(files) != before  # a change of text
    policy.write_text(policy.read_text()[:-1])
    assert digest(files) == before
    renamed = policy.with_name("main.agentpolicy")
    policy.rename(renamed)
    assert digest([renamed if f == policy else f for f in files]) != before  # a rename
