"""The evaluation kernel: IR, planning, the emitter, the reference interpreter, combining.

Pure: no I/O, no Lark, no `charter.language`, `charter.compiler` or `charter.runtime`. The
runtime and every host stand on it; the compiler produces what it runs.
"""
