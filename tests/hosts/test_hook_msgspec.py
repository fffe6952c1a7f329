"""`charter.cli.hook_msgspec`: the hook process's msgspec loads neither typing_extensions,
`msgspec.inspect` nor the JSON Schema generator up front, and is the whole msgspec when
they are used."""

from __future__ import annotations

import json
import subprocess
import sys

from hookrun import ROOT

_SCRIPT = """
import json, sys
from charter.cli.hook_msgspec import import_msgspec
import_msgspec()
import msgspec
names = ("typing_extensions", "textwrap", "msgspec.inspect", "msgspec._json_schema")
loaded = sorted(m for m in names if type(sys.modules.get(m)).__name__ == "module")

class Point(msgspec.Struct):
    x: int
    y: int = 0

decoded = msgspec.json.decode(b'{"x": 3}', type=Point)
schema = msgspec.json.schema(Point)
info = msgspec.inspect.type_info(Point)
print(json.dumps([loaded, decoded.x, decoded.y, schema["$ref"], type(info).__name__,
                  msgspec.json.schema_components((Point,))[1]["Point"]["required"]]))
"""


def test_deferred_parts_load_when_used_and_answer_as_msgspec_does() -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-I",
            "-S",
            "-c",
            f"import sys\nsys.path[:0] = {[str(ROOT), *sys.path[1:]]!r}\n{_SCRIPT}",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    loaded, x, y, ref, info, required = json.loads(proc.stdout)
    assert loaded == []  # nothing of the deferred parts, nor typing_extensions, up front
    assert (x, y) == (3, 0)
    assert ref == "#/$defs/Point"
    assert info == "StructType"
    assert required == ["x"]
