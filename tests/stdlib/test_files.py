"""`replace_file`: the one tmp+rename writer of state, status, control and bundle files."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from charter.stdlib.files import replace_file


def test_replaces_whole_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "status.json"
    replace_file(target, b"old")
    replace_file(target, b"new", fsync=False)
    assert target.read_bytes() == b"new"
    assert [p.name for p in tmp_path.iterdir()] == ["status.json"]


def test_a_failed_write_keeps_the_old_file_and_removes_its_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "control.json"
    replace_file(target, b"old")

    def broken(src: object, dst: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr("charter.stdlib.files.os.replace", broken)
    with pytest.raises(OSError, match="disk full"):
        replace_file(target, b"new")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["control.json"]


def test_threads_writing_at_once_leave_one_whole_version(tmp_path: Path) -> None:
    target = tmp_path / "pin.json"
    versions = [bytes([65 + i]) * 50_000 for i in range(8)]
    threads = [threading.Thread(target=replace_file, args=(target, v)) for v in versions]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert target.read_bytes() in versions  # one writer's bytes, never a mix
    assert [p.name for p in tmp_path.iterdir()] == ["pin.json"]
