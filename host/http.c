/* http — non-blocking POSTs over libcurl multi. See http.h.
 *
 * libcurl's socket interface drives the transfers: curl says which sockets to watch
 * (on_socket, into an epoll set) and when its timer is due (on_timer); a poll waits on the
 * epoll set and hands curl only the sockets that are ready. An idle poll therefore costs the
 * same with 1 or 1,000 transfers open (curl_multi_perform would visit every one of them).
 * The transfers' own first-byte and total deadlines are scanned only once the earliest of
 * them is due. Linux (epoll). */
#define _POSIX_C_SOURCE 200809L
#include "http.h"

#include <curl/curl.h>
#include <errno.h>
#include <math.h>
#include <sys/epoll.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"

#define ERROR_BODY_CAP 4096
#define POOL 16        /* easy handles kept for reuse: setting one up costs more than a reset */

typedef struct xfer {
    struct xfer *next, **prev;  /* prev: the pointer that points here */
    unsigned long id;
    CURL *easy;
    struct curl_slist *headers;
    ph_http_callbacks cb;
    void *ud;
    double start_ms, first_byte_ms;
    long first_byte_timeout, total_timeout;
    size_t max_response, received;
    long status;
    int stopped, too_large;
    ph_buf errbody;
    char errbuf[CURL_ERROR_SIZE];
} xfer;

struct ph_http {
    CURLM *multi;
    int epfd;                 /* the sockets curl asked us to watch */
    double timer_at;          /* when curl wants CURL_SOCKET_TIMEOUT (ms, now_ms clock); NAN: never */
    double deadline_at;       /* no transfer's own deadline falls before this (INFINITY: none) */
    xfer *list;
    int running;              /* transfers in the list */
    unsigned long next_id;
    CURL *pool[POOL];
    int npool;
};

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

const char *ph_http_fail_name(ph_http_fail f)
{
    static const char *const names[] = {"ok", "connect", "timeout", "recv", "too_large",
                                        "stopped", "cancelled", "other"};
    return (unsigned)f < sizeof names / sizeof names[0] ? names[f] : "other";
}

/* CURLMOPT_SOCKETFUNCTION: keeps the epoll set in step with what curl wants watched. */
static int on_socket(CURL *e, curl_socket_t s, int what, void *userp, void *socketp)
{
    (void)e, (void)socketp;
    ph_http *h = userp;
    if (what == CURL_POLL_REMOVE) {
        epoll_ctl(h->epfd, EPOLL_CTL_DEL, s, NULL);   /* fails harmlessly once curl closed it */
        return 0;
    }
    struct epoll_event ev = {0};
    ev.events = (what & CURL_POLL_IN ? EPOLLIN : 0u) | (what & CURL_POLL_OUT ? EPOLLOUT : 0u);
    ev.data.fd = s;
    if (epoll_ctl(h->epfd, EPOLL_CTL_MOD, s, &ev) != 0 && errno == ENOENT)
        epoll_ctl(h->epfd, EPOLL_CTL_ADD, s, &ev);
    return 0;
}

/* CURLMOPT_TIMERFUNCTION: when curl next wants to run its timeouts (-1: not at all). */
static int on_timer(CURLM *m, long timeout_ms, void *userp)
{
    (void)m;
    ph_http *h = userp;
    h->timer_at = timeout_ms < 0 ? NAN : now_ms() + (double)timeout_ms;
    return 0;
}

ph_http *ph_http_new(void)
{
    static int global_done;
    if (!global_done && curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return NULL;
    global_done = 1;
    ph_http *h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    h->epfd = epoll_create1(EPOLL_CLOEXEC);
    h->multi = h->epfd >= 0 ? curl_multi_init() : NULL;
    if (!h->multi ||
        curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, on_socket) != CURLM_OK ||
        curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h) != CURLM_OK ||
        curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, on_timer) != CURLM_OK ||
        curl_multi_setopt(h->multi, CURLMOPT_TIMERDATA, h) != CURLM_OK) {
        if (h->multi)
            curl_multi_cleanup(h->multi);
        if (h->epfd >= 0)
            close(h->epfd);
        free(h);
        return NULL;
    }
    h->timer_at = NAN;
    h->deadline_at = INFINITY;
    h->next_id = 1;
    return h;
}

/* The earliest of x's own deadlines still ahead of it (INFINITY: none). */
static double xfer_deadline(const xfer *x)
{
    double d = x->total_timeout > 0 ? x->start_ms + (double)x->total_timeout : INFINITY;
    if (x->first_byte_timeout > 0 && x->first_byte_ms < 0 && x->start_ms + (double)x->first_byte_timeout < d)
        d = x->start_ms + (double)x->first_byte_timeout;
    return d;
}

static size_t on_write(char *p, size_t size, size_t n, void *ud)
{
    xfer *x = ud;
    size_t len = size * n;
    if (x->first_byte_ms < 0)
        x->first_byte_ms = now_ms() - x->start_ms;
    if (!x->status)
        curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &x->status);
    x->received += len;
    if (x->received > x->max_response) {
        x->too_large = 1;
        return 0;                        /* anything but len aborts the transfer */
    }
    if (x->status >= 300) {
        if (x->errbody.len < ERROR_BODY_CAP)
            ph_buf_add(&x->errbody, p, len < ERROR_BODY_CAP ? len : ERROR_BODY_CAP);
        return len;
    }
    if (x->cb.data && x->cb.data(x->ud, p, len)) {
        x->stopped = 1;
        return 0;
    }
    return len;
}

static void xfer_free(ph_http *h, xfer *x)
{
    if (x->easy && h->npool < POOL) {
        curl_easy_reset(x->easy);
        h->pool[h->npool++] = x->easy;
    } else {
        curl_easy_cleanup(x->easy);
    }
    curl_slist_free_all(x->headers);
    ph_buf_free(&x->errbody);
    free(x);
}

/* tchar of RFC 9110, section 5.6.2 */
static int token_char(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* NULL when `line` is a well-formed "Name: value" line, else what is wrong with it. */
static const char *header_problem(const char *line)
{
    const unsigned char *p = (const unsigned char *)line;
    while (token_char(*p))
        p++;
    if (p == (const unsigned char *)line)
        return "has no header name (it should read \"Name: value\")";
    if (*p != ':')
        return "needs a colon after a name of letters, digits and !#$%&'*+-.^_`|~";
    for (p++; *p; p++)
        if ((*p < 0x20 && *p != '\t') || *p == 0x7f)
            return *p == '\r' || *p == '\n' ? "holds a line break" : "holds a control character";
    return NULL;
}

int ph_http_headers_copy(char **dst, int max, const char *const *src, char *why, size_t whylen)
{
    dst[0] = NULL;
    int n = 0;
    for (; src && src[n]; n++) {
        if (n >= max) {
            snprintf(why, whylen, "too many extra headers (at most %d)", max);
            return -1;
        }
        const char *problem = header_problem(src[n]);
        if (problem) {
            /* the name only: a value may be a secret */
            int name = (int)strcspn(src[n], ":\r\n");
            snprintf(why, whylen, "header %d ('%.*s') %s", n + 1, name < 40 ? name : 40, src[n], problem);
            return -1;
        }
    }
    for (int i = 0; i < n; i++) {
        dst[i] = strdup(src[i]);
        dst[i + 1] = NULL;
        if (!dst[i]) {
            ph_http_headers_free(dst);
            snprintf(why, whylen, "out of memory");
            return -1;
        }
    }
    return 0;
}

void ph_http_headers_free(char **list)
{
    for (int i = 0; list[i]; i++)
        free(list[i]);
    list[0] = NULL;
}

/* Appends a NULL-terminated list; NULL (and the list freed) when memory runs out. */
static struct curl_slist *append_lines(struct curl_slist *list, const char *const *lines)
{
    for (const char *const *hd = lines; list && hd && *hd; hd++) {
        struct curl_slist *more = curl_slist_append(list, *hd);
        if (!more)
            curl_slist_free_all(list);
        list = more;
    }
    return list;
}

static int setup_easy(xfer *x, const ph_http_request *req)
{
    CURL *e = x->easy;
    /* "Expect:" turns off the 100-continue round trip. */
    static const char *const fixed[] = {"Content-Type: application/json", "Expect:", NULL};
    x->headers = append_lines(curl_slist_append(NULL, fixed[0]), fixed + 1);
    x->headers = append_lines(x->headers, req->server_headers);
    x->headers = append_lines(x->headers, req->headers);
    long total = req->total_timeout_ms;
    int bad = !x->headers;
    bad |= curl_easy_setopt(e, CURLOPT_URL, req->url) != CURLE_OK;
    if (req->body) {
        bad |= curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)req->body_len) != CURLE_OK;
        bad |= curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, req->body) != CURLE_OK;
    } else {
        bad |= curl_easy_setopt(e, CURLOPT_HTTPGET, 1L) != CURLE_OK;
    }
    bad |= curl_easy_setopt(e, CURLOPT_HTTPHEADER, x->headers) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_WRITEDATA, x) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_PRIVATE, x) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->errbuf) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
                            req->connect_timeout_ms > 0 ? req->connect_timeout_ms : 2000L) != CURLE_OK;
    if (total > 0)   /* a backstop; poll enforces the exact deadline itself */
        bad |= curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, total + 1000L) != CURLE_OK;
    return bad ? -1 : 0;
}

unsigned long ph_http_start(ph_http *h, const ph_http_request *req, const ph_http_callbacks *cb, void *ud)
{
    xfer *x = calloc(1, sizeof *x);
    if (!x)
        return 0;
    x->easy = h->npool ? h->pool[--h->npool] : curl_easy_init();
    x->cb = *cb;
    x->ud = ud;
    x->start_ms = now_ms();
    x->first_byte_ms = -1;
    x->first_byte_timeout = req->first_byte_timeout_ms;
    x->total_timeout = req->total_timeout_ms;
    x->max_response = req->max_response ? req->max_response : (4u << 20);
    ph_buf_init(&x->errbody, ERROR_BODY_CAP * 2);
    if (!x->easy || setup_easy(x, req) != 0 || curl_multi_add_handle(h->multi, x->easy) != CURLM_OK) {
        xfer_free(h, x);
        return 0;
    }
    x->id = h->next_id++;
    x->next = h->list;
    x->prev = &h->list;
    if (h->list)
        h->list->prev = &x->next;
    h->list = x;
    h->running++;
    double d = xfer_deadline(x);
    if (d < h->deadline_at)
        h->deadline_at = d;
    return x->id;
}

/* Unlinks `x` from the running list and the multi handle. */
static void detach(ph_http *h, xfer *x)
{
    *x->prev = x->next;
    if (x->next)
        x->next->prev = x->prev;
    h->running--;
    curl_multi_remove_handle(h->multi, x->easy);
}

static ph_http_fail classify(const xfer *x, CURLcode rc)
{
    if (x->stopped)
        return PH_HTTP_STOPPED;
    if (x->too_large)
        return PH_HTTP_TOO_LARGE;
    switch (rc) {
    case CURLE_OK:
        return PH_HTTP_OK;
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
        return PH_HTTP_CONNECT;
    case CURLE_OPERATION_TIMEDOUT:
        return x->status ? PH_HTTP_TIMEOUT : PH_HTTP_CONNECT;
    case CURLE_RECV_ERROR:
    case CURLE_PARTIAL_FILE:
    case CURLE_GOT_NOTHING:
    case CURLE_SEND_ERROR:
        return PH_HTTP_RECV;
    default:
        return PH_HTTP_OTHER;
    }
}

/* Detaches `x`, reports its result, frees it. */
static void finish(ph_http *h, xfer *x, ph_http_fail fail, const char *message)
{
    detach(h, x);
    if (!x->status)
        curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &x->status);
    if (!message && x->status >= 300)
        message = x->errbody.len ? ph_buf_str(&x->errbody) : "(empty error body)";
    ph_http_result res = {x->status, fail, message, x->first_byte_ms, now_ms() - x->start_ms};
    if (x->cb.done)
        x->cb.done(x->ud, &res);
    xfer_free(h, x);
}

static void read_done(ph_http *h)
{
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(h->multi, &left)) != NULL) {
        if (m->msg != CURLMSG_DONE)
            continue;
        xfer *x = NULL;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&x);
        CURLcode rc = m->data.result;
        ph_http_fail fail = classify(x, rc);
        const char *msg = fail == PH_HTTP_OK || fail == PH_HTTP_STOPPED ? NULL
                          : x->errbuf[0] ? x->errbuf : curl_easy_strerror(rc);
        finish(h, x, fail, msg);
    }
}

/* Ends transfers whose first-byte or total deadline has passed, once the earliest is due;
 * the scan also finds the next earliest. */
static void check_deadlines(ph_http *h)
{
    double t = now_ms();
    if (t < h->deadline_at)
        return;
    double next = INFINITY;
    xfer *x = h->list;
    while (x) {
        xfer *after = x->next;
        double age = t - x->start_ms;
        char msg[128];
        if (x->total_timeout > 0 && age >= (double)x->total_timeout) {
            snprintf(msg, sizeof msg, "no complete answer within %ld ms", x->total_timeout);
            finish(h, x, PH_HTTP_TIMEOUT, msg);
        } else if (x->first_byte_timeout > 0 && x->first_byte_ms < 0 && age >= (double)x->first_byte_timeout) {
            snprintf(msg, sizeof msg, "no first byte within %ld ms", x->first_byte_timeout);
            finish(h, x, PH_HTTP_TIMEOUT, msg);
        } else if (xfer_deadline(x) < next) {
            next = xfer_deadline(x);
        }
        x = after;
    }
    h->deadline_at = next;
}

long ph_http_next_timeout(const ph_http *h)
{
    if (!h->list || isinf(h->deadline_at))
        return -1;
    double d = h->deadline_at - now_ms();
    return d <= 0 ? 0 : (long)ceil(d);
}

/* Hands curl what is ready (waiting at most `wait_ms` for a socket): the ready sockets, its
 * timer when due, then the finished transfers. Goes round again (without waiting) while that
 * made progress, a few times, so one call takes a new transfer from its connect to its
 * request sent; then the passed deadlines. */
static void drive(ph_http *h, int wait_ms)
{
    struct epoll_event ev[64];
    int running;
    for (int round = 0; round < 4; round++) {
        int n = epoll_wait(h->epfd, ev, 64, round ? 0 : wait_ms);
        for (int i = 0; i < n; i++) {
            int mask = (ev[i].events & EPOLLIN ? CURL_CSELECT_IN : 0) |
                       (ev[i].events & EPOLLOUT ? CURL_CSELECT_OUT : 0) |
                       (ev[i].events & (EPOLLERR | EPOLLHUP) ? CURL_CSELECT_ERR : 0);
            curl_multi_socket_action(h->multi, ev[i].data.fd, mask, &running);
        }
        int due = !isnan(h->timer_at) && now_ms() >= h->timer_at;
        if (due) {
            h->timer_at = NAN;     /* on_timer may set it again from inside the call */
            curl_multi_socket_action(h->multi, CURL_SOCKET_TIMEOUT, 0, &running);
        }
        read_done(h);
        if (n <= 0 && !due)
            break;
    }
    check_deadlines(h);
}

int ph_http_poll(ph_http *h, int timeout_ms)
{
    drive(h, 0);
    if (!h->list || timeout_ms == 0)
        return h->running;
    double wait = timeout_ms < 0 ? 1000 : timeout_ms, t = now_ms();
    if (!isnan(h->timer_at) && h->timer_at - t < wait)
        wait = h->timer_at - t;
    if (h->deadline_at - t < wait)
        wait = h->deadline_at - t;
    drive(h, wait > 0 ? (int)ceil(wait) : 0);
    return h->running;
}

int ph_http_running(const ph_http *h)
{
    return h->running;
}

void ph_http_limit(ph_http *h, unsigned long id, long ms)
{
    for (xfer *x = h->list; x; x = x->next)
        if (x->id == id) {
            long at = (long)(now_ms() - x->start_ms) + ms;
            if (x->total_timeout <= 0 || at < x->total_timeout)
                x->total_timeout = at;
            if (xfer_deadline(x) < h->deadline_at)
                h->deadline_at = xfer_deadline(x);
            return;
        }
}

void ph_http_cancel(ph_http *h, unsigned long id)
{
    for (xfer *x = h->list; x; x = x->next)
        if (x->id == id) {
            finish(h, x, PH_HTTP_CANCELLED, "cancelled");
            return;
        }
}

void ph_http_free(ph_http *h)
{
    if (!h)
        return;
    while (h->list) {
        xfer *x = h->list;
        detach(h, x);
        xfer_free(h, x);
    }
    while (h->npool)
        curl_easy_cleanup(h->pool[--h->npool]);
    curl_multi_cleanup(h->multi);
    close(h->epfd);            /* after curl, whose cleanup may still remove sockets */
    free(h);
}
