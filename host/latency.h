/* latency — recent latencies per tier, for the deadline check and the policy's ctx.
 *
 * A ring of the last `window` total latencies of successful requests per tier name; median
 * and p95 by sorting a copy (windows are small). Tier names outlive generations, so a
 * reload keeps what was learned. No Lua, no dependencies. */
#ifndef PH_LATENCY_H
#define PH_LATENCY_H

typedef struct ph_latency ph_latency;

ph_latency *ph_latency_new(void);
void ph_latency_free(ph_latency *l);

/* Records one latency (ms) for `tier`, keeping the last `window` (1..10000). */
void ph_latency_add(ph_latency *l, const char *tier, double ms, int window);

/* Median and p95 (NAN when no sample) and the sample count for `tier`. */
void ph_latency_get(const ph_latency *l, const char *tier, double *median, double *p95, int *n);

#endif
