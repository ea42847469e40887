/* snaphash_bench — nanoseconds per snapshot hash, beside the bare tokenizer on the same bytes.
 *
 * Usage: snaphash_bench [DIR]   (DIR = examples/snapshots; the files named below are read)
 * Build: cc -std=c11 -O2 -D_POSIX_C_SOURCE=200809L -Ihost tests/bench/snaphash_bench.c \
 *          host/snaphash.c host/jsonstream.c host/jsonstream_scan.c host/buf.c host/error.c \
 *          -lxxhash -lm
 *
 * For each snapshot, four jobs on the same bytes, each the median of RUNS samples of process
 * CPU time (a sample repeats one call for SAMPLE_S seconds; the jobs are sampled in turn):
 * the jsonstream tokenizer with a no-op callback (the floor: the hash is one tokenizer pass
 * plus its own work); ph_snaphash with
 * default-like rules (quantised me/enemy positions and hp, t and last_seen ignored, enemies a
 * set); the same plus relative positions (a second, early-stopping pass finds me.pos); and the
 * default rules writing the canonical text too (the designer's debug path, not the hot path).
 * Printed as a Markdown table. Budget (shared/DESIGN.md): <= 2 us for a 1 KB snapshot.
 * Depends on snaphash, jsonstream, buf, error, libxxhash and POSIX clock_gettime. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "jsonstream.h"
#include "snaphash.h"

#define RUNS 15
#define SAMPLE_S 0.04

static const char *const FILES[] = {"hello_companion.json", "surrounded.json",
                                    "non_ascii_names.json", "twelve_enemies.json"};

static const ph_hash_rule DEFAULT_RULES[] = {
    {"t", PH_HASH_IGNORE, 0},           {"**.last_seen", PH_HASH_IGNORE, 0},
    {"enemies", PH_HASH_SET, 0},        {"me.pos", PH_HASH_QUANTISE, 2},
    {"enemies[].pos", PH_HASH_QUANTISE, 2}, {"enemies[].hp", PH_HASH_QUANTISE, 10},
    {"me.hp", PH_HASH_QUANTISE, 10},    {"me.ammo", PH_HASH_QUANTISE, 5},
    {"me.morale", PH_HASH_QUANTISE, 0.25},
};
#define NDEFAULT (sizeof DEFAULT_RULES / sizeof DEFAULT_RULES[0])

typedef struct job {
    const char *text;
    size_t len;
    ph_hash_rules *rules;     /* NULL: tokenizer alone */
    ph_json *j;
    ph_buf *canonical;
} job;

static double cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, const char *detail)
{
    fprintf(stderr, "snaphash_bench: %s: %s\n", what, detail);
    exit(1);
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        die("cannot open", path);
    fseek(f, 0, SEEK_END);
    *len = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc(*len + 1);
    if (!s || fread(s, 1, *len, f) != *len)
        die("cannot read", path);
    fclose(f);
    return s;
}

static int no_token(void *ud, const ph_json_token *t) { (void)ud, (void)t; return 0; }

static volatile uint64_t sink;

/* One call of the job. */
static void once(job *b)
{
    if (!b->rules) {
        ph_json_reset(b->j);
        ph_json_feed(b->j, b->text, b->len, NULL);
        ph_json_finish(b->j);
        return;
    }
    int ok;
    if (b->canonical)
        ph_buf_reset(b->canonical);
    sink ^= ph_snaphash(b->rules, b->text, b->len, b->canonical, NULL, &ok);
    if (!ok)
        die("hash failed on", "a snapshot");
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Nanoseconds per call over one sample. */
static double sample_ns(job *b)
{
    long n = 0;
    double t0 = cpu_s(), t;
    do {
        for (int i = 0; i < 256; i++)
            once(b);
        n += 256;
    } while ((t = cpu_s()) - t0 < SAMPLE_S);
    return (t - t0) * 1e9 / (double)n;
}

/* Median ns per call of each of n jobs, sampled in turn so that noise from the rest of the
 * machine falls on all of them alike. */
static void medians(job *jobs, int n, double *out)
{
    double s[8][RUNS];
    for (int k = 0; k < n; k++)
        for (int i = 0; i < 1000; i++)
            once(&jobs[k]);    /* warm: scratch grown, caches hot */
    for (int r = 0; r < RUNS; r++)
        for (int k = 0; k < n; k++)
            s[k][r] = sample_ns(&jobs[k]);
    for (int k = 0; k < n; k++) {
        qsort(s[k], RUNS, sizeof s[k][0], cmp);
        out[k] = s[k][RUNS / 2];
    }
}

static ph_hash_rules *make_rules(int relative)
{
    ph_error err;
    ph_hash_rules *r = ph_hash_rules_from(DEFAULT_RULES, NDEFAULT, NULL, &err);
    if (!r || (relative && ph_hash_rules_add(r, "**.pos", PH_HASH_RELATIVE, 0, &err)))
        die("rules", err.message);
    return r;
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : "examples/snapshots";
    ph_hash_rules *plain = make_rules(0), *rel = make_rules(1);
    ph_json *j = ph_json_new(NULL, no_token, NULL);
    ph_buf canon;
    ph_buf_init(&canon, 1 << 20);
    printf("| snapshot | bytes | tokenizer alone (ns) | snaphash (ns) | + relative (ns) "
           "| + canonical text (ns) | hash / tokenizer |\n");
    printf("|---|---:|---:|---:|---:|---:|---:|\n");
    for (size_t i = 0; i < sizeof FILES / sizeof FILES[0]; i++) {
        char path[4096];
        size_t len;
        snprintf(path, sizeof path, "%s/%s", dir, FILES[i]);
        char *text = slurp(path, &len);
        job jobs[4] = {{text, len, NULL, j, NULL}, {text, len, plain, NULL, NULL},
                       {text, len, rel, NULL, NULL}, {text, len, plain, NULL, &canon}};
        double m[4];
        medians(jobs, 4, m);
        printf("| %s | %zu | %.0f | %.0f | %.0f | %.0f | %.2fx |\n", FILES[i], len, m[0], m[1],
               m[2], m[3], m[1] / m[0]);
        free(text);
    }
    ph_buf_free(&canon);
    ph_json_free(j);
    ph_hash_rules_free(plain);
    ph_hash_rules_free(rel);
    return 0;
}
