/* request — one planning request's life: prompt, HTTP stream, decoding, parsing, events.
 *
 * A request renders its template against its generation (held until it ends, so a reload
 * mid-stream does not change it), posts the body, feeds the streamed body through framing
 * and planparse, queues a step event as each step closes and stops the transfer once the
 * plan has closed. It always ends in exactly one plan event: from the model (complete, or
 * partial when the stream ended early with complete steps), or — after a fallback event
 * naming the reason — from the emergency tier (Scan, then Wait), which cannot fail.
 * Depends on script, wire, http, framing, planparse, jsonw; host.c owns the queue. */
#ifndef PH_REQUEST_H
#define PH_REQUEST_H

#include "buf.h"
#include "circuit.h"
#include "http.h"
#include "latency.h"
#include "planhost.h"
#include "script.h"

typedef struct ph_req ph_req;

/* A model server the host knows; owned by the host, shared by its requests. */
typedef struct ph_endpoint {
    char *url;                  /* base URL: "http://127.0.0.1:11434" */
    int api;                    /* ph_api */
    char *model;
    char *group;
    ph_circuit circuit;         /* kept across requests */
    int outstanding;            /* transfers running now */
} ph_endpoint;

/* What a request needs from its host: where to send, how to queue events. */
typedef struct ph_req_env {
    ph_http *http;
    ph_endpoint *endpoints;
    int nendpoints;
    const char *keep_alive;     /* NULL: leave it to the server */
    long connect_timeout_ms;
    long first_byte_timeout_ms;
    size_t max_response;
    ph_latency *latency;        /* recent latency per tier */
    void (*queue)(void *host, ph_event_kind kind, unsigned long request, ph_buf *json);
    void (*finished)(void *host, ph_req *r);   /* the plan event is queued: free it */
    void *host;
} ph_req_env;

/* Starts request `id` on generation `g` (retained). Returns the request, or NULL with `err`
 * filled when it cannot even start (bad snapshot JSON, unknown template): then no event is
 * queued and the caller reports the error. A request whose transfer cannot start still
 * returns and ends at once through the emergency tier. */
ph_req *ph_req_start(const ph_req_env *env, ph_gen *g, unsigned long id, const ph_request_opts *o,
                     ph_error *err);

/* Cancels: the transfer stops and the request ends (plan event from the emergency tier with
 * reason "cancelled" is NOT queued; a cancelled request queues nothing more). */
void ph_req_cancel(ph_req *r);

unsigned long ph_req_id(const ph_req *r);

/* The checks every step gets, whichever tier wrote it: the validator (registry, tools
 * `tools[0..n)` or all when NULL, the snapshot `view`, the policy's limits), then the
 * policy's validate(step, snapshot) hook. Returns 1 (keep), 0 (drop: `reason` says why) or
 * -1 when the hook itself failed (`reason` says so, `err` has the script error). */
struct ph_snapview;
int ph_check_step(ph_gen *g, const int *tools, int ntools, const struct ph_snapview *view,
                  const char *snapshot, size_t snapshot_len, const char *step, size_t len,
                  char *reason, size_t reason_size, ph_error *err);

/* Appends a plan's event fields — ,"partial":..,"plan":{"plan_id":..,"steps":KEPT]},
 * "dropped":[...] — from the parser's plan, the kept steps ("[a,b" without the closing
 * bracket, or empty) and the validation drops (",{...},{...}" pieces, or empty). */
struct ph_pp_plan;
void ph_plan_fields(ph_buf *b, const struct ph_pp_plan *p, const ph_buf *kept, const ph_buf *drops);

/* Frees a finished or cancelled request and drops its generation reference. */
void ph_req_free(ph_req *r);

#endif
