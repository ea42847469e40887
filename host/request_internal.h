/* request_internal — what request.c (the tier chain) and request_llm.c (one LLM attempt)
 * share. Nothing else includes it. */
#ifndef PH_REQUEST_INTERNAL_H
#define PH_REQUEST_INTERNAL_H

#include "framing.h"
#include "planparse.h"
#include "record.h"
#include "request.h"
#include "snapview.h"

#define PH_MAX_CHAIN 16
#define PH_MAX_ATTEMPTS 12

/* One try of one tier. Reset between tiers. */
typedef struct attempt {
    const ph_tier *tier;
    ph_endpoint *ep;           /* where the LLM attempt went */
    const ph_template *tmpl;
    ph_framing *fr;
    ph_planparse *pp;
    unsigned long xfer;
    double start_ms, first_step_ms, closed_ms;
    size_t drained, prompt_chars, answer_chars;
    ph_frame_stats stats;
    int have_stats;
    int plan_seen, partial, nsteps;
    ph_buf plan;               /* the plan event's plan/dropped fields */
    ph_buf kept;               /* steps that passed validation: "[{...},{...}" */
    ph_buf drops;              /* validation drops: ",{"index":..,"reason":..}" pieces */
    char reason[32];           /* why it failed (first cause) */
    char message[512];
    char break_reason[32];     /* a stream that broke after complete steps */
    char plan_id[128];         /* the delivered plan's id */
    ph_record_writer *rec;
    int abandoned;             /* being cancelled: its done callback must do nothing */
} attempt;

struct ph_req {
    ph_req_env env;
    ph_gen *gen;
    unsigned long id;
    char agent[128];
    double start_ms;
    long budget_ms;
    char *snapshot, *game, *record_path;
    void *user;                /* the caller's, handed back in events */
    const char *arm;           /* the A/B arm (policies/ab.lua, owned by gen), or NULL */
    ph_snapview *view;         /* the snapshot compiled for validation */
    size_t snapshot_len;
    char *headers[PH_MAX_HEADERS + 1];
    int chain[PH_MAX_CHAIN + 1], nchain, ci;
    ph_tier adhoc;             /* --template outside the policy's tiers */
    int attempts, retries;
    unsigned tried;            /* endpoints this tier has tried (bit per endpoint) */
    unsigned skip;             /* endpoints refused by their circuit during one pick */
    attempt a;
    int ended, cancelled;
    /* the plan cache (request_cache.c) */
    const char *cache_state;   /* the plan event's "cache": off, miss, stale, hit, coalesced */
    uint64_t snap_hash;        /* the snapshot under the generation's hash rules */
    uint64_t key;              /* the lookup (and coalescing) key; 0: cache off */
    int leads;                 /* leads the flight of `key`: must release it when it ends */
    int waiting;               /* waits for another request's flight of `key` */
    double wait_until_ms;      /* ... until then (monotonic ms), then gives up */
    int slot_wait;             /* waits for a free slot (max_in_flight) on its tier's group */
    /* batching (request_batch.c) */
    int queued;                /* in the batcher's queue */
    double queued_ms;
    struct ph_batch *batch;    /* the batch in flight it belongs to */
    int batch_size;            /* members of the batch it was sent in (0: alone) */
};

double ph_req_now(void);
long ph_req_left(const ph_req *r);
void ph_req_fail(ph_req *r, const char *reason, const char *message);

/* request_llm.c: the request body for `n` snapshots under tier/template at endpoint `ep`
 * (appended to body; the prompt's characters in *prompt_chars). 0, or -1 with err. */
int ph_req_body(ph_gen *g, const ph_tier *tier, const ph_template *t, const ph_endpoint *ep,
                const char *keep_alive, const char *const *snaps, const size_t *lens, int n, ph_buf *body,
                size_t *prompt_chars, ph_error *err);
/* request_llm.c: the failure reason of a finished transfer, if it failed. */
void ph_req_classify_http(ph_req *r, const ph_http_result *res);

/* request_llm.c: starts the current tier's LLM attempt; 0 when the transfer runs. */
int ph_req_llm_start(ph_req *r, ph_error *err);
void ph_req_attempt_reset(ph_req *r);

/* request.c: the attempt finished (callbacks from request_llm.c). */
void ph_req_llm_done(ph_req *r);

/* request.c: the plan event for the current attempt (its fields are in a->plan), then the
 * cache store, the flight release and the host's finished callback. */
void ph_req_end_plan(ph_req *r, const char *source);
/* request.c: runs the chain from its first tier. */
void ph_req_run_chain(ph_req *r);
/* request.c: the chain after a failed tier (r->a.reason says why). */
void ph_req_next_tier(ph_req *r);
/* request.c: may r's current LLM tier run now? 1 (r->a.ep set), 0 (reason filled), -1 (every
 * endpoint is full). */
int ph_req_llm_allowed(ph_req *r);

/* request_batch.c: joins the batch queue (0), or -1 (no batcher, out of memory); leaves the
 * queue or the batch in flight (cancel, free, budget end). */
int ph_req_batch_join(ph_req *r);
void ph_req_batch_leave(ph_req *r);
/* request_batch.c: r's budget ended while its batch streams: it leaves, delivering its
 * complete steps as a partial plan (the tier's partial rules decide), else timeout. */
void ph_req_batch_expire(ph_req *r);

/* request.c: a slot waiter tries its tier again (or, past its wait, the next tier). */
void ph_req_retry_slot(ph_req *r, double now_ms);
/* request.c: a waiter out of time: fallback to its chain's first tier that needs no server. */
void ph_req_give_up_waiting(ph_req *r);

/* request_cache.c. start: looks the key up (a validated hit ends the request: returns 1) and
 * leads or joins the key's flight (joining: returns 1, the request waits); 0: run the
 * chain. lead_or_wait: only the flight part. store: puts the delivered plan in the cache when
 * the policy keeps plans of its source. release: a leader hands its plan to its waiters. */
int ph_req_cache_start(ph_req *r);
int ph_req_cache_lead_or_wait(ph_req *r);
void ph_req_cache_store(ph_req *r, const char *source);
void ph_req_cache_release(ph_req *r, const char *source);

/* Events, request.c: a step event; any event is a head ({"event":KIND,"agent":..,"request":..),
 * the caller's fields, then queue (which closes the object and takes the buffer). */
void ph_req_queue_step(ph_req *r, const char *tier, int index, const char *json, size_t len);
void ph_req_event_head(ph_req *r, ph_buf *b, const char *kind);
void ph_req_queue_event(ph_req *r, ph_event_kind kind, ph_buf *b);

/* request.c: what a policy function's ctx holds, filled from r and the host. */
typedef struct ph_ctx_space {
    double med[64], p95[64];
    int n[64];
    const char *names[PH_MAX_ENDPOINTS], *states[PH_MAX_ENDPOINTS];
} ph_ctx_space;
void ph_req_fill_ctx(ph_req *r, ph_chain_ctx *c, ph_ctx_space *sp);

/* request_provisional.c: when the policy asks, the heuristic planner's plan (its steps checked
 * against the snapshot) goes out at once as a provisional event. */
void ph_req_offer_provisional(ph_req *r);

/* ph_check_step against r's snapshot (its view and its text, for the validate hook). */
int ph_req_check_step(ph_req *r, const int *tools, int ntools, const ph_pp_step *s, char *reason,
                      size_t reason_size, ph_error *err);
/* A step the parser handed out: validated against the snapshot and the policy, then a step
 * event (kept) or a drop. `tools` are the tier's (NULL: all). */
void ph_req_take_step(ph_req *r, const int *tools, int ntools, const ph_pp_step *s);
/* The parser's plan: the plan event's fields from the kept steps and every drop. */
void ph_req_take_plan(ph_req *r, const ph_pp_plan *p);

#endif
