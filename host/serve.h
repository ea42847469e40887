/* serve — what the files of the planning service (`planhost serve`) share.
 *
 *   serve.c       the command: options, the host loop on the main thread, shutdown
 *   serve_http.c  the libmicrohttpd side: routing, uploads, replies, the streamed response
 *   serve_body.c  a POST /v1/plan body (checked with jsonstream) into snapshot byte ranges
 *
 * Threads: libmicrohttpd runs one thread per connection; the ph_host lives on the main
 * thread only (planhost.h: one thread per host). The two sides meet in one srv_server under
 * one mutex: a connection thread queues a srv_job (submit these snapshots, answer /health,
 * answer /metrics), writes a byte to the wake pipe and waits on the condition variable; the
 * main loop runs the job's host calls, routes the host's events into each stream's `out`
 * buffer and broadcasts. A streaming response's content reader takes bytes from `out`,
 * waiting in bounded slices (and watching the client's socket) while it is empty.
 * Not part of libplanhost: only the command links these files (with -lmicrohttpd).
 * Depends on the public API, buf, jsonw, jsonstream. */
#ifndef PH_SERVE_H
#define PH_SERVE_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "planhost.h"

#define SRV_DEFAULT_MAX_BODY (1u << 20)     /* --max-body */
#define SRV_DEFAULT_MAX_CLIENTS 64          /* --max-clients: streams at once */
#define SRV_DEFAULT_MAX_SNAPSHOTS 256       /* --max-snapshots: per POST */
#define SRV_MAX_OUT (16u << 20)             /* NDJSON one stream may have waiting */
#define SRV_MAX_TEMPLATE 128

/* ---- the body of POST /v1/plan (serve_body.c) --------------------------------------- */

typedef struct srv_range {
    size_t off, len;
} srv_range;

typedef struct srv_body {
    srv_range *snap;            /* each snapshot's bytes in the body, in order (owned) */
    int nsnap;
    int budget_ms;              /* 0: the host's default */
    char tmpl[SRV_MAX_TEMPLATE];/* "" : the policy's chain */
    srv_range game;             /* len 0: none */
    unsigned status;            /* 0 fine, else 400 or 413 with error and offset */
    char error[600];
    uint64_t offset;
} srv_body;

/* Reads `len` bytes of `body`: one snapshot object, an array of them, or the wrapper object
 * {"snapshots":[...], "budget_ms":N, "template":"T", "game":{...}} (an object with a
 * "snapshots" key is the wrapper; its other keys must be those three). More than `max`
 * snapshots: status 413. Returns 0, or -1 with out->status, error and offset set. The
 * caller frees out->snap with srv_body_free; `body` is not kept. */
int srv_body_parse(const char *body, size_t len, int max, srv_body *out);
void srv_body_free(srv_body *b);

/* ---- streams, jobs and the server ---------------------------------------------------- */

/* One POST /v1/plan from its upload to its last byte. Held by the connection, its response
 * and (while it has requests open) the main loop; srv_stream_drop frees it at zero. The
 * upload fields belong to the connection thread until the submit job is queued, then to the
 * main loop; the fields from `out` on are guarded by srv_server.mu, as is `refs`. */
typedef struct srv_stream {
    int refs;
    int fd;                     /* the client's socket (read-only after creation) */
    ph_buf body;                /* the upload; the main loop frees it after submitting */
    int too_large;              /* the upload passed --max-body (connection thread only) */
    srv_body in;                /* parsed by the connection thread before queueing */
    unsigned long *ids;         /* ids[i]: snapshot i's request (0: refused); written by the
                                   main loop before the submit job is done, fixed after */
    unsigned long lo, hi;       /* the smallest and largest of them (main thread only) */
    int open;                   /* requests still without their plan event */
    ph_buf out;                 /* NDJSON not yet handed to libmicrohttpd */
    size_t out_off;
    int ended;                  /* every snapshot answered: the response ends after out */
    int failed;                 /* out hit its cap: the response ends with an error */
    int gone;                   /* the client left before the end */
    struct srv_stream *next;    /* the main loop's list of live streams (main thread only) */
} srv_stream;

typedef enum srv_job_kind { SRV_JOB_SUBMIT, SRV_JOB_HEALTH, SRV_JOB_METRICS } srv_job_kind;

/* A question for the main loop. Lives on the asking connection thread's stack; that thread
 * waits until `done` (or srv_server.closed). */
typedef struct srv_job {
    srv_job_kind kind;
    srv_stream *stream;         /* SRV_JOB_SUBMIT */
    char *reply;                /* HEALTH, METRICS: malloc'd body; NULL out of memory */
    size_t reply_len;
    int refused;                /* SUBMIT while stopping: answer 503 */
    int done;
    struct srv_job *next;
} srv_job;

typedef struct srv_config {
    long port, max_clients, max_snapshots;
    size_t max_body;
} srv_config;

typedef struct srv_server {
    srv_config cfg;
    pthread_mutex_t mu;
    pthread_cond_t cv;          /* broadcast on every change a waiter may be waiting for */
    srv_job *jobs, **jobs_tail; /* queued for the main loop */
    int clients;                /* streams holding a client slot (at most cfg.max_clients) */
    int stopping;               /* SIGINT/SIGTERM seen: no new submissions */
    int closed;                 /* the main loop has finished: nobody answers jobs */
    int wake[2];                /* the self-pipe: any thread (or the signal handler) writes */
    struct MHD_Daemon *daemon;
} srv_server;

/* Wakes the main loop (any thread, async-signal-safe). */
void srv_wake(srv_server *s);

/* Queues `job` and waits for the main loop to answer it. Returns 0, or -1 when the loop has
 * closed and nobody will. Called on a connection thread without the lock. */
int srv_ask(srv_server *s, srv_job *job);

/* Drops one reference to `st` (call with mu held); the last one frees it. */
void srv_stream_drop(srv_stream *st);

/* The command (serve.c): argv holds the options after "serve". Returns the exit status. */
int ph_serve_main(int argc, char **argv);

/* ---- the libmicrohttpd side (serve_http.c) ------------------------------------------- */

/* Starts the daemon on 127.0.0.1:cfg.port; sets s->daemon. Returns the bound port, or 0
 * (after printing why) when it cannot listen. */
unsigned srv_http_start(srv_server *s);

#endif
