/* sim — what the files of the simulated LLM server (`planhost sim`) share.
 *
 *   sim.c         the command: options, the daemon, routing, the GET endpoints
 *   sim_req.c     request bodies (parsed with jsonstream) into a sim_request
 *   sim_proto.c   the wire formats of answers: Ollama NDJSON, OpenAI SSE, llama.cpp SSE
 *   sim_stream.c  one generation: answer, stop/limit, latency model, the streamed response
 *   sim_sched.c   parallel slots, the FIFO queue, the prefix cache, model load, every wait
 *   sim_faults.c  fault modes (--fault, X-Sim-Fault)
 *   sim_replay.c  serving a recorded stream (--replay)
 *   sim_lua.c     latency profiles and the model script: the one file here that includes lua.h
 *
 * Threads: libmicrohttpd runs one thread per connection, so a request may block in its own
 * thread (queueing, prefill, decode delays); every wait is a bounded sleep that gives up when
 * the server stops or the client goes away. Not part of libplanhost: only the command links
 * these files (with -lmicrohttpd). Depends on buf, jsonw, jsonstream, error, record. */
#ifndef PH_SIM_H
#define PH_SIM_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <microhttpd.h>

#include "buf.h"
#include "error.h"
#include "record.h"

#define SIM_VERSION "planhost-sim 0.1 (simulated)"
#define SIM_MODEL "sim"
#define SIM_MAX_BODY (8u << 20)      /* request bodies past this get 413 */
#define SIM_MAX_ANSWER (1u << 20)    /* longest answer a model script may return */
#define SIM_MAX_OPTIONS 32
#define SIM_MAX_STOP 8

/* ---- APIs and requests (sim_req.c) ------------------------------------------------- */

typedef enum sim_api { SIM_OLLAMA_CHAT, SIM_OLLAMA_GENERATE, SIM_OPENAI, SIM_LLAMACPP } sim_api;

/* The API served at a URL path, or -1 when the path is not a generation endpoint. */
int sim_api_from_path(const char *path);
const char *sim_api_path(sim_api api);   /* "/api/chat", ... */
const char *sim_api_name(sim_api api);   /* "ollama", "ollama-generate", "openai", "llamacpp" */

typedef struct sim_option {
    char name[32];
    double value;
} sim_option;

typedef struct sim_request {
    sim_api api;
    int stream;                 /* the body's "stream", else the API's default */
    int schema;                 /* structured output asked for (format, response_format,
                                   json_schema or grammar) */
    char model[256];            /* "" when the body names none */
    ph_buf system;              /* system messages joined by "\n"; /api/generate: "system" */
    ph_buf prompt;              /* the other messages joined by "\n"; or "prompt" */
    sim_option opts[SIM_MAX_OPTIONS];   /* every numeric sampling setting, by its wire name */
    int nopts;
    char *stop[SIM_MAX_STOP];   /* owned */
    int nstop;
    long long seed;             /* valid when has_seed */
    int has_seed;
    long num_predict;           /* options.num_predict / max_tokens / n_predict; -1: none */
} sim_request;

/* Parses a request body for `api` into `r` (which the caller frees with sim_req_free, also
 * after a failure). Returns 0, or -1 with a message for a 400 answer in `msg`. */
int sim_req_parse(sim_request *r, sim_api api, const char *body, size_t len, char *msg, size_t msgsize);
void sim_req_free(sim_request *r);

/* ---- latency profiles and the model script (sim_lua.c) ----------------------------- */

typedef struct sim_profile {
    char name[64];
    double prefill_tps;         /* prompt tokens per second; 0: no delay */
    double decode_tps;          /* generated tokens per second; 0: no delay */
    double load_s;              /* model load, before the first request */
    double jitter;              /* each delay is scaled by a factor in [1-jitter, 1+jitter] */
    double chars_per_token;     /* token estimate and piece size; default 4 */
    double overhead_ms;         /* fixed cost per request before prefill */
    double batch_penalty;       /* decode slows by this fraction per other busy slot */
} sim_profile;

/* Reads profile `name` from the Lua file `file` (which returns name -> table). Unknown keys
 * and unknown names are errors (the message lists the known names). Returns 0 or -1. */
int sim_profile_load(const char *file, const char *name, sim_profile *out, ph_error *err);

typedef struct sim_lua sim_lua;

/* Loads the model script `file` into its own lua_State (standard libraries, not sandboxed),
 * with `lua_dir` (may be NULL) first on package.path, so it can require "tools". The script
 * returns a table with answer(req) and optionally config.misbehave = {name = rate}; the
 * rates in `misbehave` ("fence=0.2,prose=0.1", may be NULL) replace those, and a name the
 * script does not list is an error. The caller owns the handle. NULL with `err` filled. */
sim_lua *sim_lua_open(const char *file, const char *lua_dir, const char *misbehave, ph_error *err);
void sim_lua_close(sim_lua *m);

typedef struct sim_call {
    const sim_request *req;
    unsigned long n;            /* the request's arrival number (1, 2, ...) */
    uint64_t rng;               /* seed for the script's random choices */
    const char *misbehave;      /* this request's overrides (X-Sim-Misbehave), or NULL */
} sim_call;

/* Calls answer(req) and appends the text it returns to `out`. One call at a time (locks).
 * Returns 0; -1 with PH_ERR_ARG for a bad misbehave override, else PH_ERR_RUNTIME or
 * PH_ERR_CONTRACT with the script's file:line. */
int sim_lua_answer(sim_lua *m, const sim_call *call, ph_buf *out, ph_error *err);

/* ---- fault modes (sim_faults.c) ----------------------------------------------------- */

typedef enum sim_fault_kind {
    SIM_FAULT_NONE, SIM_FAULT_HTTP500, SIM_FAULT_NOTFOUND, SIM_FAULT_ERROR_MID,
    SIM_FAULT_RESET, SIM_FAULT_GARBAGE, SIM_FAULT_SLOW, SIM_FAULT_HANG, SIM_FAULT_ENDLESS,
} sim_fault_kind;

typedef struct sim_fault {
    sim_fault_kind kind;
    long k;                     /* error_mid:K, reset:K tokens; slow:MS per token */
} sim_fault;

/* Parses "none", "http500", "notfound", "error_mid[:K]", "reset:K", "garbage",
 * "slow[:MS]", "hang", "endless". Returns 0, or -1 with a message listing them. */
int sim_fault_parse(const char *s, sim_fault *out, char *msg, size_t msgsize);
const char *sim_fault_name(sim_fault_kind kind);

struct sim_conn;
typedef enum sim_action { SIM_GO, SIM_ABORT, SIM_END } sim_action;

/* Sets c->fault from the X-Sim-Fault header, else the server's mode. -1 (msg) when the
 * header names no mode. */
int sim_fault_for(struct sim_conn *c, char *msg, size_t msgsize);
/* Faults that answer instead of a generation (http500, notfound, hang; endless without
 * streaming). Returns 1 with *res set when the fault answered. */
int sim_fault_early(struct sim_conn *c, enum MHD_Result *res);
/* Before streamed token c->ntok: SIM_GO (maybe after adding a garbage line to c->out),
 * SIM_END (an error event is in c->out; the stream ends after it), SIM_ABORT (close now). */
sim_action sim_fault_token(struct sim_conn *c);
/* The delay before a token, as the fault mode changes it. */
double sim_fault_delay(const struct sim_conn *c, double delay);
/* stream:false under error_mid, reset or garbage (`token_s` per token). Returns 1 with
 * *res set when the fault answered. */
int sim_fault_whole(struct sim_conn *c, double token_s, enum MHD_Result *res);

/* ---- the server and its requests ---------------------------------------------------- */

typedef struct sim_sched sim_sched;

typedef struct sim_server {
    sim_profile profile;
    sim_fault fault;            /* for requests without X-Sim-Fault */
    sim_lua *model;             /* NULL in replay mode */
    ph_record replay;           /* loaded when replaying */
    int replaying;
    sim_sched *sched;
    uint64_t seed;
    char *api_key;              /* --api-key: POSTs need "Authorization: Bearer KEY" (NULL: none) */
    atomic_ulong arrivals;      /* generation requests seen */
    pthread_mutex_t last_mu;    /* guards last_body */
    ph_buf last_body;           /* the newest generation request's body: GET /sim/last_body */
} sim_server;

typedef struct sim_stats {
    char model[256];
    char created_at[48];        /* RFC 3339, UTC, nanoseconds (Ollama) */
    long long created;          /* Unix seconds (OpenAI) */
    char id[48];                /* "chatcmpl-sim-7" */
    int slot;
    long prompt_tokens;         /* the whole prompt */
    long prompt_eval;           /* tokens prefilled now (not found in the slot's cache) */
    long cached;                /* tokens reused from the slot's cache */
    long eval_count;            /* tokens generated */
    double load_s, prompt_s, eval_s, total_s;   /* measured */
    const char *reason;         /* "stop" or "length" */
    const char *stop_word;      /* the stop string that ended the answer, or NULL */
} sim_stats;

/* One HTTP request, from its first byte to its end. Shared by the access handler and a
 * streaming response, hence the reference count (sim_conn_drop frees at zero). */
typedef struct sim_conn {
    sim_server *srv;
    struct MHD_Connection *mhd;
    atomic_int refs;
    int fd;                     /* the client's socket, watched while waiting */
    int fd_blind;               /* the client sent more bytes: stop watching the socket */
    double t0;                  /* monotonic seconds at arrival */
    ph_buf upload;
    int too_large;
    unsigned long n;            /* arrival number (generation requests) */
    uint64_t rng;               /* jitter state */
    sim_request req;
    sim_fault fault;
    ph_buf answer;
    size_t pos;                 /* next answer byte to send */
    long ntok, max_tok;         /* tokens sent, tokens to send */
    int slot;                   /* -1: none held */
    double queue_s;             /* time spent waiting for a slot */
    unsigned long done_before;  /* generations finished when this one got its slot */
    double t_decode;            /* monotonic seconds when decoding began */
    int state;                  /* sim_stream.c's reader state */
    sim_stats stats;
    ph_buf out;                 /* formatted bytes not yet handed to MHD */
    size_t out_off;
    size_t replay_next;         /* next chunk of the recorded stream */
} sim_conn;

/* Nonzero once SIGINT/SIGTERM asked the server to stop (sim.c). */
int sim_stopping(void);

/* Monotonic seconds. */
double sim_now(void);

/* Adds X-Planhost-Sim: 1, queues `resp` with `status` and releases the caller's reference. */
enum MHD_Result sim_queue(sim_conn *c, unsigned status, struct MHD_Response *resp);

/* Answers with a JSON body (copied). */
enum MHD_Result sim_reply_json(sim_conn *c, unsigned status, const char *json, size_t len);

/* Answers with an error body in the shape of the request's API (sim_proto_error). */
enum MHD_Result sim_reply_error(sim_conn *c, unsigned status, const char *msg, const char *code);

/* Drops one reference; the last one releases the slot and frees the request. */
void sim_conn_drop(sim_conn *c);

/* ---- one generation (sim_stream.c) -------------------------------------------------- */

/* Serves a POST to a generation endpoint once its body has arrived. May block this
 * connection's thread (queue, load, prefill). Returns what the access handler returns. */
enum MHD_Result sim_generate(sim_conn *c, sim_api api);

/* ---- wire formats (sim_proto.c) ----------------------------------------------------- */

const char *sim_proto_content_type(sim_api api, int stream);
/* One streamed token event. `first` marks the first (OpenAI puts the role there). */
void sim_proto_token(ph_buf *b, sim_api api, const sim_stats *st, const char *piece, size_t n, int first);
/* The last event(s): Ollama's done:true object, OpenAI's finish chunk and [DONE], llama.cpp's
 * stop:true object. */
void sim_proto_final(ph_buf *b, sim_api api, const sim_stats *st);
/* The whole answer as one JSON object (stream:false). */
void sim_proto_whole(ph_buf *b, sim_api api, const sim_stats *st, const char *text, size_t n);
/* An error inside a stream: Ollama {"error":..} line, OpenAI data: {"error":{..}},
 * llama.cpp "error: {..}". */
void sim_proto_stream_error(ph_buf *b, sim_api api, const char *msg);
/* The body of an error response in the API's own shape; `code` names the error kind
 * ("model_not_found", NULL for the status's default). */
void sim_proto_error(ph_buf *b, sim_api api, unsigned status, const char *msg, const char *code);
/* A line that is not JSON, framed as the API frames lines. */
void sim_proto_garbage(ph_buf *b, sim_api api, long n);

/* ---- scheduling and waiting (sim_sched.c) ------------------------------------------- */

sim_sched *sim_sched_new(int nslots);
void sim_sched_free(sim_sched *s);

/* Waits in FIFO order for a free slot and takes the free one whose remembered prompt shares
 * the longest prefix with `prompt`. Fills *common (bytes of the shared prefix) and
 * *done_before. Returns the slot, or -1 when the server stops or the client leaves while
 * waiting. */
int sim_sched_acquire(sim_sched *s, sim_conn *c, const char *prompt, size_t len, size_t *common,
                      unsigned long *done_before);
/* The slot now holds `prompt` in its cache (call once it is prefilled; copied). */
void sim_sched_remember(sim_sched *s, int slot, const char *prompt, size_t len);
/* Frees a slot taken by sim_sched_acquire and counts the generation as finished. */
void sim_sched_release(sim_sched *s, int slot);
/* Slots busy right now. */
int sim_sched_busy(sim_sched *s);
/* The first call starts the model load of `load_s` seconds; every call returns how long
 * is left of it (0 once loaded). */
double sim_sched_load_left(sim_sched *s, double load_s);
/* Wakes every waiter (at shutdown). */
void sim_sched_wake(sim_sched *s);

/* Sleeps `seconds` (bounded slices). Returns 0, or -1 as soon as the server stops or the
 * client has closed its connection. */
int sim_conn_sleep(sim_conn *c, double seconds);
/* Zero when the server stops or the client has closed its connection. */
int sim_conn_alive(sim_conn *c);

/* ---- replay (sim_replay.c) ---------------------------------------------------------- */

/* Serves the recorded stream to a POST on the recorded path (404 on other paths). */
enum MHD_Result sim_replay_serve(sim_conn *c, const char *url);

#endif
