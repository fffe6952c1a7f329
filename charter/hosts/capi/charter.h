/* charter.h — libcharter, Charter's C ABI, version 1 (docs/hosts.md, "C ABI").

   All strings are UTF-8. Every char* the library returns is owned by the caller and freed
   with charter_free. Answers are JSON: a decision is Decision.to_json() of the Python API,
   byte for byte. No call returns NULL for a bad request: malformed input is a deny whose
   reason names the field. Handles are safe to share between threads (calls into Python take
   the interpreter's lock, one at a time). The library embeds CPython: the `charter` package
   must be importable (the paths recorded when it was built, or CHARTER_PYTHONPATH). */
#ifndef CHARTER_H
#define CHARTER_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define CHARTER_ABI_VERSION 1

typedef struct charter_policy charter_policy; /* opaque; thread-safe to share */
typedef struct charter_guard charter_guard;   /* opaque; thread-safe to share */

int charter_abi_version(void);     /* C only: never starts Python */
const char *charter_version(void); /* C only: a static string, do not free */
void charter_free(void *ptr);      /* C only; NULL is fine */

/* Load a .agentpolicy file or directory, or a compiled policy. NULL on error, with *err
   (when err is not NULL) set to {"error": "...", "diagnostics": [...]} (free it). */
charter_policy *charter_load(const char *path, char **err);
/* Compile policy source text of len bytes; name is the file name diagnostics use. */
charter_policy *charter_load_source(const char *text, size_t len, const char *name, char **err);
/* Load a signed bundle (`charter bundle`): verified (signature, exactly the listed files,
   every hash, the artifact's digest) and its compiled policy loaded, never compiled.
   keys_json: {"KEY_ID": "HMAC secret as hex" | "Ed25519 public key PEM", ...}. NULL on a
   bundle that does not verify, with *err = {"error": "bundle refused at STAGE: ...",
   "diagnostics": [{"stage": "STAGE", "message": "..."}]}. */
charter_policy *charter_load_bundle(const char *path, const char *keys_json, char **err);
void charter_policy_free(charter_policy *p);

/* Pure decision (Policy.decide) of a JSON request of len bytes. */
char *charter_decide_json(charter_policy *p, const char *request_json, size_t len);

/* Stateful enforcement (Guard). config_json: {"state": "memory" | "sqlite:PATH" |
   "redis://...", "secret_hex": "...", "log": "PATH"}; NULL or "{}" is memory. */
charter_guard *charter_guard_new(charter_policy *p, const char *config_json, char **err);
char *charter_guard_check_json(charter_guard *g, const char *request_json, size_t len);
/* {"reservation": "...", "cost_usd"?: N, "tokens"?: N, "release"?: bool}:
   1 settled, 0 the store failed or the request is wrong. */
int charter_guard_settle_json(charter_guard *g, const char *settle_json, size_t len);
/* {"decision": {...} | "action": "...", "by": "...", "group": "...", "ttl"?: S}
   -> {"grant": "cg1...", "expires_at": T} or {"error": "..."} */
char *charter_guard_approve_json(charter_guard *g, const char *approve_json, size_t len);
void charter_guard_free(charter_guard *g);

#ifdef __cplusplus
}
#endif
#endif /* CHARTER_H */
