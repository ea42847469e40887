/* bench_plan — host work per streamed plan against a local model server, side by side with a
 * bare libcurl client that only discards the same stream (DESIGN.md: host CPU per plan
 * ≤ 1.2× the bare client, measured in the same run).
 *
 *   bench_plan URL API TEMPLATE SNAPSHOT.json BODY.json N
 *
 * BODY.json is the request body `planhost prompt --body` prints for the same snapshot and
 * template, so both clients ask the server the same thing. Per request it measures this
 * process's CPU time (CLOCK_PROCESS_CPUTIME_ID) and wall time; prints medians and p99 as a
 * Markdown table. The server is whatever URL says — run against `planhost sim --profile
 * instant` (SIMULATED) so server time does not hide client work. The plan cache is off for
 * that comparison; a second host with the cache on then measures a cache hit end to end
 * (submit the snapshot JSON → validated plan event drained), the DESIGN budget of ≤ 10 µs. */
#define _POSIX_C_SOURCE 200809L
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "planhost.h"
#include "tree.h"
#include "wire.h"

static double clock_ms(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double pct(double *v, int n, double p)
{
    qsort(v, (size_t)n, sizeof *v, cmp);
    int i = (int)(p * (n - 1) + 0.5);
    return v[i];
}

static size_t discard(char *p, size_t s, size_t n, void *ud)
{
    (void)p; (void)ud;
    return s * n;
}

static void bare_curl(const char *url, const char *body, int n, double *cpu, double *wall)
{
    CURL *c = curl_easy_init();
    struct curl_slist *hd = curl_slist_append(NULL, "Content-Type: application/json");
    hd = curl_slist_append(hd, "Expect:");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hd);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
    for (int i = 0; i < n; i++) {
        double c0 = clock_ms(CLOCK_PROCESS_CPUTIME_ID), w0 = clock_ms(CLOCK_MONOTONIC);
        curl_easy_perform(c);
        cpu[i] = clock_ms(CLOCK_PROCESS_CPUTIME_ID) - c0;
        wall[i] = clock_ms(CLOCK_MONOTONIC) - w0;
    }
    curl_slist_free_all(hd);
    curl_easy_cleanup(c);
}

/* Returns the number of plans that came from the model (the rest fell back). */
static int host_plans(ph_host *h, const char *tmpl, const char *snap, size_t len, int n, double *cpu, double *wall)
{
    int llm = 0;
    for (int i = 0; i < n; i++) {
        double c0 = clock_ms(CLOCK_PROCESS_CPUTIME_ID), w0 = clock_ms(CLOCK_MONOTONIC);
        ph_request_opts o = {.snapshot = snap, .len = len, .template = tmpl, .budget_ms = 5000};
        ph_error err;
        unsigned long id = ph_host_submit(h, &o, &err);
        for (int done = !id; !done;) {
            ph_host_poll(h, 100);
            ph_event ev;
            while (ph_host_next_event(h, &ev))
                if (ev.kind == PH_EVENT_PLAN && ev.request == id) {
                    done = 1;
                    llm += strstr(ev.json, "\"source\":\"llm\"") != NULL;
                }
        }
        cpu[i] = clock_ms(CLOCK_PROCESS_CPUTIME_ID) - c0;
        wall[i] = clock_ms(CLOCK_MONOTONIC) - w0;
    }
    return llm;
}

/* CPU µs per cache hit: submit (hash, lookup, re-check of every step against the snapshot,
 * step and plan events queued) and drain the events. The first request fills the cache. */
static double cache_hits(ph_host *h, const char *snap, size_t len, int n, int *hits)
{
    double *cpu = calloc((size_t)n, sizeof *cpu);
    *hits = 0;
    host_plans(h, NULL, snap, len, 1, cpu, cpu);
    for (int i = 0; i < n; i++) {
        double c0 = clock_ms(CLOCK_PROCESS_CPUTIME_ID);
        ph_request_opts o = {.snapshot = snap, .len = len, .budget_ms = 5000};
        ph_error err;
        ph_host_submit(h, &o, &err);
        ph_host_poll(h, 0);
        ph_event ev;
        while (ph_host_next_event(h, &ev))
            *hits += ev.kind == PH_EVENT_PLAN && strstr(ev.json, "\"cache\":\"hit\"") != NULL;
        cpu[i] = clock_ms(CLOCK_PROCESS_CPUTIME_ID) - c0;
    }
    double med = pct(cpu, n, 0.5);
    free(cpu);
    return med * 1e3;
}

int main(int argc, char **argv)
{
    if (argc != 7) {
        fprintf(stderr, "usage: bench_plan URL API TEMPLATE SNAPSHOT.json BODY.json N\n");
        return 2;
    }
    const char *url = argv[1], *api = argv[2], *tmpl = argv[3];
    int n = atoi(argv[6]);
    ph_error err;
    size_t slen, blen;
    char *snap = ph_read_file(argv[4], 1u << 22, &slen, &err);
    char *body = ph_read_file(argv[5], 1u << 22, &blen, &err);
    if (!snap || !body || n < 1)
        return fprintf(stderr, "bench_plan: %s\n", err.message), 2;
    ph_host_config cfg = {.root = PH_SOURCE_ROOT, .url = url, .api = api, .cache_off = 1};
    ph_host *h = ph_host_open(&cfg, &err);
    if (!h)
        return fprintf(stderr, "bench_plan: %s\n", err.message), 1;
    double *hc = calloc((size_t)n, sizeof *hc), *hw = calloc((size_t)n, sizeof *hw);
    double *bc = calloc((size_t)n, sizeof *bc), *bw = calloc((size_t)n, sizeof *bw);
    char full[1024];
    snprintf(full, sizeof full, "%s%s", url, ph_api_path((ph_api)ph_api_parse(api)));
    bare_curl(full, body, n / 10 + 1, bc, bw);          /* warm both paths up */
    host_plans(h, tmpl, snap, slen, n / 10 + 1, hc, hw);
    bare_curl(full, body, n, bc, bw);
    int llm = host_plans(h, tmpl, snap, slen, n, hc, hw);
    double hcm = pct(hc, n, 0.5), bcm = pct(bc, n, 0.5);
    printf("| client (%s, %s, %d requests) | CPU median µs | CPU p99 µs | wall median µs | wall p99 µs |\n", api, tmpl, n);
    printf("|---|---:|---:|---:|---:|\n");
    printf("| planhost (prompt, request, stream, parse; %d/%d plans from the model) | %.0f | %.0f | %.0f | %.0f |\n",
           llm, n, hcm * 1e3, pct(hc, n, 0.99) * 1e3, pct(hw, n, 0.5) * 1e3, pct(hw, n, 0.99) * 1e3);
    printf("| bare libcurl, discards the stream | %.0f | %.0f | %.0f | %.0f |\n", bcm * 1e3,
           pct(bc, n, 0.99) * 1e3, pct(bw, n, 0.5) * 1e3, pct(bw, n, 0.99) * 1e3);
    printf("\nCPU ratio planhost / bare libcurl (medians): %.2fx (budget: <= 1.2x)\n", hcm / bcm);
    ph_host_close(h);
    cfg.cache_off = 0;
    h = ph_host_open(&cfg, &err);
    int hits = 0;
    double hit_us = h ? cache_hits(h, snap, slen, n * 10, &hits) : 0;
    printf("\nCache hit end to end (submit snapshot JSON -> validated plan event; hash, lookup, every step\n"
           "re-checked, events queued and drained): median %.1f µs CPU over %d hits (budget: <= 10 µs);\n"
           "%.0fx less CPU than the streamed plan above.\n", hit_us, hits, hcm * 1e3 / hit_us);
    ph_host_close(h);
    free(hc); free(hw); free(bc); free(bw); free(snap); free(body);
    return 0;
}
