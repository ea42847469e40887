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
struct ph_cache;
struct ph_metrics;
typedef struct ph_batcher ph_batcher;

/* The batch queue (request_batch.c): the host owns one and ticks it from every poll; it
 * returns when it next needs a tick (monotonic ms; INFINITY: nothing queued). Free it after
 * every request is freed. */
ph_batcher *ph_batcher_new(void);
void ph_batcher_free(ph_batcher *q);
double ph_batcher_tick(ph_batcher *q, double now_ms);

/* A plan one request hands to the requests that waited for the same key: valid during the
 * call only. */
typedef struct ph_req_shared {
    const char *plan;           /* {"plan_id":..,"steps":[...]} */
    size_t len;
    const char *tier;           /* the tier that made it */
    const char *source;         /* "llm" or "heuristic" */
    unsigned long leader;       /* the request that asked */
} ph_req_shared;

/* A model server the host knows; owned by the host, shared by its requests. */
typedef struct ph_endpoint {
    char *url;                  /* base URL: "http://127.0.0.1:11434" */
    int api;                    /* ph_api */
    char *model;
    char *group;
    ph_circuit circuit;         /* kept across requests */
    int outstanding;            /* transfers running now */
    int max_in_flight;          /* 0: no cap */
    char *headers[PH_MAX_HEADERS + 1];  /* sent with every request, NULL-terminated */
    unsigned long freed;        /* transfers ended so far (slot waiters retry when it moves) */
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
    struct ph_cache *cache;     /* NULL: no plan cache */
    struct ph_metrics *metrics; /* NULL: nothing counted */
    ph_batcher *batcher;        /* NULL: batch templates send one request each */
    /* A flight of `key` ended: the host hands `shared` (NULL: nothing to share) to every
     * request waiting on it (ph_req_take_shared) and ends the flight in the cache. */
    void (*flight_done)(void *host, uint64_t key, const ph_req_shared *shared);
    void (*queue)(void *host, ph_event_kind kind, unsigned long request, void *user, ph_buf *json);
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
int ph_req_ended(const ph_req *r);      /* its plan event is queued (or it was cancelled) */

/* A request may wait without a transfer: for an identical request's answer (coalescing) or
 * for a free slot on its endpoint group (max_in_flight). */
/* Coalescing (request_cache.c). A waiting request sends nothing until its leader's flight
 * ends: take_shared gives it the leader's plan (validated against its own snapshot; NULL or
 * a plan that fails there: it runs its own chain). waiting: it waits now. wake_ms: when it
 * will give up waiting (monotonic ms; INFINITY when not waiting); tick: call at or after
 * that time, and it goes to its first tier that needs no server; call it too when a slot
 * may have freed (slots_freed nonzero), and a slot waiter tries its tier again. */
void ph_req_take_shared(ph_req *r, const ph_req_shared *s);
int ph_req_waiting(const ph_req *r);
double ph_req_wake_ms(const ph_req *r);
void ph_req_tick(ph_req *r, double now_ms, int slots_freed);

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

/* Wall-clock milliseconds (CLOCK_REALTIME): the plan cache's time, so a time to live carries
 * over a warm start. */
uint64_t ph_req_wall_ms(void);

/* Frees a finished or cancelled request and drops its generation reference. */
void ph_req_free(ph_req *r);

#endif
