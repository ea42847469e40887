/*
 * json_bench — throughput of the jsonstream tokenizer against yajl and against the naive
 * "re-parse the accumulated text after every piece" approach, on a corpus of plan JSON.
 *
 * Usage: json_bench DIR   (DIR holds *.json documents, e.g. tests/fixtures/plans)
 * Build: cc -std=c11 -O2 -Ihost tests/bench/json_bench.c host/jsonstream.c host/jsonstream_scan.c -lyajl
 *
 * The documents are concatenated (newline after each) and repeated to TARGET_BYTES, then fed
 * in pieces of each size to: jsonstream (PH_JSON_ALLOW_MULTIPLE, a no-op callback), yajl
 * (yajl_allow_multiple_values, no-op callbacks, numbers as raw text like ours), and
 * "naive re-parse": jsonstream re-run from scratch over each document's accumulated prefix
 * after every piece, as a client without an incremental parser would do (capped to one copy
 * of the corpus so it finishes in seconds). Each sample repeats a run for SAMPLE_SECONDS; the
 * three are sampled in turn RUNS times and the medians printed as a Markdown table.
 * Depends on jsonstream, libyajl and POSIX (dirent, clock_gettime).
 */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <yajl/yajl_parse.h>

#include "jsonstream.h"

#define TARGET_BYTES (8u << 20)
#define RUNS 5
#define SAMPLE_SECONDS 0.2

typedef struct corpus {
    char *buf;          /* all documents, each followed by '\n', repeated */
    size_t len;
    size_t one_len;     /* bytes of one copy of the corpus */
    size_t *doc_end;    /* end offsets of the documents of one copy */
    size_t ndocs;
} corpus;

/* CPU time of this process: time spent descheduled (other jobs on the machine) is left out. */
static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void die(const char *what, const char *detail)
{
    fprintf(stderr, "json_bench: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
    exit(1);
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Appends the file at path plus '\n' to c->buf. */
static void add_file(corpus *c, const char *path, size_t *cap)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        die("cannot open", path);
    fseek(f, 0, SEEK_END);
    size_t n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    while (c->len + n + 1 > *cap)
        *cap = *cap ? *cap * 2 : 1 << 16;
    if (!(c->buf = realloc(c->buf, *cap)))
        die("out of memory", NULL);
    if (fread(c->buf + c->len, 1, n, f) != n)
        die("cannot read", path);
    fclose(f);
    c->len += n;
    c->buf[c->len++] = '\n';
    c->doc_end = realloc(c->doc_end, (c->ndocs + 1) * sizeof *c->doc_end);
    c->doc_end[c->ndocs++] = c->len;
}

static void load(corpus *c, const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        die("cannot open directory", dir);
    char **names = NULL;
    size_t nn = 0, cap = 0;
    for (struct dirent *e; (e = readdir(d));) {
        size_t l = strlen(e->d_name);
        if (l > 5 && !strcmp(e->d_name + l - 5, ".json")) {
            names = realloc(names, (nn + 1) * sizeof *names);
            names[nn++] = strdup(e->d_name);
        }
    }
    closedir(d);
    if (!nn)
        die("no .json files in", dir);
    qsort(names, nn, sizeof *names, by_name);
    for (size_t i = 0; i < nn; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        add_file(c, path, &cap);
        free(names[i]);
    }
    free(names);
    c->one_len = c->len;
    size_t copies = (TARGET_BYTES + c->one_len - 1) / c->one_len;
    c->buf = realloc(c->buf, copies * c->one_len);
    for (size_t i = 1; i < copies; i++)
        memcpy(c->buf + i * c->one_len, c->buf, c->one_len);
    c->len = copies * c->one_len;
}

/* ---- jsonstream ---- */

static int ph_noop(void *ctx, const ph_json_token *t)
{
    (void)t;
    ++*(size_t *)ctx;
    return 0;
}

static size_t run_ours(const corpus *c, size_t piece)
{
    size_t tokens = 0;
    ph_json_config cfg = {.flags = PH_JSON_ALLOW_MULTIPLE};
    ph_json *j = ph_json_new(&cfg, ph_noop, &tokens);
    for (size_t at = 0; at < c->len; at += piece) {
        size_t n = c->len - at < piece ? c->len - at : piece;
        if (ph_json_feed(j, c->buf + at, n, NULL) != PH_JSON_OK)
            die("jsonstream rejected the corpus", ph_json_error(j, NULL));
    }
    if (ph_json_finish(j) != PH_JSON_OK)
        die("jsonstream rejected the corpus", ph_json_error(j, NULL));
    ph_json_free(j);
    return tokens;
}

/* Naive: after each piece, tokenize the document's whole prefix again until it parses. */
static size_t run_naive(const corpus *c, size_t piece)
{
    size_t tokens = 0, start = 0;
    ph_json *j = ph_json_new(NULL, ph_noop, &tokens);
    for (size_t d = 0; d < c->ndocs; start = c->doc_end[d++]) {
        size_t len = c->doc_end[d] - start, have = 0;
        do {
            have = len - have < piece ? len : have + piece;
            ph_json_reset(j);
            if (ph_json_feed(j, c->buf + start, have, NULL) == PH_JSON_OK
                && ph_json_finish(j) == PH_JSON_OK)
                break;
        } while (have < len);
        if (ph_json_error(j, NULL) && have == len)
            die("naive: document does not parse", ph_json_error(j, NULL));
    }
    ph_json_free(j);
    return tokens;
}

/* ---- yajl ---- */

/* Count like ph_noop, and nothing else. */
static int y_null(void *ctx)
{
    ++*(size_t *)ctx;
    return 1;
}

static int y_bool(void *ctx, int b)
{
    (void)b;
    return y_null(ctx);
}

static int y_num(void *ctx, const char *s, size_t n)
{
    (void)s, (void)n;
    return y_null(ctx);
}

static int y_str(void *ctx, const unsigned char *s, size_t n)
{
    (void)s, (void)n;
    return y_null(ctx);
}

static const yajl_callbacks y_cbs = {
    y_null, y_bool, NULL, NULL, y_num, y_str, y_null, y_str, y_null, y_null, y_null,
};

static size_t run_yajl(const corpus *c, size_t piece)
{
    size_t tokens = 0;
    yajl_handle h = yajl_alloc(&y_cbs, NULL, &tokens);
    yajl_config(h, yajl_allow_multiple_values, 1);
    for (size_t at = 0; at < c->len; at += piece) {
        size_t n = c->len - at < piece ? c->len - at : piece;
        if (yajl_parse(h, (const unsigned char *)c->buf + at, n) != yajl_status_ok)
            die("yajl rejected the corpus", NULL);
    }
    if (yajl_complete_parse(h) != yajl_status_ok)
        die("yajl rejected the corpus", NULL);
    yajl_free(h);
    return tokens;
}

/* ---- measurement ---- */

typedef size_t (*runner)(const corpus *, size_t);

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* One sample: runs fn over the input until at least SAMPLE_SECONDS have passed; MB/s. */
static double sample(runner fn, const corpus *c, size_t piece)
{
    double t0 = now(), t;
    size_t bytes = 0;
    do {
        fn(c, piece ? piece : c->len);
        bytes += c->len;
    } while ((t = now() - t0) < SAMPLE_SECONDS);
    return (double)bytes / 1e6 / t;
}

static double median(double *v)
{
    qsort(v, RUNS, sizeof v[0], cmp_double);
    return v[RUNS / 2];
}

int main(int argc, char **argv)
{
    if (argc != 2)
        die("usage: json_bench DIR", NULL);
    corpus c = {0};
    load(&c, argv[1]);
    corpus one = c;              /* the naive run sees one copy of the corpus */
    one.len = c.one_len;
    size_t ours = run_ours(&c, c.len), theirs = run_yajl(&c, c.len);
    if (ours != theirs)
        fprintf(stderr, "json_bench: token counts differ: jsonstream %zu, yajl %zu\n", ours,
                theirs);
    printf("corpus: %zu documents, %zu bytes, repeated to %zu bytes (%zu tokens); "
           "naive run on %zu bytes; median of %d samples of %.1f s\n\n",
           c.ndocs, c.one_len, c.len, ours, one.len, RUNS, SAMPLE_SECONDS);
    printf("| piece | jsonstream MB/s | yajl MB/s | jsonstream / yajl "
           "| naive re-parse (jsonstream over prefix) MB/s | naive / yajl |\n");
    printf("|---|---:|---:|---:|---:|---:|\n");
    static const size_t pieces[] = {0, 4, 16, 64};
    for (size_t i = 0; i < sizeof pieces / sizeof pieces[0]; i++) {
        size_t p = pieces[i];
        double a[RUNS], y[RUNS], n[RUNS];
        for (int r = 0; r < RUNS; r++) { /* interleaved, so drift hits all three alike */
            a[r] = sample(run_ours, &c, p);
            y[r] = sample(run_yajl, &c, p);
            n[r] = sample(run_naive, &one, p);
        }
        double ma = median(a), my = median(y), mn = median(n);
        char name[16];
        snprintf(name, sizeof name, p ? "%zu" : "whole", p);
        printf("| %s | %.0f | %.0f | %.2fx | %.1f | %.2fx |\n", name, ma, my, ma / my, mn, mn / my);
    }
    free(c.buf);
    free(c.doc_end);
    return 0;
}
