/* planparse_bench — the plan parser (steps checked against the registry, canonical output)
 * on model text, fed whole and in 4, 16 and 64-byte pieces, beside the bare tokenizer on the
 * same bytes. MB/s of model text, median of 5 samples of process CPU time.
 *
 *   planparse_bench DIR   (DIR holds *.json plan documents: tests/fixtures/plans) */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "host.h"
#include "jsonstream.h"
#include "planparse.h"
#include "tree.h"

#define SAMPLE_S 0.2

typedef struct doc { char *text; size_t len; } doc;

static double cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int count_step(void *ud, const ph_pp_step *s) { (void)s; (*(long *)ud)++; return 0; }
static int count_plan(void *ud, const ph_pp_plan *p) { (void)p; (void)ud; return 0; }
static int no_token(void *ud, const ph_json_token *t) { (void)ud; (void)t; return 0; }

static size_t parse_all(const ph_registry *r, doc *docs, int n, size_t piece, long *steps)
{
    ph_pp_callbacks cb = {count_step, count_plan};
    size_t bytes = 0;
    for (int i = 0; i < n; i++) {
        ph_planparse *p = ph_planparse_new(r, NULL, 0, 0, &cb, steps);
        size_t step = piece ? piece : docs[i].len;
        for (size_t off = 0; off < docs[i].len; off += step)
            ph_planparse_feed(p, docs[i].text + off, docs[i].len - off < step ? docs[i].len - off : step);
        ph_planparse_finish(p);
        ph_planparse_free(p);
        bytes += docs[i].len;
    }
    return bytes;
}

static size_t tokenize_all(doc *docs, int n, size_t piece)
{
    ph_json_config cfg = {PH_JSON_ALLOW_TRAILING_GARBAGE, 0, 0};
    ph_json *j = ph_json_new(&cfg, no_token, NULL);
    size_t bytes = 0;
    for (int i = 0; i < n; i++) {
        ph_json_reset(j);
        size_t step = piece ? piece : docs[i].len;
        for (size_t off = 0; off < docs[i].len; off += step)
            ph_json_feed(j, docs[i].text + off, docs[i].len - off < step ? docs[i].len - off : step, NULL);
        ph_json_finish(j);
        bytes += docs[i].len;
    }
    ph_json_free(j);
    return bytes;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double mbps(const ph_registry *r, doc *docs, int n, size_t piece, int tokenizer_only)
{
    double s[5];
    long steps = 0;
    for (int k = 0; k < 5; k++) {
        size_t bytes = 0;
        double t0 = cpu_s();
        do
            bytes += tokenizer_only ? tokenize_all(docs, n, piece) : parse_all(r, docs, n, piece, &steps);
        while (cpu_s() - t0 < SAMPLE_S);
        s[k] = (double)bytes / (cpu_s() - t0) / 1e6;
    }
    qsort(s, 5, sizeof *s, cmp);
    return s[2];
}

static int load(const char *dir, doc *docs, int max)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    int n = 0;
    ph_error err;
    while (d && n < max && (de = readdir(d)) != NULL) {
        if (!strstr(de->d_name, ".json"))
            continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        if ((docs[n].text = ph_read_file(path, 1u << 20, &docs[n].len, &err)) != NULL)
            n++;
    }
    if (d)
        closedir(d);
    return n;
}

int main(int argc, char **argv)
{
    doc docs[256];
    int n = argc == 2 ? load(argv[1], docs, 256) : 0;
    if (n == 0)
        return fprintf(stderr, "usage: planparse_bench DIR (with *.json plans)\n"), 2;
    ph_host_config cfg = {.root = PH_SOURCE_ROOT};
    ph_error err;
    ph_host *h = ph_host_open(&cfg, &err);
    if (!h)
        return fprintf(stderr, "planparse_bench: %s\n", err.message), 1;
    const ph_registry *r = ph_gen_registry(ph_host_gen(h));
    printf("| piece | plan parser MB/s (steps validated, canonical output) | tokenizer alone MB/s | parser / tokenizer |\n");
    printf("|---|---:|---:|---:|\n");
    static const size_t pieces[] = {0, 4, 16, 64};
    for (int i = 0; i < 4; i++) {
        double p = mbps(r, docs, n, pieces[i], 0), t = mbps(r, docs, n, pieces[i], 1);
        char label[16];
        snprintf(label, sizeof label, "%zu", pieces[i]);
        printf("| %s | %.0f | %.0f | %.2f |\n", pieces[i] ? label : "whole", p, t, p / t);
    }
    ph_host_close(h);
    for (int i = 0; i < n; i++)
        free(docs[i].text);
    return 0;
}
