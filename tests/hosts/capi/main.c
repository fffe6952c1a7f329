/* A C caller of libcharter (tests/hosts/capi/test_capi.py builds and runs it).

   main corpus POLICY REQUEST.json...   one "DECISION name<TAB>json" line per request, the error
                                        paths, then the same requests from 4 threads
   main guard POLICY REQUEST.json       check, approve as alice of finance, retry, retry again
   main race POLICY REQUEST.json        8 threads make their first call at once
   main leak POLICY REQUEST.json N      N decide + check calls, all freed (for valgrind)
   main bundle BUNDLE KEYS.json REQUEST.json   load a signed bundle, decide, or print the error */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "charter.h"

#define THREADS 4
#define ROUNDS 250

static char *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) { perror(path); exit(3); }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (fread(buf, 1, (size_t)n, f) != (size_t)n) { perror(path); exit(3); }
    buf[n] = 0;
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static charter_policy *policy;
static int nreq;
static char **reqs;
static size_t *lens;
static char **want;

static void *worker(void *arg) {
    long mismatches = 0;
    (void)arg;
    for (int r = 0; r < ROUNDS; r++) {
        for (int i = 0; i < nreq; i++) {
            char *got = charter_decide_json(policy, reqs[i], lens[i]);
            if (got == NULL || strcmp(got, want[i]) != 0) mismatches++;
            charter_free(got);
        }
    }
    return (void *)mismatches;
}

static int corpus(const char *dir, int n, char **files) {
    char *err = NULL;
    charter_free(NULL); /* fine */
    if (charter_load("/nonexistent/policy", &err) != NULL || err == NULL) return 4;
    printf("LOADERR\t%s\n", err);
    charter_free(err);
    err = NULL;
    const char *broken = "policy \"x\"\nallow tool to";
    if (charter_load_source(broken, strlen(broken), "bad.agentpolicy", &err) != NULL) return 4;
    printf("SOURCEERR\t%s\n", err);
    charter_free(err);
    policy = charter_load(dir, &err);
    if (policy == NULL) { fprintf(stderr, "load: %s\n", err); return 5; }
    nreq = n;
    reqs = calloc((size_t)n, sizeof *reqs);
    lens = calloc((size_t)n, sizeof *lens);
    want = calloc((size_t)n, sizeof *want);
    for (int i = 0; i < n; i++) {
        reqs[i] = slurp(files[i], &lens[i]);
        want[i] = charter_decide_json(policy, reqs[i], lens[i]);
        if (want[i] == NULL) return 6;
        const char *base = strrchr(files[i], '/');
        printf("DECISION\t%s\t%s\n", base ? base + 1 : files[i], want[i]);
    }
    char *bad = charter_decide_json(policy, "{nope", 5);
    printf("BADJSON\t%s\n", bad ? bad : "NULL");
    charter_free(bad);
    char *none = charter_decide_json(policy, NULL, 0);
    printf("NULLREQ\t%s\n", none ? none : "NULL");
    charter_free(none);
    char *stale = charter_decide_json((charter_policy *)0x42, "{}", 2);
    printf("BADHANDLE\t%s\n", stale ? stale : "NULL");
    charter_free(stale);
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++) pthread_create(&t[i], NULL, worker, NULL);
    long mismatches = 0;
    for (int i = 0; i < THREADS; i++) {
        void *m;
        pthread_join(t[i], &m);
        mismatches += (long)m;
    }
    printf("THREADS\t%d\t%ld\t%ld\n", THREADS, (long)THREADS * ROUNDS * n, mismatches);
    for (int i = 0; i < n; i++) { charter_free(want[i]); free(reqs[i]); }
    charter_policy_free(policy);
    return 0;
}

static int guard(const char *dir, const char *file) {
    char *err = NULL;
    size_t len;
    charter_policy *p = charter_load(dir, &err);
    if (p == NULL) return 5;
    charter_guard *g = charter_guard_new(p, "{\"state\": \"memory\"}", &err);
    if (g == NULL) { fprintf(stderr, "guard: %s\n", err); return 5; }
    char *req = slurp(file, &len);
    char *first = charter_guard_check_json(g, req, len);
    printf("CHECK\t%s\n", first);
    size_t need = strlen(first) + 64;
    char *body = malloc(need);
    snprintf(body, need, "{\"decision\": %s, \"by\": \"alice\", \"group\": \"finance\"}", first);
    char *grant = charter_guard_approve_json(g, body, strlen(body));
    printf("GRANT\t%s\n", grant);
    const char *at = strstr(grant, "\"grant\":\"");
    if (at == NULL) return 7;
    at += 9;
    size_t glen = (size_t)(strchr(at, '"') - at);
    char *last = strrchr(req, '}');
    *last = 0;
    size_t rlen = strlen(req) + glen + 32;
    char *retry = malloc(rlen);
    snprintf(retry, rlen, "%s, \"approvals\": [\"%.*s\"]}", req, (int)glen, at);
    char *second = charter_guard_check_json(g, retry, strlen(retry));
    printf("RETRY\t%s\n", second);
    char *third = charter_guard_check_json(g, retry, strlen(retry));
    printf("REPLAY\t%s\n", third);
    printf("SETTLEBAD\t%d\n", charter_guard_settle_json(g, "{}", 2));
    charter_free(first); charter_free(grant); charter_free(second); charter_free(third);
    free(body); free(retry); free(req);
    charter_guard_free(g);
    charter_policy_free(p);
    return 0;
}

/* N decisions and N guard checks, everything freed: run under valgrind with N = 0 and
   N > 0, the leak summaries must match (the interpreter's one-time allocations aside). */
static int leak(const char *dir, const char *file, int n) {
    char *err = NULL;
    size_t len;
    charter_policy *p = charter_load(dir, &err);
    if (p == NULL) return 5;
    charter_guard *g = charter_guard_new(p, "{}", &err);
    if (g == NULL) return 5;
    char *req = slurp(file, &len);
    for (int i = 0; i < n; i++) {
        charter_free(charter_decide_json(p, req, len));
        charter_free(charter_guard_check_json(g, req, len));
        charter_free(charter_decide_json(p, "{nope", 5));
    }
    free(req);
    charter_guard_free(g);
    charter_policy_free(p);
    printf("LEAK\t%d\n", n);
    return 0;
}

static const char *race_dir, *race_file;
static pthread_barrier_t barrier;

static void *racer(void *arg) {
    char *err = NULL;
    size_t len;
    char *req = slurp(race_file, &len);
    pthread_barrier_wait(&barrier);
    charter_policy *p = charter_load(race_dir, &err); /* the first call starts Python */
    char *d = p ? charter_decide_json(p, req, len) : NULL;
    long ok = d != NULL && strstr(d, "\"effect\"") != NULL;
    charter_free(d);
    charter_policy_free(p);
    free(req);
    (void)arg;
    return (void *)ok;
}

static int race(const char *dir, const char *file) {
    pthread_t t[8];
    race_dir = dir;
    race_file = file;
    pthread_barrier_init(&barrier, NULL, 8);
    for (int i = 0; i < 8; i++) pthread_create(&t[i], NULL, racer, NULL);
    long ok = 0;
    for (int i = 0; i < 8; i++) {
        void *r;
        pthread_join(t[i], &r);
        ok += (long)r;
    }
    printf("RACE\t8\t%ld\n", ok);
    return 0;
}

static int bundle(const char *path, const char *keys_file, const char *request) {
    size_t klen, rlen;
    char *keys = slurp(keys_file, &klen);
    char *req = slurp(request, &rlen);
    char *err = NULL;
    charter_policy *p = charter_load_bundle(path, keys, &err);
    if (p == NULL) {
        printf("BUNDLEERR\t%s\n", err ? err : "(no error)");
    } else {
        char *d = charter_decide_json(p, req, rlen);
        printf("BUNDLE\t%s\n", d);
        charter_free(d);
        charter_policy_free(p);
    }
    charter_free(err);
    free(keys);
    free(req);
    return 0;
}

int main(int argc, char **argv) {
    if (charter_abi_version() != CHARTER_ABI_VERSION) return 2;
    printf("VERSION\t%s\n", charter_version());
    if (argc >= 4 && strcmp(argv[1], "corpus") == 0) return corpus(argv[2], argc - 3, argv + 3);
    if (argc == 4 && strcmp(argv[1], "guard") == 0) return guard(argv[2], argv[3]);
    if (argc == 4 && strcmp(argv[1], "race") == 0) return race(argv[2], argv[3]);
    if (argc == 5 && strcmp(argv[1], "leak") == 0) return leak(argv[2], argv[3], atoi(argv[4]));
    if (argc == 5 && strcmp(argv[1], "bundle") == 0) return bundle(argv[2], argv[3], argv[4]);
    fprintf(stderr, "usage: main corpus|guard|race POLICY REQUEST...\n");
    return 1;
}
