/* serve — `planhost serve`: the planning host as an HTTP/NDJSON service on 127.0.0.1.
 *
 *   planhost serve [--port P] [--root DIR] [--url U] [--api A] [--model M] [--cache-file F]
 *                  [--no-cache] [--max-body BYTES] [--max-clients N] [--max-snapshots N]
 *
 * POST /v1/plan streams the host's events for the snapshots in the body as NDJSON, GET
 * /metrics and GET /health report (serve_http.c has the endpoints, examples/serve/README.md
 * the contract). When ready it prints "planhost serve: listening on http://127.0.0.1:PORT"
 * to stdout. SIGINT or SIGTERM: stop accepting, let open requests finish for up to
 * SRV_GRACE_MS, cancel the rest (an error line each), close the host (which saves
 * --cache-file), exit 0. Exit status 1 when it cannot start, 2 on bad options.
 *
 * This file is the main thread: the only one that calls the ph_host. It answers the jobs the
 * connection threads queue, polls the host, appends each event to its stream's buffer and
 * cancels the requests of clients that left. Depends on the public API, cli, serve_*. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "cli.h"
#include "jsonw.h"
#include "serve.h"

#define SRV_GRACE_MS 5000       /* at shutdown, how long open requests may still finish */
#define SRV_FLUSH_MS 1000       /* then, how long their last bytes may take to go out */
#define BUSY_POLL_MS 5          /* ph_host_poll slice while requests are pending */
#define IDLE_WAIT_MS 100        /* wake-pipe wait while nothing is pending (the script watch
                                   still looks at the files this often) */

/* ---- the meeting point of the two sides ---------------------------------------------- */

static int signal_fd = -1;      /* the wake pipe's write end, for the signal handler */
static volatile sig_atomic_t got_signal;

void srv_wake(srv_server *s)
{
    char c = 1;
    ssize_t r = write(s->wake[1], &c, 1);   /* a full pipe is awake enough */
    (void)r;
}

int srv_ask(srv_server *s, srv_job *job)
{
    job->next = NULL;
    job->done = 0;
    pthread_mutex_lock(&s->mu);
    if (s->closed) {
        pthread_mutex_unlock(&s->mu);
        return -1;
    }
    *s->jobs_tail = job;
    s->jobs_tail = &job->next;
    pthread_mutex_unlock(&s->mu);
    srv_wake(s);
    pthread_mutex_lock(&s->mu);
    while (!job->done && !s->closed)
        pthread_cond_wait(&s->cv, &s->mu);
    int rc = job->done ? 0 : -1;
    pthread_mutex_unlock(&s->mu);
    return rc;
}

void srv_stream_drop(srv_stream *st)
{
    if (!st || --st->refs > 0)
        return;
    ph_buf_free(&st->body);
    ph_buf_free(&st->out);
    srv_body_free(&st->in);
    free(st->ids);
    free(st);
}

/* ---- the main loop ------------------------------------------------------------------- */

typedef struct loop {
    srv_server *s;
    ph_host *h;
    srv_stream *live;           /* streams with requests open (one reference each) */
} loop;

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* {"event":"error","index":i,...} for a snapshot that gets no plan event; under mu. */
static void error_line(srv_stream *st, int index, unsigned long id, const char *code, const char *msg)
{
    ph_buf *b = &st->out;
    ph_buf_addf(b, "{\"event\":\"error\",\"index\":%d", index);
    if (id)
        ph_buf_addf(b, ",\"request\":%lu", id);
    ph_buf_adds(b, ",\"code\":");
    ph_jsonw_cstr(b, code);
    ph_buf_adds(b, ",\"error\":");
    ph_jsonw_cstr(b, msg);
    if (ph_buf_adds(b, "}\n") != 0)
        st->failed = 1;
}

/* Submits every snapshot of `st` (the refused ones get an error line) and, when any was
 * taken, adds the stream to the live list. */
static void submit_stream(loop *l, srv_stream *st)
{
    const srv_body *in = &st->in;
    char *game = in->game.len ? strndup(st->body.data + in->game.off, in->game.len) : NULL;
    ph_request_opts ro = {.template = in->tmpl[0] ? in->tmpl : NULL, .budget_ms = in->budget_ms, .game = game};
    int taken = 0;
    for (int i = 0; i < in->nsnap; i++) {
        ph_error err;
        ro.snapshot = st->body.data + in->snap[i].off;
        ro.len = in->snap[i].len;
        st->ids[i] = ph_host_submit(l->h, &ro, &err);
        if (!st->ids[i]) {
            pthread_mutex_lock(&l->s->mu);
            error_line(st, i, 0, ph_code_name(err.code), err.message);
            pthread_mutex_unlock(&l->s->mu);
            continue;
        }
        if (!taken++)
            st->lo = st->ids[i];
        st->hi = st->ids[i];
    }
    free(game);
    ph_buf_free(&st->body);     /* the host copied what it needs */
    pthread_mutex_lock(&l->s->mu);
    st->open = taken;
    st->ended = taken == 0;
    if (taken) {
        st->refs++;
        st->next = l->live;
        l->live = st;
    }
    pthread_mutex_unlock(&l->s->mu);
}

static void answer_health(loop *l, srv_job *j, int stopping)
{
    char text[160];
    int n = snprintf(text, sizeof text, "{\"status\":\"%s\",\"generation\":%u,\"pending\":%d}\n",
                     stopping ? "stopping" : "ok", ph_host_generation(l->h), ph_host_pending(l->h));
    j->reply = strdup(text);
    j->reply_len = (size_t)n;
}

/* Answers every queued job. A job's memory belongs to its waiting thread, which may return
 * as soon as `done` is set, so `next` is read first. */
static void run_jobs(loop *l)
{
    srv_server *s = l->s;
    pthread_mutex_lock(&s->mu);
    srv_job *j = s->jobs;
    s->jobs = NULL;
    s->jobs_tail = &s->jobs;
    int stopping = s->stopping;
    pthread_mutex_unlock(&s->mu);
    while (j) {
        srv_job *next = j->next;
        if (j->kind == SRV_JOB_SUBMIT && stopping)
            j->refused = 1;
        else if (j->kind == SRV_JOB_SUBMIT)
            submit_stream(l, j->stream);
        else if (j->kind == SRV_JOB_HEALTH)
            answer_health(l, j, stopping);
        else
            j->reply = ph_host_metrics(l->h, &j->reply_len);
        pthread_mutex_lock(&s->mu);
        j->done = 1;
        pthread_cond_broadcast(&s->cv);
        pthread_mutex_unlock(&s->mu);
        j = next;
    }
}

static srv_stream *stream_of(loop *l, unsigned long id)
{
    for (srv_stream *st = l->live; st; st = st->next)
        if (id >= st->lo && id <= st->hi)
            return st;
    return NULL;
}

/* Moves the host's events into their streams' buffers; reload events (a saved script was
 * taken, or refused and the last good one keeps serving) go to stderr. */
static void route_events(loop *l)
{
    ph_event ev;
    int moved = 0;
    pthread_mutex_lock(&l->s->mu);
    while (ph_host_next_event(l->h, &ev)) {
        if (ev.kind == PH_EVENT_RELOAD) {
            fprintf(stderr, "planhost serve: %s\n", ev.json);
            continue;
        }
        srv_stream *st = ev.request ? stream_of(l, ev.request) : NULL;
        if (!st || st->gone || st->failed || st->ended)
            continue;
        if (ph_buf_add(&st->out, ev.json, ev.len) != 0 || ph_buf_add(&st->out, "\n", 1) != 0)
            st->failed = 1;
        if (ev.kind == PH_EVENT_PLAN && --st->open == 0)
            st->ended = 1;
        moved = 1;
    }
    if (moved)
        pthread_cond_broadcast(&l->s->cv);
    pthread_mutex_unlock(&l->s->mu);
}

/* Cancels the stream's requests that are still open; with `code`, each gets an error line. */
static void cancel_stream(loop *l, srv_stream *st, const char *code, const char *msg)
{
    for (int i = 0; i < st->in.nsnap; i++)
        if (st->ids[i] && ph_host_cancel(l->h, st->ids[i]) == 0 && code) {
            pthread_mutex_lock(&l->s->mu);
            error_line(st, i, st->ids[i], code, msg);
            pthread_mutex_unlock(&l->s->mu);
        }
}

/* Takes ended streams off the live list, and cancels what is left of abandoned or failed
 * ones (ph_host_cancel ignores the finished requests among them). */
static void sweep(loop *l)
{
    for (srv_stream **p = &l->live; *p;) {
        srv_stream *st = *p;
        pthread_mutex_lock(&l->s->mu);
        int cancel = st->gone || st->failed, over = cancel || st->ended;
        pthread_mutex_unlock(&l->s->mu);
        if (cancel)
            cancel_stream(l, st, NULL, NULL);
        if (!over) {
            p = &st->next;
            continue;
        }
        *p = st->next;
        pthread_mutex_lock(&l->s->mu);
        srv_stream_drop(st);
        pthread_mutex_unlock(&l->s->mu);
    }
}

/* Waits for host work or a wake-up, then empties the wake pipe. */
static void wait_for_work(loop *l)
{
    if (ph_host_pending(l->h) > 0) {
        ph_host_poll(l->h, BUSY_POLL_MS);
    } else {
        ph_host_poll(l->h, 0);
        struct pollfd p = {l->s->wake[0], POLLIN, 0};
        poll(&p, 1, IDLE_WAIT_MS);
    }
    char drain[64];
    while (read(l->s->wake[0], drain, sizeof drain) > 0)
        ;
}

/* The open streams at the end of the grace period: cancel, an error line each, end. */
static void finish(loop *l)
{
    for (srv_stream *st = l->live; st; st = st->next) {
        cancel_stream(l, st, "shutdown", "the server stopped before this request ended");
        pthread_mutex_lock(&l->s->mu);
        st->ended = 1;
        pthread_mutex_unlock(&l->s->mu);
    }
    sweep(l);
    pthread_mutex_lock(&l->s->mu);
    l->s->jobs = NULL;          /* their threads see `closed` and answer 503 themselves */
    l->s->jobs_tail = &l->s->jobs;
    l->s->closed = 1;
    pthread_cond_broadcast(&l->s->cv);
    pthread_mutex_unlock(&l->s->mu);
}

static void begin_stop(loop *l)
{
    pthread_mutex_lock(&l->s->mu);
    l->s->stopping = 1;
    pthread_mutex_unlock(&l->s->mu);
    MHD_socket fd = MHD_quiesce_daemon(l->s->daemon);   /* no new connections */
    if (fd != MHD_INVALID_SOCKET)
        close(fd);
    fprintf(stderr, "planhost serve: stopping; open requests have %d ms to finish\n", SRV_GRACE_MS);
}

static int clients(loop *l)
{
    pthread_mutex_lock(&l->s->mu);
    int n = l->s->clients;
    pthread_mutex_unlock(&l->s->mu);
    return n;
}

/* After finish: gives the responses up to SRV_FLUSH_MS to hand their last bytes out. */
static void flush_streams(loop *l)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += SRV_FLUSH_MS / 1000;
    pthread_mutex_lock(&l->s->mu);
    while (l->s->clients > 0 && pthread_cond_timedwait(&l->s->cv, &l->s->mu, &ts) == 0)
        ;
    pthread_mutex_unlock(&l->s->mu);
}

static void run(loop *l)
{
    double deadline = INFINITY;
    for (;;) {
        if (got_signal && deadline == INFINITY) {
            begin_stop(l);
            deadline = now_ms() + SRV_GRACE_MS;
        }
        if (got_signal && ((!l->live && clients(l) == 0) || now_ms() >= deadline))
            break;
        wait_for_work(l);
        run_jobs(l);
        route_events(l);
        sweep(l);
    }
    run_jobs(l);                /* whoever asked meanwhile gets an answer (503 for submits) */
    finish(l);
    flush_streams(l);
}

/* ---- options and setup --------------------------------------------------------------- */

static int usage(FILE *f)
{
    fprintf(f, "usage: planhost serve [--port P] [--root DIR] [--url U] [--api A] [--model M] [--cache-file F]\n"
               "                      [--header 'Name: value']... [--no-cache] [--max-body BYTES]\n"
               "                      [--max-clients N] [--max-snapshots N]\n"
               "  the planning host as an HTTP/NDJSON service on 127.0.0.1 (port 0, the default, picks one):\n"
               "  POST /v1/plan streams events, GET /metrics, GET /health; see examples/serve/README.md\n"
               "  limits: --max-body %u bytes per request body (413), --max-clients %d streams at once\n"
               "  (503 + Retry-After), --max-snapshots %d per request (413)\n"
               "  each --header line goes to the model server (so does 'Authorization: Bearer\n"
               "  $PLANHOST_API_KEY' when that variable is set); clients cannot add headers\n",
            SRV_DEFAULT_MAX_BODY, SRV_DEFAULT_MAX_CLIENTS, SRV_DEFAULT_MAX_SNAPSHOTS);
    return f == stderr ? 2 : 0;
}

static int number_opt(const char *name, const char *v, long lo, long hi, long *out)
{
    return ph_cli_number("planhost serve", name, v, lo, hi, out);
}

/* One option and its value; 0, or -1 after printing the problem. */
static int one_opt(srv_config *c, opts *o, const char *a, const char *v)
{
    long n;
    if (strcmp(a, "--port") == 0) return number_opt(a, v, 0, 65535, &c->port);
    if (strcmp(a, "--max-clients") == 0) return number_opt(a, v, 1, 1024, &c->max_clients);
    if (strcmp(a, "--max-snapshots") == 0) return number_opt(a, v, 1, 1024, &c->max_snapshots);
    if (strcmp(a, "--max-body") == 0) {
        if (number_opt(a, v, 64, 1L << 30, &n) != 0)
            return -1;
        c->max_body = (size_t)n;
        return 0;
    }
    if (strcmp(a, "--header") == 0)
        return ph_cli_add_header(o, v);
    const char **slot = strcmp(a, "--root") == 0 ? &o->root
                      : strcmp(a, "--url") == 0 ? &o->url
                      : strcmp(a, "--api") == 0 ? &o->api
                      : strcmp(a, "--model") == 0 ? &o->model
                      : strcmp(a, "--cache-file") == 0 ? &o->cache_file : NULL;
    if (!slot) {
        fprintf(stderr, "planhost serve: unknown option '%s'\n", a);
        return -1;
    }
    *slot = v;
    return 0;
}

static const char VALUE_OPTS[] =
    "--port --max-clients --max-snapshots --max-body --root --url --api --model --header --cache-file";

/* Returns 0, 1 for --help, -1 for an error. */
static int parse_opts(int argc, char **argv, srv_config *c, opts *o)
{
    *c = (srv_config){0, SRV_DEFAULT_MAX_CLIENTS, SRV_DEFAULT_MAX_SNAPSHOTS, SRV_DEFAULT_MAX_BODY};
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            return 1;
        if (strcmp(argv[i], "--no-cache") == 0) {
            o->no_cache = 1;
            continue;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, strncmp(argv[i], "--", 2) == 0 && strstr(VALUE_OPTS, argv[i])
                    ? "planhost serve: %s needs a value\n" : "planhost serve: unknown option '%s'\n", argv[i]);
            return -1;
        }
        if (one_opt(c, o, argv[i], argv[i + 1]) != 0)
            return -1;
        i++;
    }
    return ph_cli_parse_opts(0, NULL, o);   /* the shared default for --root */
}

static void on_signal(int sig)
{
    (void)sig;
    got_signal = 1;
    char c = 1;
    ssize_t r = write(signal_fd, &c, 1);
    (void)r;
}

static int server_init(srv_server *s, const srv_config *cfg)
{
    memset(s, 0, sizeof *s);
    s->cfg = *cfg;
    s->jobs_tail = &s->jobs;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);   /* the reader's timed waits */
    int rc = pthread_cond_init(&s->cv, &ca) | pthread_mutex_init(&s->mu, NULL) | pipe(s->wake);
    pthread_condattr_destroy(&ca);
    for (int i = 0; rc == 0 && i < 2; i++)
        fcntl(s->wake[i], F_SETFL, fcntl(s->wake[i], F_GETFL) | O_NONBLOCK);
    signal_fd = s->wake[1];
    return rc == 0 ? 0 : -1;
}

static void server_free(srv_server *s)
{
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    close(s->wake[0]);
    close(s->wake[1]);
    signal_fd = -1;
}

/* Starts the daemon with SIGINT/SIGTERM blocked (its threads inherit that), then takes them
 * on this thread. Returns the port, or 0. */
static unsigned start(srv_server *s)
{
    sigset_t set, old;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, &old);
    unsigned port = srv_http_start(s);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return port;
}

int ph_serve_main(int argc, char **argv)
{
    srv_config cfg;
    opts o = {0};
    int rc = parse_opts(argc, argv, &cfg, &o);
    if (rc != 0)
        return rc > 0 ? usage(stdout) : usage(stderr);
    ph_host *h = ph_cli_open_host(&o, 1);  /* saved scripts reload while it serves */
    if (!h)
        return 1;
    srv_server s;
    unsigned port = 0;
    if (server_init(&s, &cfg) != 0 || !(port = start(&s))) {
        ph_host_close(h);
        return 1;
    }
    printf("planhost serve: listening on http://127.0.0.1:%u\n", port);
    fflush(stdout);
    fprintf(stderr, "planhost serve: model server %s (%s), body <= %zu bytes, <= %ld streams, <= %ld snapshots "
            "per request; SIGINT or SIGTERM stops it\n", o.url ? o.url : "http://127.0.0.1:11434",
            o.api ? o.api : "ollama", cfg.max_body, cfg.max_clients, cfg.max_snapshots);
    loop l = {&s, h, NULL};
    run(&l);
    MHD_stop_daemon(s.daemon);
    ph_host_close(h);
    server_free(&s);
    fprintf(stderr, "planhost serve: stopped\n");
    return 0;
}
