/* circuit — circuit breaker. See circuit.h. */
#include "circuit.h"

#include <math.h>
#include <string.h>

void ph_circuit_init(ph_circuit *c)
{
    memset(c, 0, sizeof *c);
    c->state = PH_CIRCUIT_CLOSED;
}

static void open_now(ph_circuit *c, double now_ms)
{
    c->state = PH_CIRCUIT_OPEN;
    c->opened_ms = now_ms;
    c->probing = 0;
    c->successes = 0;
}

static void forget(ph_circuit *c)
{
    c->n = c->pos = c->failed = 0;
}

int ph_circuit_allow(ph_circuit *c, const ph_circuit_policy *p, double now_ms)
{
    if (c->state == PH_CIRCUIT_OPEN && !p->health_check && now_ms - c->opened_ms >= (double)p->cooldown_ms)
        c->state = PH_CIRCUIT_HALF_OPEN;
    if (c->state == PH_CIRCUIT_CLOSED)
        return 1;
    if (c->state == PH_CIRCUIT_HALF_OPEN && !c->probing)
        return c->probing = 1;
    return 0;
}

/* Closed state: slide the window and open when the failed share is too high. */
static void record_closed(ph_circuit *c, const ph_circuit_policy *p, int ok, double now_ms)
{
    int window = p->window < PH_CIRCUIT_MAX_WINDOW ? p->window : PH_CIRCUIT_MAX_WINDOW;
    if (c->n == window) {               /* the oldest outcome leaves */
        c->failed -= c->outcomes[c->pos];
        c->n--;
    }
    c->outcomes[c->pos] = (unsigned char)!ok;
    c->failed += !ok;
    c->n++;
    c->pos = (c->pos + 1) % window;
    if (c->n >= p->min_requests && (double)c->failed >= p->open_ratio * c->n) {
        forget(c);
        open_now(c, now_ms);
    }
}

void ph_circuit_record(ph_circuit *c, const ph_circuit_policy *p, int ok, double now_ms)
{
    if (c->state == PH_CIRCUIT_CLOSED) {
        record_closed(c, p, ok, now_ms);
        return;
    }
    c->probing = 0;
    if (!ok) {
        open_now(c, now_ms);
    } else if (++c->successes >= p->close_after) {
        c->state = PH_CIRCUIT_CLOSED;
        c->successes = 0;
        forget(c);
    }
}

int ph_circuit_check_due(ph_circuit *c, const ph_circuit_policy *p, double now_ms)
{
    if (!p->health_check || c->state != PH_CIRCUIT_OPEN || c->checking ||
        now_ms - c->opened_ms < (double)p->cooldown_ms)
        return 0;
    return c->checking = 1;
}

void ph_circuit_check_done(ph_circuit *c, int ok, double now_ms)
{
    c->checking = 0;
    if (c->state != PH_CIRCUIT_OPEN)
        return;
    if (ok)
        c->state = PH_CIRCUIT_HALF_OPEN, c->probing = 0, c->successes = 0;
    else
        c->opened_ms = now_ms;     /* still down: another cool-down */
}

double ph_circuit_check_at(const ph_circuit *c, const ph_circuit_policy *p)
{
    if (!p->health_check || c->state != PH_CIRCUIT_OPEN || c->checking)
        return INFINITY;
    return c->opened_ms + (double)p->cooldown_ms;
}

const char *ph_circuit_name(ph_circuit_state s)
{
    return s == PH_CIRCUIT_OPEN ? "open" : s == PH_CIRCUIT_HALF_OPEN ? "half_open" : "closed";
}
