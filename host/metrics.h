/* metrics — the host's counters and latency histograms, written as Prometheus text.
 *
 * The host tells this unit what happened (a plan delivered, a fallback, a reload, a
 * submission); the unit keeps counters and histograms per label set, and renders them with
 * the gauges the host reads at that moment (cache sizes, pending requests, circuit states)
 * in the Prometheus text exposition format 0.0.4: "# HELP" and "# TYPE" lines once per
 * family, label values escaped (\\, \", \n), histograms as cumulative _bucket{le=..} lines
 * ending in le="+Inf", then _sum and _count. Families and their series are written in a
 * stable order (family order fixed; series in the order first seen), so two renders with no
 * change in between are byte-identical.
 *
 * Families (names and units are part of the contract; tests and dashboards read them):
 *   planhost_requests_submitted_total                       counter
 *   planhost_plans_total{tier,source,cache[,arm]}           counter  (one per plan event)
 *   planhost_fallbacks_total{from,reason}                   counter
 *   planhost_first_step_seconds{tier,source}                histogram (plans with a step)
 *   planhost_plan_seconds{tier,source}                      histogram (submission to plan;
 *                                                           by source so cache hits do not
 *                                                           hide the model's latency)
 *   planhost_prompt_chars_total{tier}                       counter  (LLM plans only)
 *   planhost_reloads_total{result="ok"|"failed"}            counter
 *   planhost_provisional_plans_total{result="ok"|"failed"}  counter
 *   planhost_script_generation                              gauge
 *   planhost_requests_pending                               gauge
 *   planhost_cache_{hits,misses,puts,evictions,expirations,coalesced,stale}_total  counters
 *   planhost_cache_entries, planhost_cache_bytes, planhost_cache_hit_ratio          gauges
 *   planhost_circuit_state{endpoint,state}                  gauge (1 for the current state,
 *                                                           0 for the other two)
 *   planhost_metrics_series_dropped_total                   counter (see the cap below)
 * Histogram buckets (seconds): 0.005 0.01 0.025 0.05 0.1 0.25 0.5 1 2.5 5 10 +Inf.
 *
 * Bounded: at most PH_METRICS_MAX_SERIES label sets in all; an observation that would need
 * a new series past the cap is counted in planhost_metrics_series_dropped_total instead.
 * Label values longer than PH_METRICS_MAX_LABEL bytes are cut at a UTF-8 boundary.
 *
 * Not thread-safe (one per host, used by the host's thread). Depends on buf and cache.h (for
 * the stats struct) only; no Lua. */
#ifndef PH_METRICS_H
#define PH_METRICS_H

#include <stddef.h>

#include "buf.h"
#include "cache.h"

#define PH_METRICS_MAX_SERIES 1024
#define PH_METRICS_MAX_LABEL 128

typedef struct ph_metrics ph_metrics;

/* A fresh set of zero counters. NULL when out of memory. Free with ph_metrics_free. */
ph_metrics *ph_metrics_new(void);
void ph_metrics_free(ph_metrics *m);  /* NULL is fine */

/* One submitted request. */
void ph_metrics_submitted(ph_metrics *m);

/* One plan event. tier, source ("llm", "cache", "heuristic", "emergency") and cache
 * ("miss", "hit", "coalesced", "off") are copied when a new series is made; arm may be NULL
 * (no arm label). first_step_ms is NaN when the plan had no step event (then the first-step
 * histogram is not touched); total_ms is submission to plan. prompt_chars is added to the
 * tier's prompt counter (pass 0 for plans that sent no prompt). */
void ph_metrics_plan(ph_metrics *m, const char *tier, const char *source, const char *cache,
                     const char *arm, double first_step_ms, double total_ms, size_t prompt_chars);

/* One fallback event. */
void ph_metrics_fallback(ph_metrics *m, const char *from, const char *reason);

/* One reload: ok nonzero when the new generation was swapped in. */
void ph_metrics_reload(ph_metrics *m, int ok);

/* One provisional event: ok nonzero when it held a plan. */
void ph_metrics_provisional(ph_metrics *m, int ok);

/* What the host reads at render time. Any pointer may be NULL (cache NULL: the cache
 * families are left out; nendpoints 0: no circuit lines). */
typedef struct ph_metrics_gauges {
    const ph_cache_stats *cache;
    int pending;
    unsigned generation;
    int nendpoints;
    const char *const *endpoints;       /* endpoint URLs, nendpoints of them */
    const char *const *circuit_states;  /* "closed", "open" or "half_open" per endpoint */
} ph_metrics_gauges;

/* Appends the whole exposition to out. Returns 0, or -1 when out reached its cap (out then
 * holds a truncated text; its failed flag is set). */
int ph_metrics_render(const ph_metrics *m, const ph_metrics_gauges *g, ph_buf *out);

#endif
