/* planhost.h — the embedding API.
 *
 * A host owns one script tree (lua/, prompts/, policies/ under a root folder), the current
 * script generation, the plan cache, the model endpoints and a queue of events.
 *
 * Threads: ONE thread per host. Every function taking a ph_host must be called from the same
 * thread (or under the caller's own lock); nothing here starts threads or calls back from one.
 * No global state: any number of hosts may live in one process, each on its own thread.
 *
 * The loop: ph_host_submit() queues a request and returns at once (it never waits for the
 * network; a cache hit or a heuristic-only chain may have its events queued already).
 * ph_host_poll() does the host's pending work — network I/O, batching timers, waiting
 * requests, hot reload of saved scripts — for at most timeout_ms. Events are delivered by
 * draining, not by callback: after poll, call ph_host_next_event() until it returns 0. A
 * game calls poll(h, 0) once a frame and drains; a tool may block in poll(h, -1).
 *
 * Events are JSON objects (DESIGN.md, "Events"), delivered with their kind, request id and
 * the caller's user pointer. Errors come back as a ph_error record (error.h). Ownership:
 * every input is copied at the call (strings, snapshots, configs); every output pointer is
 * owned by the host and valid as each function says, unless the function says the caller
 * frees it. */
#ifndef PLANHOST_H
#define PLANHOST_H

#include <stddef.h>

#include "error.h"

#define PH_VERSION "0.1.0"

typedef struct ph_host ph_host;

/* One model server. Several may serve one model: a tier names a group, and each request
 * goes to the group's endpoint with the fewest requests outstanding whose circuit lets it. */
typedef struct ph_endpoint_config {
    const char *url;        /* "http://127.0.0.1:11434" */
    const char *api;        /* as in ph_host_config; NULL: "ollama" */
    const char *model;      /* NULL: the host's model */
    const char *group;      /* NULL: "default" */
    int max_in_flight;      /* transfers at once; set it to the server's parallel slots. A
                               request finding every endpoint of its group full waits (without
                               blocking the caller) for a free one. 0: the host's
                               max_in_flight */
    const char *const *headers; /* extra "Name: value" lines sent to this server with every
                               request, e.g. "Authorization: Bearer KEY"; NULL-terminated, at
                               most PH_MAX_HEADERS. NULL: the host's headers */
} ph_endpoint_config;

typedef struct ph_host_config {
    const char *root;       /* folder with lua/, prompts/, policies/ and examples/snapshots/;
                               copied, so it may be freed after ph_host_open */
    int watch;              /* nonzero: ph_host_poll reloads scripts saved on disk */
    int watch_interval_ms;  /* how often poll looks at the files; 0 means 100 */
    /* The model server (all copied; NULL/0 picks the default in brackets). */
    const char *url;        /* ["http://127.0.0.1:11434"] */
    const char *api;        /* "ollama" (/api/chat), "ollama-generate", "openai", "llamacpp" ["ollama"] */
    const char *model;      /* [PH_DEFAULT_MODEL] */
    long connect_timeout_ms;    /* [1000] */
    long first_byte_timeout_ms; /* [0: none] */
    int budget_ms;          /* a request's default time budget [0: the policy's budget_ms] */
    const char *keep_alive; /* Ollama keep_alive, e.g. "10m" [NULL: the server's default] */
    const char *const *headers; /* extra lines for every request to the server (each endpoint
                               without its own), e.g. "Authorization: Bearer KEY" [NULL: none].
                               As in libcurl, "Name:" with no value removes that header */
    size_t max_response;    /* bytes of one response [4 MiB] */
    const ph_endpoint_config *endpoints;  /* when nendpoints > 0 these replace url/api/model */
    int nendpoints;         /* at most PH_MAX_ENDPOINTS */
    int max_in_flight;      /* per endpoint when the endpoint does not say [0: no cap] */
    int max_pending;        /* requests submitted and not ended; past it submit refuses with
                               PH_ERR_LIMIT (back-pressure) [PH_DEFAULT_MAX_PENDING] */
    size_t max_snapshot;    /* bytes of one snapshot (and of a game object) [1 MiB] */
    /* The plan cache (policies/cache.lua says what counts and what is kept; without that
     * file the cache is off). */
    int cache_off;          /* nonzero: no plan cache, whatever policies/cache.lua says */
    size_t cache_entries;   /* [4096] */
    size_t cache_bytes;     /* plan bytes and their bookkeeping [8 MiB] */
    long cache_ttl_ms;      /* [0: plans do not expire] */
    const char *cache_file; /* warm start: loaded at open (entries of the serving scripts'
                               content hash only), saved at close [NULL: none] */
} ph_host_config;

#define PH_MAX_ENDPOINTS 16
#define PH_MAX_HEADERS 8        /* extra header lines per endpoint, and per request */
#define PH_DEFAULT_MAX_PENDING 10000
#define PH_DEFAULT_MAX_SNAPSHOT (1u << 20)

#define PH_DEFAULT_MODEL "qwen2.5:7b-instruct"

/* One planning request. Everything is copied at submit. */
typedef struct ph_request_opts {
    const char *snapshot;   /* snapshot JSON (DESIGN.md, Formats) */
    size_t len;
    const char *agent;      /* agent id for events; NULL: the snapshot's "agent" field */
    const char *template;   /* NULL: the policy's chain; else that template, then the
                               heuristic and emergency tiers */
    int budget_ms;          /* time budget; 0: the host's default, else the policy's */
    const char *const *headers;  /* extra HTTP headers after the endpoint's, NULL-terminated,
                                    at most PH_MAX_HEADERS (may be NULL) */
    const char *record;     /* write the raw stream with arrival times here (may be NULL) */
    const char *game;       /* JSON object the game passes to the policy as ctx.game, e.g.
                               {"urgency":"high"} (may be NULL) */
    void *user;             /* the caller's own pointer, handed back in each of the request's
                               events; the host never reads it (may be NULL) */
} ph_request_opts;

/* The JSON of each kind is in DESIGN.md (Events). A request's events end with exactly one
 * PLAN; PROVISIONAL (when policies/tiers.lua asks for it) comes first, for a request that
 * waits for a model: the heuristic planner's plan to act on until the PLAN arrives. */
typedef enum ph_event_kind {
    PH_EVENT_STEP, PH_EVENT_FALLBACK, PH_EVENT_PLAN, PH_EVENT_RELOAD, PH_EVENT_PROVISIONAL,
} ph_event_kind;

typedef struct ph_event {
    ph_event_kind kind;
    unsigned long request;  /* the request it belongs to; 0 for reload events */
    const char *json;       /* the whole event, one JSON object, NUL-terminated */
    size_t len;
    void *user;             /* the request's ph_request_opts.user; NULL for reload events */
} ph_event;

typedef struct ph_prompt {
    char *system;           /* owned by the prompt; free with ph_prompt_free */
    size_t system_len;
    char *user;
    size_t user_len;
    size_t chars;           /* characters (code points) of system + user */
    size_t tokens;          /* estimate: chars / 4, rounded up */
} ph_prompt;

/* Opens a host: loads and self-checks the first script generation. Returns NULL with `err`
 * filled when the scripts do not load (the message says file:line). The caller owns the
 * host and closes it with ph_host_close. */
ph_host *ph_host_open(const ph_host_config *cfg, ph_error *err);

/* Closes the host and frees everything it owns. NULL is fine. */
void ph_host_close(ph_host *h);

/* Does the host's pending work for at most `timeout_ms` (0: only what is ready; negative:
 * until an event is queued). Returns as soon as events are queued, with their count. */
int ph_host_poll(ph_host *h, int timeout_ms);

/* Takes the oldest queued event into `ev`. Returns 1, or 0 when the queue is empty. The
 * event's strings stay valid until the next call of ph_host_next_event or ph_host_close. */
int ph_host_next_event(ph_host *h, ph_event *ev);

/* Builds a new generation from the files on disk now, self-checks it and swaps it in if it
 * passes; queues a reload event either way. Returns 0 when swapped, -1 when the old
 * generation keeps serving (`err`, may be NULL, says why). */
int ph_host_reload(ph_host *h, ph_error *err);

/* Submits a request. Returns its id (> 0): the request then ends in exactly one plan event
 * (after step and fallback events) delivered by ph_host_poll, unless cancelled. Returns 0
 * with `err` filled when the request cannot be made at all (malformed snapshot: PH_ERR_JSON
 * with the byte offset; unknown template: PH_ERR_NOTFOUND; a snapshot over max_snapshot or
 * max_pending requests already pending: PH_ERR_LIMIT — drain events and retry); no event
 * follows then. */
unsigned long ph_host_submit(ph_host *h, const ph_request_opts *o, ph_error *err);

/* Cancels a pending request: no further event is delivered for it. Returns 0, or -1 for an
 * unknown or finished id. */
int ph_host_cancel(ph_host *h, unsigned long request);

/* Requests submitted and not yet ended. */
int ph_host_pending(const ph_host *h);

/* Renders template `name` for one snapshot (JSON text). On success fills `out`, which the
 * caller frees with ph_prompt_free. Returns 0, or -1 with `err` filled: PH_ERR_NOTFOUND for
 * an unknown template (the message lists the known ones), PH_ERR_JSON for a malformed
 * snapshot, script errors with file:line. */
int ph_host_render(ph_host *h, const char *name, const char *snapshot, size_t len,
                   ph_prompt *out, ph_error *err);
void ph_prompt_free(ph_prompt *p);

/* The host's metrics in the Prometheus text format (host/metrics.h lists the families):
 * a NUL-terminated text the caller frees with free(), its length in *len (may be NULL).
 * NULL when out of memory. */
char *ph_host_metrics(ph_host *h, size_t *len);

/* Saves the plan cache to cfg.cache_file now (it is also saved at close). Returns 0, or -1
 * with `err` filled (no cache file configured: PH_ERR_ARG; I/O errors). */
int ph_host_cache_save(ph_host *h, ph_error *err);

/* The serving generation's number (1 for the first) and content hash. */
unsigned ph_host_generation(const ph_host *h);
unsigned long long ph_host_script_hash(const ph_host *h);

#endif
