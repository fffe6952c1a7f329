"""Import contracts: the package layering of docs/architecture.md holds, checked two ways.

Statically, every `import charter.X` in package P is an edge P -> X, and the allowed edges are
listed below (a new edge is a design change: add it here and to the doc). Dynamically, a fresh
interpreter imports one module and reports which packages came with it, since a lazy import
inside a function still runs when the module is used.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "charter"

# Who may import whom (module-level or lazily). `charter` itself is the public facade.
ALLOWED: dict[str, set[str]] = {
    "stdlib": set(),
    "grammar": set(),
    "engine": {"stdlib"},
    "language": {"stdlib", "grammar"},
    "compiler": {"language", "engine", "stdlib"},
    "runtime": {"engine", "stdlib"},
    "testing": {"language", "compiler", "engine", "runtime", "stdlib"},
    "control": {"language", "compiler", "testing", "engine", "runtime", "stdlib"},
    "hosts": {"control", "engine", "runtime", "stdlib"},
    "lsp": {"language", "compiler", "engine", "stdlib"},
    "cli": {"language", "compiler", "engine", "runtime", "stdlib", "testing", "lsp",
            "control", "hosts", "analysis"},  # analysis: the `charter.analysis` facade module
    "": {"language", "compiler", "engine", "runtime"},
}


def _edges() -> dict[str, set[tuple[str, str]]]:
    """package -> {(imported package, where)} for every import of another charter package."""
    edges: dict[str, set[tuple[str, str]]] = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        own = parts[1] if len(parts) > 2 else ""
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            for name in names:
                bits = name.split(".")
                if bits[0] == "charter" and len(bits) > 1 and bits[1] != own:
                    where = f"{path.relative_to(ROOT)}:{node.lineno}"
                    edges.setdefault(own, set()).add((bits[1], where))
    return edges


def test_every_import_edge_is_allowed() -> None:
    bad = [f"{where}: {own or 'charter'} -> {to}"
           for own, targets in _edges().items() for to, where in targets
           if to not in ALLOWED.get(own, set())]
    assert not bad, "imports against the layering:\n" + "\n".join(sorted(bad))


def test_no_package_cycle() -> None:
    graph = {own: {to for to, _ in targets} for own, targets in _edges().items() if own}
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                pytest.fail("package cycle: " + " -> ".join([*path, node, nxt]))
            if nxt not in state:
                visit(nxt, [*path, node])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [])


def _loaded(code: str) -> list[str]:
    script = code + (
        "\nimport sys, json\n"
        "print(json.dumps(sorted(m for m in sys.modules if m == 'lark' or m.startswith('lark.')"
        " or m.startswith('charter.'))))"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         check=True, cwd=ROOT)
    loaded: list[str] = json.loads(out.stdout.strip().splitlines()[-1])
    return loaded


def _packages(modules: list[str]) -> set[str]:
    return {m.split(".")[1] if m.startswith("charter.") else m.split(".")[0] for m in modules}


@pytest.mark.parametrize(("code", "forbidden"), [
    ("import charter.language.checker", {"engine", "runtime", "compiler"}),
    ("import charter.engine.emit, charter.engine.interpreter, charter.engine.plan",
     {"language", "compiler", "runtime", "lark"}),
    ("import charter.runtime.guard, charter.runtime.policy", {"compiler", "language", "lark"}),
    ("import charter.runtime.live", {"compiler", "language", "lark", "control"}),
    ("import charter.runtime.live_bundle, charter.runtime.live_redis_source",
     {"compiler", "language", "lark", "control"}),
    ("import charter.stdlib.functions, charter.stdlib.scanner",
     {"engine", "language", "compiler", "runtime"}),
    ("import charter", {"engine", "language", "compiler", "runtime", "lark"}),
])
def test_importing_loads_only_lower_layers(code: str, forbidden: set[str]) -> None:
    assert not _packages(_loaded(code)) & forbidden


def test_deciding_from_a_saved_policy_loads_no_compiler(tmp_path: Path) -> None:
    """`charter.load_compiled` and `charter eval` on a saved policy (a hook's fresh process
    per call) decide without the compiler, the language or Lark."""
    import charter

    saved = tmp_path / "p.compiled"
    request = tmp_path / "r.json"
    charter.compile('policy "p"\ndefault deny\nallow tool "t" when args.n <= 3\n').save(saved)
    request.write_text('{"tool": "t", "args": {"n": 1}}')
    load = f"import charter\ncharter.load_compiled({str(saved)!r}).decide({{'tool': 't'}})"
    cli = (
        "import sys\nfrom charter.cli.entry import main\n"
        f"sys.argv = ['charter', 'eval', {str(saved)!r}, '-r', {str(request)!r}]\n"
        "try:\n    main()\nexcept SystemExit:\n    pass"
    )
    for code in (load, cli):
        assert not _packages(_loaded(code)) & {"compiler", "language", "lark"}, code
