"""Generate `docs/errors.md` from the diagnostics registry, `charter/language/diagnostics.py`.

    python scripts/gen_errors_doc.py            # rewrite docs/errors.md
    python scripts/gen_errors_doc.py --check    # exit 1 when it is stale

Each code's section shows its explanation, the example policy from the registry, and what
`charter check` (for CH04xx, `charter test`) prints for it: the example is compiled (and its
tests run) here, so the page shows real output. `tests/language/test_diagnostics.py` fails
when the committed page differs from what this prints, and uses `run_example` to check that
each example produces exactly its code.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parents[1]
OUTPUT = ROOT / "docs" / "errors.md"
#: the name an example policy has in messages
EXAMPLE_FILE = "policy.agentpolicy"
#: longer lines are shortened in the page (the test compiles the example in full)
WIDTH = 200

if str(ROOT) not in sys.path:  # run as a script from a checkout
    sys.path.insert(0, str(ROOT))

from charter.language.diagnostics import REGISTRY, SECTIONS, Code  # noqa: E402

INTRO = """\
Every diagnostic is rendered `file:line:col: error[CODE]: message`, with the source line, a caret
under the span and, where it helps, `= help:` with a did-you-mean. All errors of a file are
reported, not only the first.

Each code below comes with a policy that produces it and what `charter check` prints for it
(`charter test` for CH04xx); the tests check that every example produces exactly its code.
`charter check --explain CODE` prints a code's entry in the terminal.
This page is generated from the registry in `charter/language/diagnostics.py` (whose docstring
is the style guide for messages) by `python scripts/gen_errors_doc.py`: edit the registry, not
this page.
"""


class Found(NamedTuple):
    """One diagnostic an example produced, with the example's temporary path taken out."""

    code: str
    message: str
    help: str | None
    rendered: str


def run_example(entry: Code) -> list[Found]:
    """Compile `entry.example` as a file of its own and run its tests: every diagnostic."""
    from charter.testing.runner import run_property, run_test
    from charter.testing.suite import load

    assert entry.example is not None, entry.code
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / EXAMPLE_FILE
        path.write_text(entry.example, encoding="utf-8")
        unit = load([path])
        diags = list(unit.comp.diagnostics)
        if entry.code.startswith(("W05", "W06")):
            return _analyzed(entry, unit.comp.sources, prefix=str(path.parent) + "/")
        if unit.policy is not None and not unit.errors:
            for test in unit.tests():
                diags.extend(run_test(unit, test).diagnostics)
            for prop in unit.properties():
                diags.extend(run_property(unit, prop, seed=0, examples=20).diagnostics)
        prefix = str(path.parent) + "/"

        def local(text: str) -> str:
            return text.replace(prefix, "")

        return [
            Found(
                d.code,
                local(d.message),
                local(d.help) if d.help is not None else None,
                local(d.render(unit.comp.sources.get(d.span.file))),
            )
            for d in diags
        ]


def _analyzed(entry: Code, sources: dict[str, object], prefix: str) -> list[Found]:
    """What `charter analyze` (`charter lint` for W06xx) reports for the example: every
    finding and every compile diagnostic, as text."""
    from charter.analysis import analyze_sources
    from charter.compiler.analysis import Options, render

    result = analyze_sources(list(sources.values()),  # type: ignore[arg-type]
                             Options(conflicts=entry.code == "W0507"),
                             style=entry.code.startswith("W06"))

    def local(text: str) -> str:
        return text.replace(prefix, "")

    found = [Found(d.code, local(d.message), d.help,
                   local(d.render(result.sources.get(d.span.file))))
             for d in result.compilation.diagnostics]
    found += [Found(f.code, local(f.message), f.help,
                    local(render.render_one(f, result.sources)))
              for f in result.findings]
    return found


def _shorten(text: str) -> tuple[str, bool]:
    lines, cut = [], False
    for line in text.splitlines():
        if len(line) > WIDTH:
            line, cut = line[: WIDTH - 32] + " … " + line[-29:], True
        lines.append(line)
    return "\n".join(lines), cut


def _entry(entry: Code) -> list[str]:
    out = [f"### {entry.code}: {entry.title}", "", entry.explanation, ""]
    if entry.example is None:
        out += [f"No example policy: {entry.no_example}.", ""]
        return out
    example, cut_example = _shorten(entry.example.rstrip("\n"))
    shown, cut_output = _shorten("\n\n".join(f.rendered for f in run_example(entry)))
    out += ["```agentpolicy", example, "```", "", "```text", shown, "```", ""]
    if cut_example or cut_output:
        out += [f"(Lines longer than {WIDTH} characters are shortened here with `…`.)", ""]
    return out


def generate() -> str:
    """The text of `docs/errors.md`."""
    out = [
        "# Error codes",
        "",
        "<!-- Generated by scripts/gen_errors_doc.py from charter/language/diagnostics.py;"
        " do not edit. -->",
        "",
        INTRO.rstrip("\n"),
        "",
        "| code | severity | title |",
        "| --- | --- | --- |",
    ]
    ordered = [e for s in SECTIONS for e in REGISTRY.values() if e.code.startswith(s.prefix)]
    out += [f"| {e.code} | {e.severity} | {e.title} |" for e in ordered]
    out.append("")
    for section in SECTIONS:
        out += [f"## {section.title}", ""]
        if section.intro:
            out += [section.intro, ""]
        for entry in REGISTRY.values():
            if entry.code.startswith(section.prefix):
                out += _entry(entry)
    return "\n".join(out).rstrip("\n") + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if docs/errors.md is stale")
    args = parser.parse_args(argv)
    text = generate()
    if args.check:
        current = OUTPUT.read_text(encoding="utf-8") if OUTPUT.exists() else ""
        if current != text:
            print(f"{OUTPUT} is stale: run python scripts/gen_errors_doc.py", file=sys.stderr)
            return 1
        return 0
    OUTPUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUTPUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
