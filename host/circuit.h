/* circuit — a circuit breaker per model endpoint, kept across requests.
 *
 * Closed: requests pass; outcomes go into a window. When at least min_requests of the last
 * `window` outcomes are in and the failed share reaches open_ratio, it opens. Open: requests
 * are refused (the tier is skipped with reason circuit_open) until cooldown_ms have passed;
 * then it is half open and lets exactly one probe through at a time. Half open: close_after
 * successes in a row close it; a failure opens it again. With the policy's health_check the
 * way out of open is a health check instead: once the cool-down has passed the host asks
 * ph_circuit_check_due, sends a GET to the server's health path, and ph_circuit_check_done
 * makes it half open (2xx) or starts another cool-down, so no real request is spent on a
 * server that is still down. No Lua; depends on script.h for the policy struct only. */
#ifndef PH_CIRCUIT_H
#define PH_CIRCUIT_H

#include "script.h"

typedef enum ph_circuit_state { PH_CIRCUIT_CLOSED, PH_CIRCUIT_OPEN, PH_CIRCUIT_HALF_OPEN } ph_circuit_state;

#define PH_CIRCUIT_MAX_WINDOW 1000

typedef struct ph_circuit {
    ph_circuit_state state;
    unsigned char outcomes[PH_CIRCUIT_MAX_WINDOW];  /* 1 = failed, ring */
    int n, pos, failed;
    double opened_ms;
    int probing;            /* a half-open probe is in flight */
    int checking;           /* a health check is in flight */
    int successes;          /* in a row, while half open */
} ph_circuit;

void ph_circuit_init(ph_circuit *c);

/* May a request go to this endpoint now? In the half-open state a yes takes the one probe
 * slot, which the next ph_circuit_record gives back. */
int ph_circuit_allow(ph_circuit *c, const ph_circuit_policy *p, double now_ms);

/* Records the outcome of a request that ph_circuit_allow let through. */
void ph_circuit_record(ph_circuit *c, const ph_circuit_policy *p, int ok, double now_ms);

/* With health checks on: is one due now (open, cooled down, none in flight)? A yes marks it
 * in flight until ph_circuit_check_done. */
int ph_circuit_check_due(ph_circuit *c, const ph_circuit_policy *p, double now_ms);
void ph_circuit_check_done(ph_circuit *c, int ok, double now_ms);
/* When the next health check falls due (ms, the now_ms clock); INFINITY when none will. */
double ph_circuit_check_at(const ph_circuit *c, const ph_circuit_policy *p);

const char *ph_circuit_name(ph_circuit_state s);

#endif
