/* serve_http — the libmicrohttpd side of `planhost serve`.
 *
 *   POST /v1/plan   body (serve_body.c) -> a submit job for the main loop -> 200 with an
 *                   NDJSON stream (chunked) of the host's events; X-Planhost-Requests lists
 *                   the request id of each snapshot in order (0: refused, see the error line)
 *   GET  /metrics   the host's Prometheus text     GET /health  {"status","generation","pending"}
 *   anything else   404 (unknown path) or 405 (known path, other method), JSON error bodies
 *
 * Runs on libmicrohttpd's threads (one per connection) and never touches the ph_host: every
 * host call is a srv_job the main loop answers (serve.h). Limits: a Content-Length over
 * --max-body gets 413 before the body is read; a chunked upload is cut off at the cap (413
 * where libmicrohttpd allows a reply mid-upload, else the connection is closed); past
 * --max-clients streams, 503 with Retry-After. Depends on serve_body, buf, jsonw. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <microhttpd.h>

#include "jsonw.h"
#include "serve.h"

#define IDLE_TIMEOUT_S 60         /* between requests on a kept-alive connection, and uploads */
#define READER_BLOCK (16u << 10)
#define WAIT_SLICE_MS 50           /* how often a waiting reader looks at the client's socket */
#define RETRY_AFTER_S "1"
#define EXTRA_CONNECTIONS 32       /* beyond max_clients: /health, /metrics, 503 answers */

/* ---- replies ------------------------------------------------------------------------- */

static enum MHD_Result queue(struct MHD_Connection *mc, unsigned status, struct MHD_Response *r,
                             const char *type)
{
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    enum MHD_Result rc = MHD_queue_response(mc, status, r);
    MHD_destroy_response(r);
    return rc;
}

/* {"error":msg} (and "offset" when `off` >= 0), with an optional extra header. */
static enum MHD_Result reply_error(struct MHD_Connection *mc, unsigned status, const char *msg, long long off,
                                   const char *header, const char *value)
{
    ph_buf b;
    ph_buf_init(&b, 1u << 16);
    ph_buf_adds(&b, "{\"error\":");
    ph_jsonw_cstr(&b, msg);
    if (off >= 0)
        ph_buf_addf(&b, ",\"offset\":%lld", off);
    ph_buf_adds(&b, "}\n");
    struct MHD_Response *r = MHD_create_response_from_buffer(b.len, (void *)ph_buf_str(&b), MHD_RESPMEM_MUST_COPY);
    if (r && header)
        MHD_add_response_header(r, header, value);
    enum MHD_Result rc = queue(mc, status, r, "application/json");
    ph_buf_free(&b);
    return rc;
}

/* GET /health and GET /metrics: the main loop writes the body. */
static enum MHD_Result reply_job(srv_server *s, struct MHD_Connection *mc, srv_job_kind kind)
{
    srv_job job = {.kind = kind};
    if (srv_ask(s, &job) != 0)
        return reply_error(mc, MHD_HTTP_SERVICE_UNAVAILABLE, "the server is stopping", -1, NULL, NULL);
    if (!job.reply)
        return reply_error(mc, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory", -1, NULL, NULL);
    const char *type = kind == SRV_JOB_METRICS ? "text/plain; version=0.0.4; charset=utf-8" : "application/json";
    return queue(mc, MHD_HTTP_OK, MHD_create_response_from_buffer(job.reply_len, job.reply, MHD_RESPMEM_MUST_FREE),
                 type);
}

/* ---- the streamed response ----------------------------------------------------------- */

/* Zero once the client has closed its side (or the socket failed). */
static int peer_open(int fd)
{
    if (fd < 0)
        return 1;
    struct pollfd p = {fd, POLLIN, 0};
    if (poll(&p, 1, 0) <= 0)
        return 1;
    if (p.revents & (POLLERR | POLLNVAL))
        return 0;
    char ch;
    ssize_t r = recv(fd, &ch, 1, MSG_PEEK | MSG_DONTWAIT);
    return r > 0 || (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR));
}

static void deadline_in(struct timespec *ts, long ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_nsec += ms * 1000000L;
    ts->tv_sec += ts->tv_nsec / 1000000000L;
    ts->tv_nsec %= 1000000000L;
}

typedef struct reader_ctx {
    srv_server *srv;
    srv_stream *st;
} reader_ctx;

/* Hands out what the main loop has buffered; waits (in slices, watching the socket) while
 * nothing is; ends after the last plan event. */
static ssize_t reader(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    reader_ctx *rc = cls;
    srv_stream *st = rc->st;
    ssize_t n = 0;
    pthread_mutex_lock(&rc->srv->mu);
    for (;;) {
        size_t avail = st->out.len - st->out_off;
        if (avail) {
            n = (ssize_t)(avail < max ? avail : max);
            memcpy(buf, st->out.data + st->out_off, (size_t)n);
            st->out_off += (size_t)n;
            if (st->out_off == st->out.len)
                ph_buf_reset(&st->out), st->out_off = 0;
            break;
        }
        if (st->failed || st->gone) {
            n = MHD_CONTENT_READER_END_WITH_ERROR;
            break;
        }
        if (st->ended) {
            n = MHD_CONTENT_READER_END_OF_STREAM;
            break;
        }
        if (!peer_open(st->fd)) {
            st->gone = 1;
            srv_wake(rc->srv);
            continue;
        }
        struct timespec ts;
        deadline_in(&ts, WAIT_SLICE_MS);
        pthread_cond_timedwait(&rc->srv->cv, &rc->srv->mu, &ts);
    }
    pthread_mutex_unlock(&rc->srv->mu);
    return n;
}

static void reader_done(void *cls)
{
    reader_ctx *rc = cls;
    pthread_mutex_lock(&rc->srv->mu);
    srv_stream_drop(rc->st);
    pthread_mutex_unlock(&rc->srv->mu);
    free(rc);
}

/* "7,8,0,9": each snapshot's request id, in order (fixed once the submit job is done). */
static void request_ids(const srv_stream *st, ph_buf *b)
{
    for (int i = 0; i < st->in.nsnap; i++)
        ph_buf_addf(b, "%s%lu", i ? "," : "", st->ids[i]);
}

static enum MHD_Result start_stream(srv_server *s, struct MHD_Connection *mc, srv_stream *st)
{
    reader_ctx *rc = malloc(sizeof *rc);
    struct MHD_Response *r = rc ? MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, READER_BLOCK, reader, rc,
                                                                    reader_done) : NULL;
    if (!r) {
        free(rc);
        return MHD_NO;
    }
    *rc = (reader_ctx){s, st};
    pthread_mutex_lock(&s->mu);
    st->refs++;                                 /* the response's */
    pthread_mutex_unlock(&s->mu);
    ph_buf ids;
    ph_buf_init(&ids, 32u * 4096);
    request_ids(st, &ids);
    MHD_add_response_header(r, "X-Planhost-Requests", ph_buf_str(&ids));
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    ph_buf_free(&ids);
    /* A gap between events may outlast the idle timeout (it lasts up to a request's budget),
     * so the stream has none: the host's budgets bound it and the reader watches the
     * socket. Without one, the connection must not be kept alive after the stream. */
    MHD_set_connection_option(mc, MHD_CONNECTION_OPTION_TIMEOUT, 0u);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
    return queue(mc, MHD_HTTP_OK, r, "application/x-ndjson");
}

/* ---- POST /v1/plan --------------------------------------------------------------------- */

/* The first call: refuses early (client cap, Content-Length over the cap) or sets up the
 * stream that collects the upload. */
static enum MHD_Result plan_begin(srv_server *s, struct MHD_Connection *mc, void **con_cls)
{
    const char *cl = MHD_lookup_connection_value(mc, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    char msg[200];
    if (cl && strtoull(cl, NULL, 10) > s->cfg.max_body) {
        snprintf(msg, sizeof msg, "request body too large: %s bytes, the limit is %zu (--max-body)", cl,
                 s->cfg.max_body);
        return reply_error(mc, MHD_HTTP_CONTENT_TOO_LARGE, msg, -1, NULL, NULL);
    }
    srv_stream *st = calloc(1, sizeof *st);
    pthread_mutex_lock(&s->mu);
    int full = s->clients >= s->cfg.max_clients, stopping = s->stopping;
    if (st && !full && !stopping)
        s->clients++;
    pthread_mutex_unlock(&s->mu);
    if (!st || full || stopping) {
        free(st);
        snprintf(msg, sizeof msg, stopping ? "the server is stopping"
                 : "too many streaming clients: at most %ld at once (--max-clients)", s->cfg.max_clients);
        return reply_error(mc, MHD_HTTP_SERVICE_UNAVAILABLE, msg, -1, MHD_HTTP_HEADER_RETRY_AFTER, RETRY_AFTER_S);
    }
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(mc, MHD_CONNECTION_INFO_CONNECTION_FD);
    st->refs = 1;                               /* the connection's, dropped in completed() */
    st->fd = ci ? ci->connect_fd : -1;
    ph_buf_init(&st->body, s->cfg.max_body);
    ph_buf_init(&st->out, SRV_MAX_OUT);
    *con_cls = st;
    return MHD_YES;
}

/* The whole body is in: check it, have the main loop submit it, stream the answer. */
static enum MHD_Result plan_run(srv_server *s, struct MHD_Connection *mc, srv_stream *st)
{
    if (st->too_large)
        return MHD_YES;                         /* plan_upload has answered 413 */
    if (srv_body_parse(st->body.data ? st->body.data : "", st->body.len, (int)s->cfg.max_snapshots, &st->in) != 0)
        return reply_error(mc, st->in.status, st->in.error, (long long)st->in.offset, NULL, NULL);
    st->ids = calloc((size_t)st->in.nsnap, sizeof *st->ids);
    if (!st->ids)
        return reply_error(mc, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory", -1, NULL, NULL);
    srv_job job = {.kind = SRV_JOB_SUBMIT, .stream = st};
    if (srv_ask(s, &job) != 0 || job.refused)
        return reply_error(mc, MHD_HTTP_SERVICE_UNAVAILABLE, "the server is stopping", -1,
                           MHD_HTTP_HEADER_RETRY_AFTER, RETRY_AFTER_S);
    return start_stream(s, mc, st);
}

static enum MHD_Result plan_upload(srv_stream *st, struct MHD_Connection *mc, const char *data, size_t *size)
{
    if (!st->too_large && ph_buf_add(&st->body, data, *size) != 0) {
        /* A chunked upload past the cap: answer 413 if libmicrohttpd lets us queue a reply
         * mid-upload (newer versions do; it then reads no more), else close the connection. */
        st->too_large = 1;
        ph_buf_free(&st->body);
        if (reply_error(mc, MHD_HTTP_CONTENT_TOO_LARGE, "request body too large (--max-body)", -1, NULL, NULL)
            != MHD_YES)
            return MHD_NO;
    }
    *size = 0;
    return MHD_YES;
}

/* ---- routing --------------------------------------------------------------------------- */

static enum MHD_Result wrong_method(struct MHD_Connection *mc, const char *method, const char *url,
                                    const char *allow)
{
    char msg[300];
    snprintf(msg, sizeof msg, "%.20s is not allowed on %.200s (use %s)", method, url, allow);
    return reply_error(mc, MHD_HTTP_METHOD_NOT_ALLOWED, msg, -1, MHD_HTTP_HEADER_ALLOW, allow);
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *mc, const char *url, const char *method,
                               const char *version, const char *upload, size_t *upload_size, void **con_cls)
{
    (void)version;
    srv_server *s = cls;
    srv_stream *st = *con_cls;
    if (st) {
        if (*upload_size)
            return plan_upload(st, mc, upload, upload_size);
        return plan_run(s, mc, st);
    }
    int get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
    if (strcmp(url, "/v1/plan") == 0)
        return strcmp(method, "POST") == 0 ? plan_begin(s, mc, con_cls) : wrong_method(mc, method, url, "POST");
    if (strcmp(url, "/health") == 0 || strcmp(url, "/metrics") == 0) {
        if (!get)
            return wrong_method(mc, method, url, "GET");
        return reply_job(s, mc, url[1] == 'h' ? SRV_JOB_HEALTH : SRV_JOB_METRICS);
    }
    char msg[400];
    snprintf(msg, sizeof msg, "no such endpoint: %.20s %.200s (planhost serve answers POST /v1/plan, "
             "GET /metrics, GET /health)", method, url);
    return reply_error(mc, MHD_HTTP_NOT_FOUND, msg, -1, NULL, NULL);
}

/* The connection is over (finished, failed or abandoned): its stream gives back the client
 * slot, and if it had not ended the main loop cancels what is left of it. */
static void completed(void *cls, struct MHD_Connection *mc, void **con_cls, enum MHD_RequestTerminationCode toe)
{
    (void)mc, (void)toe;
    srv_server *s = cls;
    srv_stream *st = *con_cls;
    if (!st)
        return;
    *con_cls = NULL;
    pthread_mutex_lock(&s->mu);
    if (!st->ended)
        st->gone = 1;
    s->clients--;
    srv_stream_drop(st);
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    srv_wake(s);
}

/* ---- the daemon ------------------------------------------------------------------------ */

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    fputs("planhost serve: libmicrohttpd: ", stderr);
    vfprintf(stderr, fmt, ap);
}

unsigned srv_http_start(srv_server *s)
{
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)s->cfg.port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_ITC |
                     MHD_USE_ERROR_LOG;
    s->daemon = MHD_start_daemon(flags, (uint16_t)s->cfg.port, NULL, NULL, handler, s,
                                 MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
                                 MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
                                 MHD_OPTION_NOTIFY_COMPLETED, completed, s,
                                 MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)IDLE_TIMEOUT_S,
                                 MHD_OPTION_CONNECTION_LIMIT, (unsigned)(s->cfg.max_clients + EXTRA_CONNECTIONS),
                                 MHD_OPTION_END);
    if (!s->daemon) {
        fprintf(stderr, "planhost serve: cannot listen on 127.0.0.1:%ld\n", s->cfg.port);
        return 0;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
    return info ? info->port : (unsigned)s->cfg.port;
}
