/* latency — per-tier latency windows. See latency.h. */
#include "latency.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAX_WINDOW 10000

typedef struct series {
    struct series *next;
    char *tier;
    double *ring;
    int size, n, pos;
    int fresh;          /* med and p95 are up to date */
    double med, p95;
} series;

struct ph_latency {
    series *list;
};

ph_latency *ph_latency_new(void)
{
    return calloc(1, sizeof(ph_latency));
}

void ph_latency_free(ph_latency *l)
{
    if (!l)
        return;
    for (series *s = l->list, *next; s; s = next) {
        next = s->next;
        free(s->tier);
        free(s->ring);
        free(s);
    }
    free(l);
}

static series *find(const ph_latency *l, const char *tier)
{
    for (series *s = l->list; s; s = s->next)
        if (strcmp(s->tier, tier) == 0)
            return s;
    return NULL;
}

void ph_latency_add(ph_latency *l, const char *tier, double ms, int window)
{
    if (window < 1)
        window = 1;
    if (window > MAX_WINDOW)
        window = MAX_WINDOW;
    series *s = find(l, tier);
    if (!s) {
        s = calloc(1, sizeof *s);
        if (!s || !(s->tier = strdup(tier))) {
            free(s);
            return;
        }
        s->next = l->list;
        l->list = s;
    }
    if (s->size != window) {       /* a new policy window: start over */
        double *r = realloc(s->ring, (size_t)window * sizeof *r);
        if (!r)
            return;
        s->ring = r;
        s->size = window;
        s->n = s->pos = 0;
    }
    s->ring[s->pos] = ms;
    s->fresh = 0;
    s->pos = (s->pos + 1) % s->size;
    if (s->n < s->size)
        s->n++;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Sorts a copy of the window once per change; gets in between are lookups. */
static void refresh(series *s)
{
    double *v = malloc((size_t)s->n * sizeof *v);
    if (!v)
        return;
    memcpy(v, s->ring, (size_t)s->n * sizeof *v);
    qsort(v, (size_t)s->n, sizeof *v, cmp);
    s->med = s->n % 2 ? v[s->n / 2] : (v[s->n / 2 - 1] + v[s->n / 2]) / 2;
    s->p95 = v[(int)ceil(0.95 * s->n) - 1];
    s->fresh = 1;
    free(v);
}

void ph_latency_get(const ph_latency *l, const char *tier, double *median, double *p95, int *n)
{
    series *s = find(l, tier);
    *median = *p95 = NAN;
    *n = s ? s->n : 0;
    if (!s || s->n == 0)
        return;
    if (!s->fresh)
        refresh(s);
    if (s->fresh)
        *median = s->med, *p95 = s->p95;
}
