/* game_loop — how to embed planhost in a game: a fixed-rate frame loop in which N agents ask
 * for plans now and then, and the host's work is measured frame by frame.
 *
 *   game_loop [--url U] [--agents N] [--seconds S] [--fps F] [--every-ms MS] [--root DIR]
 *             [--max-in-flight N] [--simulated] [--json]
 *
 * Each frame: move the little world on, submit a request for every agent whose turn it is
 * (at most one request in flight per agent), call ph_host_poll(h, 0) once, drain the events
 * and apply each plan to its agent, then sleep to the next frame boundary. When S seconds
 * are up it stops asking and keeps running frames until ph_host_pending() is 0, then closes
 * the host and prints what it saw (README.md beside this file explains every figure).
 * Exit status: 0 when every request ended in exactly one plan event, 1 otherwise, 2 on bad
 * options.
 *
 * Uses nothing but the public API (host/planhost.h). The server is not probed: pass
 * --simulated when the URL is a `planhost sim`, and the report says SIMULATED. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "planhost.h"

#define MAX_ENEMIES 3
#define MAP_SIZE 60.0        /* the world is MAP_SIZE x MAP_SIZE cells */
#define DRAIN_LIMIT_MS 30000 /* a request the host never ends is a bug; stop waiting then */

/* ---- options ----------------------------------------------------------------------------- */

typedef struct options {
    const char *url, *root;
    int agents, fps, every_ms, simulated, json, max_in_flight;
    double seconds;
} options;

static void usage(void)
{
    fprintf(stderr, "usage: game_loop [--url U] [--agents N] [--seconds S] [--fps F] [--every-ms MS]\n"
                    "                 [--root DIR] [--max-in-flight N] [--simulated] [--json]\n");
}

/* Returns 0, or -1 after printing what is wrong. */
static int parse_options(int argc, char **argv, options *o)
{
    *o = (options){.url = "http://127.0.0.1:11434", .root = ".", .agents = 100, .fps = 60,
                   .every_ms = 2000, .seconds = 10};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--simulated") == 0) { o->simulated = 1; continue; }
        if (strcmp(a, "--json") == 0) { o->json = 1; continue; }
        if (!v) return fprintf(stderr, "game_loop: %s needs a value (or is unknown)\n", a), -1;
        i++;
        if (strcmp(a, "--url") == 0) o->url = v;
        else if (strcmp(a, "--root") == 0) o->root = v;
        else if (strcmp(a, "--agents") == 0) o->agents = atoi(v);
        else if (strcmp(a, "--fps") == 0) o->fps = atoi(v);
        else if (strcmp(a, "--every-ms") == 0) o->every_ms = atoi(v);
        else if (strcmp(a, "--seconds") == 0) o->seconds = atof(v);
        else if (strcmp(a, "--max-in-flight") == 0) o->max_in_flight = atoi(v);  /* the server's slots */
        else return fprintf(stderr, "game_loop: unknown option %s\n", a), -1;
    }
    if (o->agents < 1 || o->agents > 100000 || o->fps < 1 || o->fps > 1000 || o->every_ms < 1 ||
        !(o->seconds > 0))
        return fprintf(stderr, "game_loop: --agents 1..100000, --fps 1..1000, --every-ms >= 1, --seconds > 0\n"), -1;
    return 0;
}

/* ---- clocks ------------------------------------------------------------------------------ */

static double now_ms(clockid_t clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void sleep_until_ms(double t)
{
    struct timespec ts = {.tv_sec = (time_t)(t / 1e3), .tv_nsec = (long)((t - (double)(time_t)(t / 1e3) * 1e3) * 1e6)};
    if (ts.tv_nsec >= 1000000000L) ts.tv_sec++, ts.tv_nsec -= 1000000000L;
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {}
}

/* Time spent inside planhost calls during one frame: this thread's CPU time (the host does
 * its work on the caller's thread) and the wall time, which would also show any blocking. */
typedef struct meter {
    double cpu_ms, wall_ms, cpu0, wall0;
} meter;

static void enter_host(meter *m)
{
    m->cpu0 = now_ms(CLOCK_THREAD_CPUTIME_ID);
    m->wall0 = now_ms(CLOCK_MONOTONIC);
}

static void leave_host(meter *m)
{
    m->cpu_ms += now_ms(CLOCK_THREAD_CPUTIME_ID) - m->cpu0;
    m->wall_ms += now_ms(CLOCK_MONOTONIC) - m->wall0;
}

/* ---- a growing list of samples, and its percentiles ------------------------------------- */

typedef struct samples {
    double *v;
    size_t n, cap;
} samples;

static void add_sample(samples *s, double x)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 1024;
        double *v = realloc(s->v, cap * sizeof *v);
        if (!v) { fprintf(stderr, "game_loop: out of memory\n"); exit(1); }
        s->v = v, s->cap = cap;
    }
    s->v[s->n++] = x;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Nearest-rank percentile (p in 0..1) of the samples, which it sorts. 0 when empty. */
static double percentile(samples *s, double p)
{
    if (s->n == 0) return 0;
    qsort(s->v, s->n, sizeof *s->v, cmp_double);
    size_t i = (size_t)(p * (double)s->n + 0.999999);
    return s->v[i ? i - 1 : 0];
}

/* ---- the world: agents with a little state that changes every frame ------------------- */

typedef struct enemy {
    int id, hp;
    double x, y;
} enemy;

typedef struct agent {
    char id[16];               /* "a17": the snapshot's "agent", echoed by every event */
    unsigned rng;              /* this agent's own PRNG state: runs are repeatable */
    double x, y, vx, vy;       /* position in cells, velocity in cells per second */
    int hp, ammo;
    double morale, smoke_cd;   /* smoke_cd: seconds until ThrowSmoke is ready again */
    enemy enemies[MAX_ENEMIES];
    int nenemies;
    double due_ms;             /* when this agent asks for its next plan */
    unsigned long pending;     /* the request in flight, 0 when none */
    double submitted_ms;
} agent;

/* xorshift32: small, fast, good enough to make a world wobble. */
static unsigned rnd(agent *a)
{
    unsigned x = a->rng;
    x ^= x << 13, x ^= x >> 17, x ^= x << 5;
    return a->rng = x;
}

static double rnd01(agent *a) { return (double)(rnd(a) >> 8) / 16777216.0; }

static double clamp(double v, double lo, double hi) { return v < lo ? lo : v > hi ? hi : v; }

static void spawn_enemy(agent *a, enemy *e, int id)
{
    *e = (enemy){.id = id, .hp = 40 + (int)(rnd(a) % 61),
                 .x = clamp(a->x + 6 + rnd01(a) * 10, 0, MAP_SIZE - 1), .y = clamp(a->y - 5 + rnd01(a) * 10, 0, MAP_SIZE - 1)};
}

static void init_agent(agent *a, int i, int every_ms)
{
    memset(a, 0, sizeof *a);
    snprintf(a->id, sizeof a->id, "a%d", i);
    a->rng = 2654435761u * (unsigned)(i + 1) | 1u;
    a->x = rnd01(a) * (MAP_SIZE - 20), a->y = rnd01(a) * (MAP_SIZE - 1);
    a->hp = 60 + (int)(rnd(a) % 41), a->ammo = (int)(rnd(a) % 31), a->morale = 0.5 + rnd01(a) / 2;
    a->nenemies = 1 + (int)(rnd(a) % MAX_ENEMIES);
    for (int k = 0; k < a->nenemies; k++) spawn_enemy(a, &a->enemies[k], k + 1);
    a->due_ms = rnd01(a) * every_ms;   /* first requests spread over the first interval */
}

/* One frame of simulation, dt seconds: drift, the odd hit, an enemy dying and another one
 * turning up. Enough change that snapshots differ, little enough that the cache can help. */
static void move_agent(agent *a, double dt)
{
    if (rnd01(a) < dt) {               /* about once a second: a new heading */
        a->vx = (rnd01(a) - 0.5) * 2, a->vy = (rnd01(a) - 0.5) * 2;
    }
    a->x = clamp(a->x + a->vx * dt, 0, MAP_SIZE - 1), a->y = clamp(a->y + a->vy * dt, 0, MAP_SIZE - 1);
    if (rnd01(a) < dt / 5) a->hp -= 5 + (int)(rnd(a) % 16);     /* hit every ~5 s */
    if (rnd01(a) < dt / 3 && a->hp < 100) a->hp += 5;           /* patched up */
    if (a->hp <= 0) a->hp = 100, a->morale = 1;                 /* respawned */
    if (rnd01(a) < dt / 2 && a->ammo > 0) a->ammo -= 1 + (int)(rnd(a) % 5);
    if (a->ammo < 0) a->ammo = 0;
    a->morale = clamp(a->morale + (rnd01(a) - 0.5) * dt * 0.2, 0, 1);
    a->smoke_cd = a->smoke_cd > dt ? a->smoke_cd - dt : 0;
    for (int k = 0; k < a->nenemies; k++) {
        enemy *e = &a->enemies[k];
        e->x = clamp(e->x + (rnd01(a) - 0.5) * dt, 0, MAP_SIZE - 1);
        e->y = clamp(e->y + (rnd01(a) - 0.5) * dt, 0, MAP_SIZE - 1);
        if (rnd01(a) < dt / 8) e->hp -= 20;
        if (e->hp <= 0) spawn_enemy(a, e, e->id + MAX_ENEMIES);  /* a new enemy, a new id */
    }
}

/* Appends printf output at buf + *n; returns -1 (and stops adding) once it does not fit. */
static int append(char *buf, size_t size, size_t *n, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int append(char *buf, size_t size, size_t *n, const char *fmt, ...)
{
    if (*n >= size) return -1;
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(buf + *n, size - *n, fmt, ap);
    va_end(ap);
    *n = k < 0 || (size_t)k >= size - *n ? size : *n + (size_t)k;
    return *n < size ? 0 : -1;
}

/* Writes the agent's snapshot (DESIGN.md, Formats) into buf. Returns its length, or -1
 * when it does not fit. Positions are whole cells, as the tools expect. */
static int write_snapshot(const agent *a, double t, char *buf, size_t size)
{
    size_t n = 0;
    append(buf, size, &n, "{\"agent\":\"%s\",\"t\":%.2f,\"player\":{\"hp\":100,\"pos\":{\"x\":%d,\"y\":%d},"
           "\"stance\":\"stand\",\"orders\":[]},\"me\":{\"hp\":%d,\"ammo\":%d,\"morale\":%.2f,"
           "\"cooldowns\":{\"throw:smoke\":%.1f},\"pos\":{\"x\":%d,\"y\":%d}},\"enemies\":[", a->id, t,
           (int)clamp(a->x - 2, 0, MAP_SIZE), (int)a->y, a->hp, a->ammo, a->morale, a->smoke_cd, (int)a->x, (int)a->y);
    for (int k = 0; k < a->nenemies; k++) {
        const enemy *e = &a->enemies[k];
        append(buf, size, &n, "%s{\"id\":%d,\"pos\":{\"x\":%d,\"y\":%d},\"hp\":%d,\"cover\":\"%s\",\"last_seen\":%.2f}",
               k ? "," : "", e->id, (int)e->x, (int)e->y, e->hp, e->id % 2 ? "low" : "none", t);
    }
    int r = append(buf, size, &n, "],\"pois\":[{\"k\":\"extract\",\"pos\":{\"x\":%d,\"y\":%d}}],"
                   "\"obstacles\":[{\"x\":%d,\"y\":%d},{\"x\":%d,\"y\":%d}],\"objective\":\"extract\"}",
                   (int)MAP_SIZE - 2, (int)MAP_SIZE / 2, (int)a->x + 3, (int)a->y, (int)a->x + 3, (int)a->y + 1);
    return r == 0 ? (int)n : -1;
}

/* ---- what the run counts ---------------------------------------------------------------- */

static const char *const SOURCES[] = {"llm", "cache", "heuristic", "emergency"};
static const char *const CACHE_RESULTS[] = {"hit", "miss", "stale", "coalesced", "off"};
static const char *const REASONS[] = {"timeout", "connect", "stream_error", "parse", "invalid",
                                      "circuit_open", "deadline", "script"};   /* and http_<status> */
#define NSOURCES 4
#define NCACHE 5
#define NREASONS 8

typedef struct game {
    options opt;
    ph_host *host;
    agent *agents;
    double start_ms, frame_ms;
    meter m;                   /* this frame's time inside planhost */
    samples host_cpu_us, host_wall_us, latency_ms;
    long frames, drain_frames, over_budget;
    long submitted, plans, steps, submit_errors, unexpected;
    long source[NSOURCES + 1], cache[NCACHE + 1];   /* the last slot: anything else */
    long fallbacks[NREASONS + 1];                   /* the last slot: http_<status>, others */
} game;

/* ---- talking to the host ---------------------------------------------------------------- */

/* Submits a request for every agent whose turn it is and that has none in flight. */
static void submit_due(game *g, double now)
{
    char snap[2048];
    for (int i = 0; i < g->opt.agents; i++) {
        agent *a = &g->agents[i];
        if (a->pending || now - g->start_ms < a->due_ms) continue;
        int len = write_snapshot(a, (now - g->start_ms) / 1e3, snap, sizeof snap);
        if (len < 0) { g->submit_errors++; continue; }
        ph_request_opts o = {.snapshot = snap, .len = (size_t)len};  /* copied by submit */
        ph_error err;
        enter_host(&g->m);
        unsigned long id = ph_host_submit(g->host, &o, &err);
        leave_host(&g->m);
        if (!id) {             /* no event will follow; a well-formed snapshot never gets here */
            if (g->submit_errors++ == 0) fprintf(stderr, "game_loop: submit failed: %s\n", err.message);
            a->due_ms += g->opt.every_ms;
            continue;
        }
        a->pending = id, a->submitted_ms = now, g->submitted++;
        a->due_ms = now - g->start_ms + g->opt.every_ms + rnd(a) % (unsigned)g->opt.every_ms;
    }
}

/* The string value of "key" at its first occurrence, or "" when absent. A game would use
 * its own JSON library; the fields read here are top-level ones that come before "plan". */
static void json_field(const char *json, const char *key, char *out, size_t size)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":\"", key);
    const char *p = strstr(json, pat), *q = p ? strchr(p + strlen(pat), '"') : NULL;
    size_t n = q ? (size_t)(q - p - strlen(pat)) : 0;
    if (n >= size) n = size - 1;
    memcpy(out, n ? p + strlen(pat) : "", n);
    out[n] = '\0';
}

static int index_of(const char *const *names, int n, const char *s)
{
    for (int i = 0; i < n; i++)
        if (strcmp(names[i], s) == 0) return i;
    return n;
}

/* Applies a plan to its agent: counts the steps and honours two of them (a thrown smoke
 * starts its cooldown, a reload fills the magazine). A game would hand the steps to the
 * agent's behaviour instead. */
static void apply_plan(game *g, agent *a, const char *json)
{
    const char *steps = strstr(json, "\"steps\":["), *end = steps ? strstr(steps, "\"dropped\":") : NULL;
    for (const char *p = steps; p && (p = strstr(p, "\"act\":")) && (!end || p < end); p += 6) {
        g->steps++;
        if (strncmp(p + 6, "\"ThrowSmoke\"", 12) == 0) a->smoke_cd = 8;
        if (strncmp(p + 6, "\"Reload\"", 8) == 0) a->ammo = 30;
    }
}

/* A plan event: the request's one and only end. The event names its agent ("a17"); the
 * request id must be the one that agent is waiting for. */
static void on_plan(game *g, const ph_event *ev, double now)
{
    char who[32], source[16], cache[16];
    json_field(ev->json, "agent", who, sizeof who);
    int i = who[0] == 'a' ? atoi(who + 1) : -1;
    if (i < 0 || i >= g->opt.agents || g->agents[i].pending != ev->request) {
        g->unexpected++;
        return;
    }
    agent *a = &g->agents[i];
    a->pending = 0, g->plans++;
    add_sample(&g->latency_ms, now - a->submitted_ms);
    json_field(ev->json, "source", source, sizeof source);
    json_field(ev->json, "cache", cache, sizeof cache);
    g->source[index_of(SOURCES, NSOURCES, source)]++;
    g->cache[index_of(CACHE_RESULTS, NCACHE, cache)]++;
    apply_plan(g, a, ev->json);
}

/* A fallback event: a tier failed and the request moved on to the next one. Counted by
 * reason, so the report can say why plans came from the heuristic tier. */
static void on_fallback(game *g, const ph_event *ev)
{
    char reason[32];
    json_field(ev->json, "reason", reason, sizeof reason);
    g->fallbacks[index_of(REASONS, NREASONS, reason)]++;
}

/* One poll, then every queued event. Step events let a game start a plan's first step
 * before the rest has arrived; this loop acts on plans and counts fallbacks. */
static void poll_host(game *g)
{
    enter_host(&g->m);
    ph_host_poll(g->host, 0);
    leave_host(&g->m);
    double now = now_ms(CLOCK_MONOTONIC);
    for (;;) {
        ph_event ev;
        enter_host(&g->m);
        int got = ph_host_next_event(g->host, &ev);
        leave_host(&g->m);
        if (!got) break;
        if (ev.kind == PH_EVENT_PLAN) on_plan(g, &ev, now);
        else if (ev.kind == PH_EVENT_FALLBACK) on_fallback(g, &ev);
    }
}

/* ---- the frame loop --------------------------------------------------------------------- */

/* One frame; `asking` is 0 while draining. Returns the wall time the frame's work took. */
static double frame(game *g, int asking)
{
    double t0 = now_ms(CLOCK_MONOTONIC), dt = g->frame_ms / 1e3;
    for (int i = 0; i < g->opt.agents; i++) move_agent(&g->agents[i], dt);
    g->m = (meter){0};
    if (asking) submit_due(g, t0);
    poll_host(g);
    add_sample(&g->host_cpu_us, g->m.cpu_ms * 1e3);
    add_sample(&g->host_wall_us, g->m.wall_ms * 1e3);
    return now_ms(CLOCK_MONOTONIC) - t0;
}

/* Runs frames until the time is up, then until nothing is pending. Returns 0, or -1 when
 * requests were still pending DRAIN_LIMIT_MS after the end. */
static int run(game *g)
{
    double end = g->start_ms + g->opt.seconds * 1e3;
    for (;;) {
        double now = now_ms(CLOCK_MONOTONIC);
        int asking = now < end;
        if (!asking && ph_host_pending(g->host) == 0) return 0;
        if (now > end + DRAIN_LIMIT_MS) return -1;
        if (frame(g, asking) > g->frame_ms) g->over_budget++;
        asking ? g->frames++ : g->drain_frames++;
        /* the next frame boundary still ahead: a frame that ran long skips boundaries */
        double k = (double)(long)((now_ms(CLOCK_MONOTONIC) - g->start_ms) / g->frame_ms) + 1;
        sleep_until_ms(g->start_ms + k * g->frame_ms);
    }
}

/* ---- the report ------------------------------------------------------------------------- */

static int all_answered(const game *g)
{
    return g->submitted == g->plans && g->unexpected == 0 && g->submit_errors == 0 &&
           ph_host_pending(g->host) == 0;
}

static void report_text(game *g)
{
    const options *o = &g->opt;
    printf("game_loop: %d agents, %d fps, %.1f s, each agent asks every %d-%d ms\n", o->agents, o->fps,
           o->seconds, o->every_ms, 2 * o->every_ms);
    printf("server:            %s%s\n", o->url, o->simulated ? "  (SIMULATED: planhost sim, not a real model)" : "");
    printf("frames:            %ld (+%ld draining), %ld over the %.1f ms frame budget\n", g->frames,
           g->drain_frames, g->over_budget, g->frame_ms);
    printf("host work/frame:   median %.0f us, p99 %.0f us, max %.0f us  (thread CPU inside planhost calls)\n",
           percentile(&g->host_cpu_us, 0.5), percentile(&g->host_cpu_us, 0.99), percentile(&g->host_cpu_us, 1));
    printf("  wall in calls:   median %.0f us, p99 %.0f us, max %.0f us\n", percentile(&g->host_wall_us, 0.5),
           percentile(&g->host_wall_us, 0.99), percentile(&g->host_wall_us, 1));
    printf("plans by source:  ");
    for (int i = 0; i < NSOURCES; i++) printf(" %s %ld", SOURCES[i], g->source[i]);
    printf("%s\ncache:            ", g->source[NSOURCES] ? " (other!)" : "");
    for (int i = 0; i < NCACHE; i++) printf(" %s %ld", CACHE_RESULTS[i], g->cache[i]);
    printf("\nfallbacks:        ");
    for (int i = 0; i <= NREASONS; i++)
        if (g->fallbacks[i]) printf(" %s %ld", i < NREASONS ? REASONS[i] : "other", g->fallbacks[i]);
    printf("\nplan latency:      p50 %.0f ms, p95 %.0f ms, p99 %.0f ms, max %.0f ms  (submit to plan event drained)\n",
           percentile(&g->latency_ms, 0.5), percentile(&g->latency_ms, 0.95), percentile(&g->latency_ms, 0.99),
           percentile(&g->latency_ms, 1));
    printf("requests:          submitted %ld %s plans %ld (%ld steps)%s\n", g->submitted,
           g->submitted == g->plans ? "=" : "!=", g->plans, g->steps,
           g->unexpected || g->submit_errors ? " -- unexpected events or failed submits" : "");
}

static void report_json(game *g)
{
    const options *o = &g->opt;
    printf("{\"simulated\":%s,\"agents\":%d,\"fps\":%d,\"seconds\":%g,\"every_ms\":%d,", o->simulated ? "true" : "false",
           o->agents, o->fps, o->seconds, o->every_ms);
    printf("\"frames\":%ld,\"drain_frames\":%ld,\"over_budget\":%ld,\"budget_ms\":%.2f,", g->frames, g->drain_frames,
           g->over_budget, g->frame_ms);
    printf("\"host_us\":{\"median\":%.1f,\"p99\":%.1f,\"max\":%.1f},", percentile(&g->host_cpu_us, 0.5),
           percentile(&g->host_cpu_us, 0.99), percentile(&g->host_cpu_us, 1));
    printf("\"host_wall_us\":{\"median\":%.1f,\"p99\":%.1f,\"max\":%.1f},", percentile(&g->host_wall_us, 0.5),
           percentile(&g->host_wall_us, 0.99), percentile(&g->host_wall_us, 1));
    printf("\"source\":{");
    for (int i = 0; i <= NSOURCES; i++) printf("%s\"%s\":%ld", i ? "," : "", i < NSOURCES ? SOURCES[i] : "other", g->source[i]);
    printf("},\"cache\":{");
    for (int i = 0; i <= NCACHE; i++) printf("%s\"%s\":%ld", i ? "," : "", i < NCACHE ? CACHE_RESULTS[i] : "other", g->cache[i]);
    printf("},\"fallbacks\":{");
    for (int i = 0; i <= NREASONS; i++) printf("%s\"%s\":%ld", i ? "," : "", i < NREASONS ? REASONS[i] : "other", g->fallbacks[i]);
    printf("},\"latency_ms\":{\"p50\":%.1f,\"p95\":%.1f,\"p99\":%.1f,\"max\":%.1f},", percentile(&g->latency_ms, 0.5),
           percentile(&g->latency_ms, 0.95), percentile(&g->latency_ms, 0.99), percentile(&g->latency_ms, 1));
    printf("\"submitted\":%ld,\"plans\":%ld,\"steps\":%ld,\"submit_errors\":%ld,\"unexpected\":%ld,\"ok\":%s}\n",
           g->submitted, g->plans, g->steps, g->submit_errors, g->unexpected, all_answered(g) ? "true" : "false");
}

/* ---- main ------------------------------------------------------------------------------- */

int main(int argc, char **argv)
{
    game g = {0};
    if (parse_options(argc, argv, &g.opt) != 0) return usage(), 2;
    /* The host: the script tree under --root, one model server. Everything else (tier chain,
     * time budgets, cache rules) comes from policies/ and can change while the game runs. */
    ph_host_config cfg = {.root = g.opt.root, .url = g.opt.url, .max_in_flight = g.opt.max_in_flight};
    ph_error err;
    g.host = ph_host_open(&cfg, &err);
    if (!g.host) return fprintf(stderr, "game_loop: %s\n", err.message), 1;
    g.agents = calloc((size_t)g.opt.agents, sizeof *g.agents);
    if (!g.agents) return fprintf(stderr, "game_loop: out of memory\n"), 1;
    for (int i = 0; i < g.opt.agents; i++) init_agent(&g.agents[i], i, g.opt.every_ms);
    g.frame_ms = 1000.0 / g.opt.fps;
    g.start_ms = now_ms(CLOCK_MONOTONIC);
    if (run(&g) != 0)
        fprintf(stderr, "game_loop: %d requests still pending %d ms after the end\n", ph_host_pending(g.host), DRAIN_LIMIT_MS);
    int ok = all_answered(&g);
    g.opt.json ? report_json(&g) : report_text(&g);
    ph_host_close(g.host);
    free(g.agents), free(g.host_cpu_us.v), free(g.host_wall_us.v), free(g.latency_ms.v);
    return ok ? 0 : 1;
}
