"""The `charter` command line, run as a subprocess like a user would."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
CHARTER = shutil.which("charter") or "charter"  # the console script of `pip install -e .`
THREE = ROOT / "tests" / "corpus" / "errors" / "acceptance_three_errors.agentpolicy"


def run(*args: str, stdin: str | None = None,
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CHARTER, *args], cwd=ROOT, input=stdin,
        capture_output=True, text=True, timeout=120,
        env={**os.environ, **env} if env else None,
    )


def test_check_examples_is_clean() -> None:
    out = run("check", "examples/")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "0 error(s)" in out.stdout + out.stderr


def test_check_reports_all_three_errors() -> None:
    out = run("check", str(THREE.relative_to(ROOT)))
    assert out.returncode == 1
    text = out.stdout + out.stderr
    name = "tests/corpus/errors/acceptance_three_errors.agentpolicy"
    for code, pos in (("CH0102", "11:49"), ("CH0203", "9:45"), ("CH0202", "10:38")):
        assert f"{name}:{pos}: error[{code}]" in text
    assert text.count("help:") >= 3
    assert "did you mean `currency`?" in text
    carets = [ln for ln in text.splitlines() if ln.strip().startswith("|") and "^" in ln]
    assert len(carets) == 3
    assert "3 error(s)" in text


def test_check_json() -> None:
    out = run("check", "--format", "json", str(THREE))
    assert out.returncode == 1
    report = json.loads(out.stdout)
    assert report["errors"] == 3
    got = sorted((d["code"], d["line"], d["col"]) for d in report["diagnostics"])
    assert got == [("CH0102", 11, 49), ("CH0202", 10, 38), ("CH0203", 9, 45)]
    assert all(d["severity"] == "error" and d["message"] for d in report["diagnostics"])


def test_check_missing_path_is_a_usage_error() -> None:
    out = run("check", "no/such/dir")
    assert out.returncode == 2
    assert "no such file" in out.stderr


def test_eval_example_request() -> None:
    req = EXAMPLES / "support" / "requests" / "04-refund-needs-approval.json"
    out = run("eval", "examples/support", "--request", str(req))
    assert out.returncode == 0, out.stderr
    decision = json.loads(out.stdout)
    assert decision["effect"] == "require_approval"
    assert decision["approvers"] == ["finance"]
    assert "refund-approval" in decision["rules"]


def test_eval_array_from_stdin() -> None:
    reqs = [{"tool": "kb.search", "agent": {"team": "support"}, "args": {"query": "q"},
             "session": {"id": "s", "cost_usd": 0}}, {"tool": 42}]
    out = run("eval", "examples/support", "--request", "-", stdin=json.dumps(reqs))
    assert out.returncode == 0, out.stderr
    lines = [json.loads(ln) for ln in out.stdout.splitlines()]
    assert [d["effect"] for d in lines] == ["allow", "deny"]
    assert "malformed request" in lines[1]["reasons"][0]
    # errors are objects: no rule caused a malformed request; the field is named
    assert lines[1]["errors"] == [{"rule": None, "field": "tool", "message": (
        "tool must be a name or an object with a name; found an int")}]


def test_explain_shows_a_rule_error_with_its_field(tmp_path: Path) -> None:
    policy = tmp_path / "p.agentpolicy"
    policy.write_text('policy "p"\ndefault deny\n@id("big")\n'
                      'deny tool "pay" when args.amount > 100\n')
    req = tmp_path / "r.json"
    req.write_text(json.dumps({"tool": "pay", "args": {}}))
    out = run("explain", str(policy), "--request", str(req))
    assert out.returncode == 0, out.stderr
    assert "[ERROR] big deny" in out.stdout
    assert "request error: args.amount missing [field args.amount]" in out.stdout
    out = run("eval", str(policy), "--request", str(req), "--format", "json")
    assert json.loads(out.stdout)["errors"] == [
        {"rule": "big", "field": "args.amount", "message": "args.amount missing"}]


def test_eval_invalid_json_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"tool": ')
    out = run("eval", "examples/support", "--request", str(bad))
    assert out.returncode == 2
    assert "not valid JSON" in out.stderr
    assert str(bad) in out.stderr
    assert out.stdout == ""


def test_eval_broken_policy_exits_1() -> None:
    out = run("eval", str(THREE), "--request", "-", stdin='{"tool": "x"}')
    assert out.returncode == 1
    assert "error[CH0202]" in out.stderr


def test_eval_deep_json_request_is_a_clear_error(tmp_path: Path) -> None:
    """D16: a 10,000-deep JSON request printed a RecursionError traceback."""
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 10_000 + "]" * 10_000)
    out = run("eval", "examples/support", "--request", str(deep))
    assert out.returncode == 2
    assert f"{deep}: JSON nested too deeply" in out.stderr
    assert "Traceback" not in out.stderr and out.stdout == ""


def test_eval_directory_survives_a_bad_file(tmp_path: Path) -> None:
    for name in ("01-kb-search.json", "03-refund-small.json"):
        shutil.copy(EXAMPLES / "support" / "requests" / name, tmp_path / name)
    (tmp_path / "02-broken.json").write_text('{"tool": ')
    (tmp_path / "04-deep.json").write_text('{"args": ' * 5000 + "1" + "}" * 5000)
    out = run("eval", "examples/support", "--request", str(tmp_path))
    assert out.returncode == 2, "the exit code says a file could not be read"
    lines = [json.loads(ln) for ln in out.stdout.splitlines()]
    assert [ln["request"] for ln in lines] == [
        "01-kb-search.json", "02-broken.json", "03-refund-small.json", "04-deep.json"]
    assert [ln["decision"]["effect"] for ln in lines if "decision" in ln] == ["allow", "allow"]
    assert "not valid JSON" in lines[1]["error"] and "nested too deeply" in lines[3]["error"]
    assert f"error: {tmp_path / '02-broken.json'}: not valid JSON" in out.stderr
    assert "Traceback" not in out.stderr


def test_eval_expect_agrees_with_every_example_golden_file() -> None:
    """The examples' expected.json, six of whose requests need state (a limit reached, an
    approval granted): --expect decides each in the state its expectation gives."""
    stateful = 0
    for folder in ("support", "coding", "finance"):
        d = f"examples/{folder}"
        out = run("eval", d, "--request", f"{d}/requests", "--expect", f"{d}/expected.json")
        assert out.returncode == 0, out.stdout + out.stderr
        lines = [json.loads(ln) for ln in out.stdout.splitlines()]
        assert lines and all(ln["agrees"] and ln["differences"] == [] for ln in lines)
        stateful += sum("state" in ln for ln in lines)
    assert stateful == 6


def test_eval_expect_reports_a_difference(tmp_path: Path) -> None:
    golden = json.loads((EXAMPLES / "support" / "expected.json").read_text())
    golden["01-kb-search.json"]["effect"] = "deny"
    del golden["19-email-rate-limited.json"]["state"]  # without its state it is allowed
    path = tmp_path / "expected.json"
    path.write_text(json.dumps(golden))
    out = run("eval", "examples/support", "--request", "examples/support/requests",
              "--expect", str(path), "--format", "table", env={"COLUMNS": "250"})
    assert out.returncode == 1
    assert "effect allow, expected deny" in out.stdout
    assert "19 of 21 as expected" in " ".join(out.stdout.split())


def _on_terminal(command: str) -> tuple[int, str]:
    """Run a shell command with stdout on a pseudo-terminal: (exit code, what it printed)."""
    import pty

    leader, follower = pty.openpty()
    proc = subprocess.Popen(["bash", "-c", command], cwd=ROOT, stdout=follower,
                            stderr=subprocess.STDOUT, env={**os.environ, "COLUMNS": "200"})
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the terminal closed: the command is done
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    return proc.wait(timeout=120), b"".join(chunks).decode()


def test_readme_first_command_prints_tables_that_agree() -> None:
    """The README's first command (without its `pip install`), on a terminal: a coloured
    table per example and a summary, not JSON lines, and every decision as expected."""
    readme = (ROOT / "README.md").read_text()
    first = readme.split("```sh\n", 1)[1].split("\n```", 1)[0]
    install = "python3 -m pip install -e . && "
    assert first.startswith(install)
    code, text = _on_terminal(first.removeprefix(install).replace("charter ", f"{CHARTER} "))
    assert code == 0, text
    assert text.count("as expected") == 4 and '{"effect"' not in text
    assert "request" in text and "effect" in text and "reasons" in text
    assert "\x1b[" in text, "coloured on a terminal"
    assert "needs state: approved by finance, cfo" in text
    assert "21 of 21 as expected" in text and text.count("24 of 24 as expected") == 2, text


def test_check_strict_makes_warnings_errors() -> None:
    warned = "tests/corpus/errors/w0303_glob_matches_nothing.agentpolicy"
    assert run("check", warned).returncode == 0
    out = run("check", "--strict", warned)
    assert out.returncode == 1
    assert "error[W0303]" in out.stderr and "1 error(s)" in out.stderr


def test_explain_code() -> None:
    req = EXAMPLES / "coding" / "requests" / "08-shell-rm-rf.json"
    out = run("explain", "examples/coding", "--request", str(req), "--code")
    assert out.returncode == 0, out.stderr
    assert "def bucket" in out.stdout
    assert "shell-rm-rf" in out.stdout
    assert "deny" in out.stdout


def test_compile_and_load_without_lark(tmp_path: Path) -> None:
    target = tmp_path / "out.charter"
    out = run("compile", "examples/finance", "-o", str(target))
    assert out.returncode == 0, out.stderr
    assert target.is_file()
    script = (
        "import sys, json\n"
        "from charter import load_compiled\n"
        f"p = load_compiled({str(target)!r})\n"
        "d = p.decide({'tool': 'invoice.read', 'now': '2026-11-24T10:00:00Z',\n"
        "  'agent': {'id': 'a', 'team': 'finance', 'tenant': 'acme'},\n"
        "  'session': {'id': 's', 'cost_usd': 0}, 'args': {'tenant': 'acme', 'invoice_id': 'i'}})\n"
        "assert d.effect == 'allow', d\n"
        "assert 'lark' not in sys.modules, 'loading a compiled policy imported lark'\n"
        "print(json.dumps({'effect': d.effect, 'policy': d.policy.name}))\n"
    )
    run_out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                             timeout=120, cwd=tmp_path)
    assert run_out.returncode == 0, run_out.stderr
    assert json.loads(run_out.stdout) == {"effect": "allow", "policy": "finance-backoffice"}


def test_compile_dump_stages(tmp_path: Path) -> None:
    for stage in ("ast", "ir", "code"):
        out = run("compile", "examples/support", "-o", str(tmp_path / "x.charter"),
                  "--dump", stage)
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip()
