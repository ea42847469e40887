/* poll_bench — one ph_host_poll(h, 0) with 1,000 requests pending and nothing ready (DESIGN.md:
 * <= 100 us). The server is a loopback listener in this program that accepts every
 * connection, reads what comes and never answers (no model, nothing simulated about it but
 * silence). Two shapes: every request in flight on its own connection, and max_in_flight 16
 * (16 in flight, the rest waiting in the host for a slot). Median and p99 of 2,000 polls, CPU
 * time of this process (the listener thread is idle while polls are timed).
 *
 *   poll_bench SNAPSHOT.json */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include "planhost.h"
#include "tree.h"

#define PENDING 1000
#define POLLS 2000

static double cpu_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int listener;
static volatile int stop_listening;

/* Accepts and reads, never writes. */
static void *silent_server(void *ud)
{
    (void)ud;
    struct pollfd fds[PENDING + 8];
    int n = 1;
    fds[0] = (struct pollfd){listener, POLLIN, 0};
    char sink[65536];
    while (!stop_listening) {
        if (poll(fds, (nfds_t)n, 50) <= 0)
            continue;
        for (int i = n - 1; i >= 1; i--)
            if (fds[i].revents && read(fds[i].fd, sink, sizeof sink) <= 0) {
                close(fds[i].fd);
                fds[i] = fds[--n];
            }
        if (fds[0].revents & POLLIN) {
            int c = accept(listener, NULL, NULL);
            if (c >= 0 && n < PENDING + 8)
                fds[n++] = (struct pollfd){c, POLLIN, 0};
            else if (c >= 0)
                close(c);
        }
    }
    for (int i = 1; i < n; i++)
        close(fds[i].fd);
    return NULL;
}

static int listen_loopback(char *url, size_t size)
{
    listener = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    if (listener < 0 || bind(listener, (struct sockaddr *)&a, sizeof a) != 0 || listen(listener, 4096) != 0 ||
        getsockname(listener, (struct sockaddr *)&a, &len) != 0)
        return -1;
    snprintf(url, size, "http://127.0.0.1:%d", ntohs(a.sin_port));
    return 0;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Submits PENDING distinct requests (their own agent and position), lets the transfers start,
 * then times single polls. Returns 0 and fills median/p99, or -1. */
static int measure(const char *url, int max_in_flight, const char *snap, double *med, double *p99, int *pending)
{
    ph_host_config cfg = {.root = PH_SOURCE_ROOT, .url = url, .cache_off = 1, .max_in_flight = max_in_flight,
                          .connect_timeout_ms = 5000};
    ph_error err;
    ph_host *h = ph_host_open(&cfg, &err);
    if (!h)
        return fprintf(stderr, "poll_bench: %s\n", err.message), -1;
    char buf[8192];
    for (int i = 0; i < PENDING; i++) {
        int n = snprintf(buf, sizeof buf, "{\"agent\":\"p%d\",\"t\":%d,%s", i, i, strchr(snap, '{') + 1);
        /* the full tier: its 6 s first-byte limit is far beyond this measurement */
        ph_request_opts o = {.snapshot = buf, .len = (size_t)n, .budget_ms = 600000, .template = "full"};
        if (!ph_host_submit(h, &o, &err))
            return fprintf(stderr, "poll_bench: %s\n", err.message), ph_host_close(h), -1;
    }
    for (int i = 0; i < 100; i++)        /* connections up, requests sent: nothing more to come */
        ph_host_poll(h, 5);
    ph_event ev;
    int ended = 0;
    while (ph_host_next_event(h, &ev))
        if (ev.kind == PH_EVENT_PLAN && ended++ == 0)
            fprintf(stderr, "poll_bench: a request ended before the polls were timed: %.300s\n", ev.json);
    double *t = calloc(POLLS, sizeof *t);
    for (int i = 0; i < POLLS; i++) {
        double c0 = cpu_us();
        ph_host_poll(h, 0);
        t[i] = cpu_us() - c0;
    }
    qsort(t, POLLS, sizeof *t, cmp);
    *med = t[POLLS / 2];
    *p99 = t[POLLS * 99 / 100];
    *pending = ph_host_pending(h);
    free(t);
    ph_host_close(h);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 2)
        return fprintf(stderr, "usage: poll_bench SNAPSHOT.json\n"), 2;
    ph_error err;
    size_t len;
    char *snap = ph_read_file(argv[1], 1u << 20, &len, &err);
    char url[64];
    pthread_t t;
    if (!snap || listen_loopback(url, sizeof url) != 0 || pthread_create(&t, NULL, silent_server, NULL) != 0)
        return fprintf(stderr, "poll_bench: %s\n", snap ? "cannot listen on loopback" : err.message), 2;
    printf("| %d requests pending, nothing ready (a loopback server that never answers) | pending | poll(0) CPU median µs | p99 µs |\n", PENDING);
    printf("|---|---:|---:|---:|\n");
    int shapes[] = {0, 16};
    for (int i = 0; i < 2; i++) {
        double med, p99;
        int pending;
        if (measure(url, shapes[i], snap, &med, &p99, &pending) == 0)
            printf("| %s | %d | %.1f | %.1f |\n", shapes[i] ? "max_in_flight 16: 16 in flight, the rest waiting for a slot"
                                                           : "every request in flight on its own connection",
                   pending, med, p99);
    }
    printf("\nBudget (DESIGN.md): <= 100 µs for one poll with nothing ready.\n");
    stop_listening = 1;
    pthread_join(t, NULL);
    close(listener);
    free(snap);
    return 0;
}
