"""Build libcharter, Charter's C ABI (spec hosts.md §5), with cffi's embedding API.

    python -m charter.hosts.capi.build --out build/capi
    cc -I build/capi main.c -L build/capi -lcharter -Wl,-rpath,build/capi -o main

writes `libcharter.so` and `charter.h` into `--out`. Needs cffi, a C compiler and the
Python headers; the library links this interpreter's shared libpython (its directory is
recorded as an rpath) and records where the `charter` package and its dependencies are, so
the embedded interpreter finds them (`CHARTER_PYTHONPATH` adds paths in front).

`charter_abi_version`, `charter_version` and `charter_free` are plain C (no interpreter, no
lock); every other function starts Python on first use (cffi makes one thread initialise
while the others wait) and runs `charter.hosts.capi.abi` under the interpreter's lock.
"""

from __future__ import annotations

import argparse
import shutil
import site
import sys
import sysconfig
from pathlib import Path

__all__ = ["HEADER", "build"]

HEADER = Path(__file__).with_name("charter.h")
ABI_VERSION = 1

_TYPES = """
typedef struct charter_policy charter_policy;
typedef struct charter_guard charter_guard;
"""

_PYTHON_API = """
charter_policy *charter_load(const char *path, char **err);
charter_policy *charter_load_source(const char *text, size_t len, const char *name, char **err);
charter_policy *charter_load_bundle(const char *path, const char *keys_json, char **err);
void charter_policy_free(charter_policy *p);
char *charter_decide_json(charter_policy *p, const char *request_json, size_t len);
charter_guard *charter_guard_new(charter_policy *p, const char *config_json, char **err);
char *charter_guard_check_json(charter_guard *g, const char *request_json, size_t len);
int charter_guard_settle_json(charter_guard *g, const char *settle_json, size_t len);
char *charter_guard_approve_json(charter_guard *g, const char *approve_json, size_t len);
void charter_guard_free(charter_guard *g);
"""

# Plain C: freeing and the version never wait for the interpreter. A function both in the
# embedding API and defined here would not compile (cffi defines the former itself).
_C_SOURCE = """
#include <stdlib.h>
#include <string.h>
#define CHARTER_EXPORT __attribute__((visibility("default")))
typedef struct charter_policy charter_policy;
typedef struct charter_guard charter_guard;

/* A host that dlopen()s libcharter (Node's koffi, Python's ctypes, Go plugins) loads it, and
   libpython with it, RTLD_LOCAL: Python's own extension modules (cffi's backend first)
   then cannot see the interpreter's symbols. Promote libpython to global when loaded. */
#include <dlfcn.h>
__attribute__((constructor)) static void charter__global_python(void) {
    dlopen("%(libpython)s", RTLD_NOW | RTLD_GLOBAL | RTLD_NOLOAD);
}

CHARTER_EXPORT int charter_abi_version(void) { return %(abi)d; }
CHARTER_EXPORT const char *charter_version(void) { return "%(version)s"; }
CHARTER_EXPORT void charter_free(void *ptr) { free(ptr); }

/* The answers Python hands back to C: malloc'd, NUL-terminated, freed by charter_free. */
static char *charter__dup(const char *data, size_t len) {
    char *p = malloc(len + 1);
    if (p == NULL) return NULL;
    memcpy(p, data, len);
    p[len] = 0;
    return p;
}
"""

_INIT = """
import os, sys
_paths = [p for p in os.environ.get("CHARTER_PYTHONPATH", "").split(os.pathsep) if p]
for _p in reversed(_paths + %(paths)r):
    if _p not in sys.path:
        sys.path.insert(0, _p)
from _charter_capi import ffi, lib
from charter.hosts.capi.abi import bind
bind(ffi, lib)
"""


def _paths() -> list[str]:
    """Where the embedded interpreter must look: the `charter` package's parent and this
    environment's site-packages."""
    import charter

    found = [str(Path(charter.__file__).resolve().parents[1])]
    for p in [*site.getsitepackages(), site.getusersitepackages()]:
        if Path(p).is_dir() and p not in found:
            found.append(p)
    return found


def _version() -> str:
    try:
        from importlib.metadata import version

        return f"charter {version('charter')} (C ABI {ABI_VERSION})"
    except Exception:  # noqa: BLE001 - an uninstalled checkout still builds
        return f"charter (C ABI {ABI_VERSION})"


def build(out: str | Path) -> Path:
    """Build `libcharter.so` (and copy `charter.h`) into `out`; returns the library's path."""
    import cffi

    target = Path(out).resolve()
    target.mkdir(parents=True, exist_ok=True)
    ffi = cffi.FFI()
    ffi.cdef(_TYPES + "static char *charter__dup(const char *data, size_t len);")
    ffi.embedding_api(_PYTHON_API)
    libdir = sysconfig.get_config_var("LIBDIR") or ""
    ffi.set_source(
        "_charter_capi",
        _C_SOURCE
        % {
            "abi": ABI_VERSION,
            "version": _version(),
            "libpython": sysconfig.get_config_var("INSTSONAME") or "libpython3.so",
        },
        extra_link_args=([f"-Wl,-rpath,{libdir}"] if libdir else []) + ["-ldl"],
    )
    ffi.embedding_init_code(_INIT % {"paths": _paths()})
    work = target / "cffi-build"
    built = Path(ffi.compile(tmpdir=str(work), target="libcharter.*", verbose=False))
    lib = target / built.name
    if built.resolve() != lib:
        shutil.move(str(built), lib)
    shutil.copyfile(HEADER, target / "charter.h")
    shutil.rmtree(work, ignore_errors=True)
    return lib


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m charter.hosts.capi.build", description="Build libcharter (the C ABI)."
    )
    parser.add_argument("--out", default="build/capi", help="directory for the library")
    args = parser.parse_args(argv)
    lib = build(args.out)
    print(lib)
    return 0


if __name__ == "__main__":
    sys.exit(main())
