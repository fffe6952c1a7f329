"""libcharter: Charter as a C library (spec hosts.md §5). `charter.h` is the header,
`build.py` builds `libcharter.so` with cffi's embedding API, `abi.py` is the Python behind
each function. See docs/hosts.md, "C ABI"."""
