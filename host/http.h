/* http — non-blocking HTTP POSTs to model servers over libcurl's multi interface.
 *
 * One ph_http drives many transfers from the caller's thread: ph_http_poll waits on the
 * sockets (or the timeout) and delivers body bytes as they arrive. Connections are reused
 * between requests. Each transfer has a connect, a first-byte and a total timeout, a cap on
 * response bytes, and can be cancelled; the data callback can stop it (the plan has closed,
 * so the server should stop generating). Error bodies (status >= 400) are kept (capped) for
 * the message instead of being passed on. An idle poll costs the same however many
 * transfers are open (libcurl's socket interface over epoll). Also checks the extra header
 * lines callers send. Knows nothing of Lua, plans or formats.
 * Depends on libcurl, buf and Linux epoll. */
#ifndef PH_HTTP_H
#define PH_HTTP_H

#include <stddef.h>

typedef enum ph_http_fail {
    PH_HTTP_OK = 0,        /* the body ended normally (any status; see status) */
    PH_HTTP_CONNECT,       /* could not connect (refused, unreachable, connect timeout) */
    PH_HTTP_TIMEOUT,       /* first byte or total timeout */
    PH_HTTP_RECV,          /* the connection broke mid-body */
    PH_HTTP_TOO_LARGE,     /* the response passed max_response bytes */
    PH_HTTP_STOPPED,       /* the data callback asked to stop (not a failure) */
    PH_HTTP_CANCELLED,     /* ph_http_cancel */
    PH_HTTP_OTHER,
} ph_http_fail;

typedef struct ph_http_result {
    long status;           /* HTTP status, 0 when none arrived */
    ph_http_fail fail;
    const char *message;   /* what went wrong, or the error body for status >= 400 */
    double first_byte_ms;  /* since start; -1 when no body byte arrived */
    double total_ms;
} ph_http_result;

typedef struct ph_http_callbacks {
    /* Body bytes of a 2xx response. Return nonzero to stop the transfer. */
    int (*data)(void *ud, const char *bytes, size_t len);
    /* Called once per transfer, last. */
    void (*done)(void *ud, const ph_http_result *res);
} ph_http_callbacks;

typedef struct ph_http_request {
    const char *url;
    const char *body;          /* copied; NULL: a GET instead of a POST */
    size_t body_len;
    const char *const *server_headers; /* the endpoint's own "Name: value" lines (an API
                               key, say), sent first; NULL-terminated; may be NULL */
    const char *const *headers;/* the request's extra lines, NULL-terminated; may be NULL */
    long connect_timeout_ms;   /* 0: 2,000 */
    long first_byte_timeout_ms;/* 0: none */
    long total_timeout_ms;     /* 0: none */
    size_t max_response;       /* 0: 4 MiB */
} ph_http_request;

typedef struct ph_http ph_http;

/* Copies a NULL-terminated list of extra header lines into `dst`, which has room for `max`
 * lines and the NULL after them. Each line must read "Name: value": a name of token
 * characters, a colon, and a value without CR, LF or other control bytes (so no line can
 * smuggle in a header or a request of its own). Returns 0, or -1 with `why` naming the bad
 * line (then `dst` holds nothing to free). A NULL `src` copies nothing. */
int ph_http_headers_copy(char **dst, int max, const char *const *src, char *why, size_t whylen);
/* Frees the lines of a list ph_http_headers_copy filled, leaving it empty. */
void ph_http_headers_free(char **list);

/* NULL when libcurl or the epoll descriptor cannot be set up. Free with ph_http_free
 * (cancels what is running, without calling done). */
ph_http *ph_http_new(void);
void ph_http_free(ph_http *h);

/* Starts a POST (or a GET: body NULL). `cb` is copied; `ud` is passed to it. Returns a
 * transfer id > 0, or 0 when it cannot start (then done is never called). */
unsigned long ph_http_start(ph_http *h, const ph_http_request *req, const ph_http_callbacks *cb, void *ud);

/* Cancels a running transfer; its done callback runs with PH_HTTP_CANCELLED before this
 * returns. Unknown ids are ignored. */
void ph_http_cancel(ph_http *h, unsigned long id);

/* Waits at most `timeout_ms` for socket activity, then runs callbacks for what arrived and
 * what finished or timed out. Returns the number of transfers still running. */
int ph_http_poll(ph_http *h, int timeout_ms);

/* Shortens a running transfer: it ends (PH_HTTP_TIMEOUT) at the latest `ms` from now.
 * Unknown ids are ignored; a sooner deadline already set stays. */
void ph_http_limit(ph_http *h, unsigned long id, long ms);

/* Transfers running now. */
int ph_http_running(const ph_http *h);

/* Milliseconds until the earliest timeout among running transfers, or -1 when none. */
long ph_http_next_timeout(const ph_http *h);

const char *ph_http_fail_name(ph_http_fail f);

#endif
