// Node calling libcharter through koffi (no build step): one "DECISION name<TAB>json" line
// per request file, then a bad request. Run by tests/hosts/capi/test_capi.py.
//   node decide.js LIBCHARTER.so POLICY REQUEST.json...
"use strict";
const fs = require("fs");
const path = require("path");
const koffi = require("koffi");

const [libPath, policyDir, ...files] = process.argv.slice(2);
const lib = koffi.load(libPath);
const charterFree = lib.func("void charter_free(void *ptr)");
// every answer is a char* the caller frees: koffi copies it to a JS string, then frees it
const Answer = koffi.disposable("CharterAnswer", "str", charterFree);
const abiVersion = lib.func("int charter_abi_version(void)");
const load = lib.func("void *charter_load(const char *path, _Out_ char **err)");
const decide = lib.func("charter_decide_json", Answer, ["void *", "const char *", "size_t"]);
const policyFree = lib.func("void charter_policy_free(void *p)");

if (abiVersion() !== 1) throw new Error("unexpected ABI version " + abiVersion());
const err = [null]; // (the error strings are copied out; their C copies are not freed here)
if (load("/nonexistent/policy", err) !== null || !err[0]) throw new Error("bad load answered");
console.log("LOADERR\t" + err[0]);
const policy = load(policyDir, err);
if (policy === null) throw new Error("load: " + err[0]);
for (const file of files) {
  const text = fs.readFileSync(file, "utf8");
  console.log("DECISION\t" + path.basename(file) + "\t" + decide(policy, text, Buffer.byteLength(text)));
}
console.log("BADJSON\t" + decide(policy, "{nope", 5));
policyFree(policy);
