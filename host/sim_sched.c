/* sim_sched — parallel slots, the FIFO queue in front of them, the prefix cache, the model
 * load, and the cancellable waits every delay of the simulator goes through.
 *
 * Like llama.cpp's server: N slots serve N requests at once; a request beyond that waits
 * its turn (first come, first served). Each slot remembers the last prompt it prefilled,
 * and a new request takes the free slot whose prompt shares the longest prefix with its
 * own, so that prefix need not be prefilled again. The model loads once, on the first request.
 *
 * Waits never spin: they sleep in slices of at most 100 ms and give up when the server
 * stops (sim_stopping) or the client's socket reads end-of-file. Thread-safe. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "sim.h"

#define SLICE_S 0.1

typedef struct waiter {
    struct waiter *next;
} waiter;

typedef struct slot {
    char *prompt;               /* owned; the prompt it last held */
    size_t len;
    int busy;
} slot;

struct sim_sched {
    pthread_mutex_t mu;
    pthread_cond_t cv;          /* a slot freed, the queue moved, or shutdown */
    slot *slots;
    int nslots, busy;
    waiter *head, *tail;        /* the FIFO queue */
    int load_started;
    double load_end;
    unsigned long done;         /* generations finished (or given up) */
};

double sim_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

sim_sched *sim_sched_new(int nslots)
{
    sim_sched *s = calloc(1, sizeof *s);
    if (!s || !(s->slots = calloc((size_t)nslots, sizeof *s->slots)))
        return free(s), NULL;
    s->nslots = nslots;
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&s->cv, &attr);
    pthread_condattr_destroy(&attr);
    pthread_mutex_init(&s->mu, NULL);
    return s;
}

void sim_sched_free(sim_sched *s)
{
    if (!s)
        return;
    for (int i = 0; i < s->nslots; i++)
        free(s->slots[i].prompt);
    free(s->slots);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

static void unlink_waiter(sim_sched *s, waiter *w)
{
    waiter **pp = &s->head, *prev = NULL;
    while (*pp && *pp != w)
        prev = *pp, pp = &(*pp)->next;
    if (!*pp)
        return;
    *pp = w->next;
    if (s->tail == w)
        s->tail = prev;
}

static size_t common_prefix(const char *a, size_t alen, const char *b, size_t blen)
{
    size_t n = alen < blen ? alen : blen, i = 0;
    while (i < n && a[i] == b[i])
        i++;
    return i;
}

/* The free slot sharing the longest prefix with the prompt (the lowest on ties). */
static int pick_slot(sim_sched *s, const char *prompt, size_t len, size_t *common)
{
    int best = -1;
    size_t best_n = 0;
    for (int i = 0; i < s->nslots; i++) {
        if (s->slots[i].busy)
            continue;
        size_t n = s->slots[i].prompt ? common_prefix(s->slots[i].prompt, s->slots[i].len, prompt, len) : 0;
        if (best < 0 || n > best_n)
            best = i, best_n = n;
    }
    *common = best_n;
    return best;
}

static void remember(slot *sl, const char *prompt, size_t len)
{
    free(sl->prompt);
    sl->prompt = malloc(len ? len : 1);
    sl->len = sl->prompt ? len : 0;
    if (sl->prompt)
        memcpy(sl->prompt, prompt, len);
}

static void wait_slice(sim_sched *s)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_nsec += (long)(SLICE_S * 1e9);
    if (ts.tv_nsec >= 1000000000L)
        ts.tv_sec++, ts.tv_nsec -= 1000000000L;
    pthread_cond_timedwait(&s->cv, &s->mu, &ts);
}

int sim_sched_acquire(sim_sched *s, sim_conn *c, const char *prompt, size_t len, size_t *common,
                      unsigned long *done_before)
{
    waiter me = {NULL};
    pthread_mutex_lock(&s->mu);
    if (s->tail)
        s->tail->next = &me;
    else
        s->head = &me;
    s->tail = &me;
    while (s->head != &me || s->busy >= s->nslots) {
        if (!sim_conn_alive(c)) {
            unlink_waiter(s, &me);
            pthread_cond_broadcast(&s->cv);
            pthread_mutex_unlock(&s->mu);
            return -1;
        }
        wait_slice(s);
    }
    unlink_waiter(s, &me);
    int i = pick_slot(s, prompt, len, common);
    s->slots[i].busy = 1;
    s->busy++;
    *done_before = s->done;
    pthread_cond_broadcast(&s->cv);   /* the next in line may fit in another slot */
    pthread_mutex_unlock(&s->mu);
    return i;
}

void sim_sched_remember(sim_sched *s, int i, const char *prompt, size_t len)
{
    pthread_mutex_lock(&s->mu);
    if (i >= 0 && i < s->nslots)
        remember(&s->slots[i], prompt, len);
    pthread_mutex_unlock(&s->mu);
}

void sim_sched_release(sim_sched *s, int i)
{
    pthread_mutex_lock(&s->mu);
    if (i >= 0 && i < s->nslots && s->slots[i].busy) {
        s->slots[i].busy = 0;
        s->busy--;
        s->done++;
    }
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

int sim_sched_busy(sim_sched *s)
{
    pthread_mutex_lock(&s->mu);
    int n = s->busy;
    pthread_mutex_unlock(&s->mu);
    return n;
}

double sim_sched_load_left(sim_sched *s, double load_s)
{
    pthread_mutex_lock(&s->mu);
    double now = sim_now();
    if (!s->load_started)
        s->load_started = 1, s->load_end = now + load_s;
    double left = s->load_end - now;
    pthread_mutex_unlock(&s->mu);
    return left > 0 ? left : 0;
}

void sim_sched_wake(sim_sched *s)
{
    pthread_mutex_lock(&s->mu);
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

/* After poll said the socket is readable: 0 when the client closed it. Bytes waiting (a
 * pipelined request) make the socket useless as a signal; stop watching it. */
static int peer_open(sim_conn *c)
{
    char ch;
    ssize_t r = recv(c->fd, &ch, 1, MSG_PEEK);
    if (r > 0) {
        c->fd_blind = 1;
        return 1;
    }
    return r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR);
}

static int watching(const sim_conn *c) { return c->fd >= 0 && !c->fd_blind; }

int sim_conn_alive(sim_conn *c)
{
    if (sim_stopping())
        return 0;
    if (!watching(c))
        return 1;
    struct pollfd p = {c->fd, POLLIN, 0};
    if (poll(&p, 1, 0) <= 0)
        return 1;
    return !(p.revents & (POLLERR | POLLNVAL)) && peer_open(c);
}

int sim_conn_sleep(sim_conn *c, double seconds)
{
    double end = sim_now() + seconds;
    for (;;) {
        if (sim_stopping())
            return -1;
        double left = end - sim_now();
        if (left <= 0)
            return 0;
        if (left > SLICE_S)
            left = SLICE_S;
        int ms = (int)(left * 1e3);
        if (ms < 1 || !watching(c)) {
            struct timespec ts = {0, (long)(left * 1e9)};
            nanosleep(&ts, NULL);
            continue;
        }
        struct pollfd p = {c->fd, POLLIN, 0};
        if (poll(&p, 1, ms) > 0 && ((p.revents & (POLLERR | POLLNVAL)) || !peer_open(c)))
            return -1;
    }
}
