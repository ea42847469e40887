/* host — the host object: the serving generation, hot reload, the event queue.
 *
 * Reload: poll stats the script files every watch interval; when their signature changes
 * and then holds still for one more interval (so a save caught half-written is not loaded),
 * a new generation is built from a fresh read, self-checked against the example snapshots,
 * and swapped in with one pointer assignment. A failure queues a reload event with ok:false
 * and leaves the old generation serving. Depends on script, tree, selfcheck, jsonw. */
#define _POSIX_C_SOURCE 200809L
#include "host.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cache.h"
#include "jsonw.h"
#include "metrics.h"
#include "request.h"
#include "tree.h"
#include "wire.h"

typedef struct req_node {
    struct req_node *next;
    ph_req *req;
    int finished;
} req_node;

typedef struct queued_event {
    struct queued_event *next;
    ph_event ev;
    char *json;
} queued_event;

struct ph_host {
    char *root;
    ph_gen *gen;                  /* serving generation (one reference held) */
    unsigned next_id;             /* number of the next generation to build */
    int watch, interval_ms;
    uint64_t signature;           /* of the files the serving generation was read from */
    uint64_t pending;             /* a changed signature waiting to hold still */
    int has_pending;
    double next_check_ms;
    queued_event *head, *tail;
    queued_event *taken;          /* the last event handed out, freed on the next take */
    ph_http *http;
    ph_req_env env;
    ph_endpoint endpoints[PH_MAX_ENDPOINTS];
    int nendpoints;
    char *keep_alive;
    int budget_ms;
    unsigned long next_request;
    req_node *requests;           /* pending, and finished ones not yet swept; oldest first */
    req_node *last;               /* the newest, where submit appends */
    unsigned long slots_freed;    /* endpoint transfers ended, as of the last tick */
    int max_pending;
    size_t max_snapshot;
    int npending;                 /* nodes not finished (counted from a successful submit) */
    ph_latency *latency;
    ph_cache *cache;              /* shared by every generation: keys carry the script hash */
    ph_metrics *metrics;
    ph_batcher *batcher;
    char *cache_file;
};

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void queue_event(void *host, ph_event_kind kind, unsigned long request, void *user, ph_buf *json)
{
    ph_host *h = host;
    queued_event *q = calloc(1, sizeof *q);
    if (!q) {
        ph_buf_free(json);
        return;
    }
    q->ev.kind = kind;
    q->ev.request = request;
    q->ev.user = user;
    q->ev.len = json->len;
    q->json = ph_buf_take(json);
    q->ev.json = q->json;
    if (h->tail)
        h->tail->next = q;
    else
        h->head = q;
    h->tail = q;
}

/* Builds and self-checks a generation from the files on disk. */
static ph_gen *build_generation(ph_host *h, unsigned id, ph_error *err)
{
    ph_tree tree;
    if (ph_tree_read(h->root, PH_MAX_SCRIPT_FILE, &tree, err) != 0)
        return NULL;
    ph_gen *g = ph_gen_load(&tree, id, err);
    if (!g)
        return NULL;
    ph_snapshot_set set;
    if (ph_host_snapshots(h, &set, err) != 0) {
        ph_gen_release(g);
        return NULL;
    }
    int failed = ph_check_generation(g, &set, NULL, NULL, err);
    ph_snapshots_free(&set);
    if (failed) {
        ph_gen_release(g);
        return NULL;
    }
    return g;
}

static void queue_reload_event(ph_host *h, unsigned id, const ph_error *err)
{
    ph_buf b;
    ph_buf_init(&b, 8192);
    ph_buf_addf(&b, "{\"event\":\"reload\",\"ok\":%s,\"generation\":%u", err ? "false" : "true", id);
    if (err) {
        ph_buf_addf(&b, ",\"serving\":%u,\"code\":\"%s\",\"error\":", ph_gen_id(h->gen), ph_code_name(err->code));
        ph_jsonw_cstr(&b, err->message);
        ph_jsonw_key(&b, "where", 0);
        ph_jsonw_cstr(&b, err->where);
    } else {
        ph_buf_addf(&b, ",\"hash\":\"%016llx\",\"templates\":%d,\"files\":%d",
                    (unsigned long long)ph_gen_hash(h->gen), ph_gen_ntemplates(h->gen),
                    ph_gen_tree(h->gen)->nfiles);
    }
    ph_buf_adds(&b, "}");
    queue_event(h, PH_EVENT_RELOAD, 0, NULL, &b);
}

int ph_host_reload(ph_host *h, ph_error *err)
{
    ph_error local;
    ph_error *e = err ? err : &local;
    unsigned id = h->next_id++;
    uint64_t sig = ph_tree_signature(h->root);
    ph_gen *g = build_generation(h, id, e);
    h->signature = sig;
    h->has_pending = 0;
    ph_metrics_reload(h->metrics, g != NULL);
    if (!g) {
        queue_reload_event(h, id, e);
        return -1;
    }
    ph_gen_release(h->gen);
    h->gen = g;
    queue_reload_event(h, id, NULL);
    return 0;
}

static void mark_finished(ph_host *h, req_node *n)
{
    if (!n->finished) {
        n->finished = 1;
        h->npending--;
    }
}

static void request_finished(void *host, ph_req *r)
{
    ph_host *h = host;
    for (req_node *n = h->requests; n; n = n->next)
        if (n->req == r)
            mark_finished(h, n);
}

/* Frees requests whose plan event is queued. Runs outside every request callback. */
static void sweep_requests(ph_host *h)
{
    req_node **p = &h->requests;
    h->last = NULL;
    while (*p) {
        req_node *n = *p;
        if (n->finished) {
            *p = n->next;
            ph_req_free(n->req);
            free(n);
        } else {
            h->last = n;
            p = &n->next;
        }
    }
}

static req_node *find_request(ph_host *h, unsigned long id)
{
    for (req_node *n = h->requests; n; n = n->next)
        if (!n->finished && ph_req_id(n->req) == id)
            return n;
    return NULL;
}

/* A leader's flight ended: every request still waiting on it gets the shared plan. */
static void flight_done(void *host, uint64_t key, const ph_req_shared *shared)
{
    ph_host *h = host;
    uint64_t *ids = NULL;
    size_t n = 0;
    if (ph_cache_inflight_end(h->cache, key, &ids, &n) != 0)
        return;
    for (size_t i = 0; i < n; i++) {
        req_node *w = find_request(h, (unsigned long)ids[i]);
        if (w && ph_req_waiting(w->req))
            ph_req_take_shared(w->req, shared);
    }
    free(ids);
}

/* Copies one endpoint's settings; `dflt` fills what it leaves out. */
static int add_endpoint(ph_host *h, const ph_endpoint_config *c, const ph_host_config *dflt, ph_error *err)
{
    const char *api_name = c->api ? c->api : dflt->api ? dflt->api : "ollama";
    int api = ph_api_parse(api_name);
    if (api < 0)
        return ph_error_set(err, PH_ERR_ARG, "unknown api '%s' (known: ollama, ollama-generate, openai, llamacpp)", api_name);
    ph_endpoint *e = &h->endpoints[h->nendpoints];
    char why[160];
    if (ph_http_headers_copy(e->headers, PH_MAX_HEADERS, c->headers ? c->headers : dflt->headers, why, sizeof why) != 0)
        return ph_error_set(err, PH_ERR_ARG, "endpoint %d (%s): %s", h->nendpoints + 1, c->url ? c->url : "default", why);
    h->nendpoints++;
    e->url = strdup(c->url ? c->url : "http://127.0.0.1:11434");
    size_t n = strlen(e->url);
    while (n > 0 && e->url[n - 1] == '/')
        e->url[--n] = '\0';
    e->api = api;
    e->model = strdup(c->model ? c->model : dflt->model ? dflt->model : PH_DEFAULT_MODEL);
    e->group = strdup(c->group ? c->group : "default");
    e->max_in_flight = c->max_in_flight > 0 ? c->max_in_flight : dflt->max_in_flight > 0 ? dflt->max_in_flight : 0;
    ph_circuit_init(&e->circuit);
    return 0;
}

static int setup_endpoints(ph_host *h, const ph_host_config *cfg, ph_error *err)
{
    if (cfg->nendpoints > PH_MAX_ENDPOINTS)
        return ph_error_set(err, PH_ERR_ARG, "at most %d endpoints", PH_MAX_ENDPOINTS);
    if (cfg->nendpoints <= 0) {
        ph_endpoint_config one = {.url = cfg->url, .api = cfg->api, .model = cfg->model};
        return add_endpoint(h, &one, cfg, err);
    }
    for (int i = 0; i < cfg->nendpoints; i++)
        if (add_endpoint(h, &cfg->endpoints[i], cfg, err) != 0)
            return -1;
    return 0;
}

static int setup_network(ph_host *h, const ph_host_config *cfg, ph_error *err)
{
    h->http = ph_http_new();
    if (!h->http)
        return ph_error_set(err, PH_ERR_MEMORY, "cannot set up the HTTP client (libcurl and an epoll descriptor; out of file descriptors?)");
    h->latency = ph_latency_new();
    ph_cache_config cc = {cfg->cache_entries, cfg->cache_bytes, cfg->cache_ttl_ms > 0 ? (uint64_t)cfg->cache_ttl_ms : 0};
    h->cache = ph_cache_new(&cc);
    h->metrics = ph_metrics_new();
    h->batcher = ph_batcher_new();
    if (!h->latency || !h->cache || !h->metrics || !h->batcher)
        return ph_error_set(err, PH_ERR_MEMORY, "out of memory");
    h->cache_file = cfg->cache_file ? strdup(cfg->cache_file) : NULL;
    if (setup_endpoints(h, cfg, err) != 0)
        return -1;
    h->keep_alive = cfg->keep_alive ? strdup(cfg->keep_alive) : NULL;
    h->max_pending = cfg->max_pending > 0 ? cfg->max_pending : PH_DEFAULT_MAX_PENDING;
    h->max_snapshot = cfg->max_snapshot > 0 ? cfg->max_snapshot : PH_DEFAULT_MAX_SNAPSHOT;
    h->budget_ms = cfg->budget_ms > 0 ? cfg->budget_ms : 0;
    ph_req_env env = {h->http, h->endpoints, h->nendpoints, h->keep_alive,
                      cfg->connect_timeout_ms > 0 ? cfg->connect_timeout_ms : 1000,
                      cfg->first_byte_timeout_ms, cfg->max_response, h->latency, cfg->cache_off ? NULL : h->cache, h->metrics, h->batcher,
                      flight_done, queue_event, request_finished, h};
    h->env = env;
    h->next_request = 1;
    return 0;
}

static void free_network(ph_host *h)
{
    ph_http_free(h->http);
    ph_latency_free(h->latency);
    ph_cache_free(h->cache);
    ph_metrics_free(h->metrics);
    ph_batcher_free(h->batcher);
    free(h->cache_file);
    for (int i = 0; i < h->nendpoints; i++) {
        free(h->endpoints[i].url);
        free(h->endpoints[i].model);
        free(h->endpoints[i].group);
        ph_http_headers_free(h->endpoints[i].headers);
    }
    free(h->keep_alive);
}

/* Loads the cache file's entries made by the serving scripts (no file yet is fine). */
static int warm_start(ph_host *h, ph_error *err)
{
    size_t loaded = 0, skipped = 0;
    if (ph_cache_load(h->cache, h->cache_file, ph_gen_hash(h->gen), ph_req_wall_ms(), &loaded, &skipped, err) == 0)
        return 0;
    if (err && err->code == PH_ERR_NOTFOUND)
        return 0;
    if (err)
        ph_error_prefix(err, "cache file");
    return -1;
}

ph_host *ph_host_open(const ph_host_config *cfg, ph_error *err)
{
    ph_host *h = calloc(1, sizeof *h);
    if (!h || !cfg || !cfg->root) {
        free(h);
        ph_error_set(err, PH_ERR_ARG, "ph_host_open: a config with a root folder is needed");
        return NULL;
    }
    h->root = strdup(cfg->root);
    h->watch = cfg->watch;
    h->interval_ms = cfg->watch_interval_ms > 0 ? cfg->watch_interval_ms : 100;
    h->signature = ph_tree_signature(h->root);
    if (setup_network(h, cfg, err) != 0 || !(h->gen = build_generation(h, 1, err))) {
        free_network(h);
        free(h->root);
        free(h);
        return NULL;
    }
    h->next_id = 2;
    h->next_check_ms = now_ms() + h->interval_ms;
    if (h->cache_file && warm_start(h, err) != 0) {
        free(h->cache_file);       /* the file stays as it is: nothing is saved over it */
        h->cache_file = NULL;
        ph_host_close(h);
        return NULL;
    }
    return h;
}

int ph_host_cache_save(ph_host *h, ph_error *err)
{
    if (!h->cache_file)
        return ph_error_set(err, PH_ERR_ARG, "no cache file was configured (cache_file)");
    return ph_cache_save(h->cache, h->cache_file, err);
}

static void free_queue(ph_host *h)
{
    queued_event *q = h->head;
    while (q) {
        queued_event *next = q->next;
        free(q->json);
        free(q);
        q = next;
    }
    h->head = h->tail = NULL;
    if (h->taken) {
        free(h->taken->json);
        free(h->taken);
        h->taken = NULL;
    }
}

void ph_host_close(ph_host *h)
{
    if (!h)
        return;
    for (req_node *n = h->requests; n; n = n->next)
        n->finished = 1;
    sweep_requests(h);
    if (h->cache_file && h->gen) {
        ph_error err;
        if (ph_host_cache_save(h, &err) != 0)
            fprintf(stderr, "planhost: cannot save the plan cache: %s\n", err.message);
    }
    free_network(h);
    free_queue(h);
    ph_gen_release(h->gen);
    free(h->root);
    free(h);
}

/* The caps a submission must pass: snapshot size, pending requests. */
static int admit(ph_host *h, const ph_request_opts *o, ph_error *err)
{
    if (o->len > h->max_snapshot)
        return ph_error_set(err, PH_ERR_LIMIT, "snapshot: %zu bytes, over the cap of %zu (max_snapshot)", o->len,
                            h->max_snapshot);
    if (o->game && strlen(o->game) > h->max_snapshot)
        return ph_error_set(err, PH_ERR_LIMIT, "game context: over the cap of %zu bytes (max_snapshot)",
                            h->max_snapshot);
    if (ph_host_pending(h) >= h->max_pending)
        return ph_error_set(err, PH_ERR_LIMIT, "%d requests pending, the cap (max_pending): drain events and retry",
                            h->max_pending);
    return 0;
}

unsigned long ph_host_submit(ph_host *h, const ph_request_opts *o, ph_error *err)
{
    if (admit(h, o, err) != 0)
        return 0;
    ph_request_opts opts = *o;
    if (opts.budget_ms <= 0)
        opts.budget_ms = h->budget_ms;
    req_node *n = calloc(1, sizeof *n);
    if (!n)
        return ph_error_set(err, PH_ERR_MEMORY, "out of memory"), 0;
    unsigned long id = h->next_request;
    req_node *prev = h->last;     /* linked first: a request may finish while it starts */
    if (prev)
        prev->next = n;
    else
        h->requests = n;
    h->last = n;
    n->req = ph_req_start(&h->env, h->gen, id, &opts, err);
    if (!n->req) {
        if (prev)
            prev->next = NULL;
        else
            h->requests = NULL;
        h->last = prev;
        free(n);
        return 0;
    }
    if (ph_req_ended(n->req))
        n->finished = 1;          /* it ended while starting (a cache hit, a heuristic chain) */
    else
        h->npending++;
    h->next_request++;
    ph_metrics_submitted(h->metrics);
    return id;
}

int ph_host_cancel(ph_host *h, unsigned long request)
{
    for (req_node *n = h->requests; n; n = n->next)
        if (!n->finished && ph_req_id(n->req) == request) {
            ph_req_cancel(n->req);
            mark_finished(h, n);
            return 0;
        }
    return -1;
}

int ph_host_pending(const ph_host *h) { return h->npending; }

/* One look at the files: a change is acted on once it has held still for an interval. */
static void check_files(ph_host *h)
{
    uint64_t sig = ph_tree_signature(h->root);
    if (sig == h->signature) {
        h->has_pending = 0;
    } else if (h->has_pending && sig == h->pending) {
        ph_host_reload(h, NULL);
    } else {
        h->pending = sig;
        h->has_pending = 1;
    }
}

static int queued(const ph_host *h)
{
    int n = 0;
    for (const queued_event *q = h->head; q; q = q->next)
        n++;
    return n;
}

static void sleep_ms(double ms)
{
    if (ms <= 0)
        return;
    struct timespec ts = {(time_t)(ms / 1e3), (long)((ms - (double)(time_t)(ms / 1e3) * 1e3) * 1e6)};
    nanosleep(&ts, NULL);
}

/* Wakes requests whose wait for an identical request ran out; returns the next such time
 * (monotonic ms, INFINITY for none). */
static double tick_waiting(ph_host *h, double t)
{
    unsigned long freed = 0;
    for (int i = 0; i < h->nendpoints; i++)
        freed += h->endpoints[i].freed;
    int moved = freed != h->slots_freed;
    h->slots_freed = freed;
    double next = INFINITY;
    for (req_node *n = h->requests; n; n = n->next) {
        if (n->finished || !ph_req_waiting(n->req))
            continue;
        ph_req_tick(n->req, t, moved);
        double w = ph_req_wake_ms(n->req);
        if (w < next)
            next = w;
    }
    return next;
}

/* ---- health checks: a GET for each open circuit whose cool-down has passed ---------------- */

static void health_done(void *ud, const ph_http_result *res)
{
    ph_endpoint *e = ud;
    ph_circuit_check_done(&e->circuit, res->fail == PH_HTTP_OK && res->status >= 200 && res->status < 300,
                          now_ms());
}

/* Starts the health checks that are due; returns when the next falls due (INFINITY: none). */
static double tick_health(ph_host *h, double t)
{
    const ph_circuit_policy *p = &ph_gen_policy(h->gen)->circuit;
    double next = INFINITY;
    for (int i = 0; i < h->nendpoints; i++) {
        ph_endpoint *e = &h->endpoints[i];
        if (ph_circuit_check_due(&e->circuit, p, t)) {
            char url[1024];
            snprintf(url, sizeof url, "%s%s", e->url, ph_api_health_path((ph_api)e->api));
            ph_http_request req = {url, NULL, 0, (const char *const *)e->headers, NULL,
                                   h->env.connect_timeout_ms, 0, 2000, 64u << 10};
            ph_http_callbacks cb = {NULL, health_done};
            if (!ph_http_start(h->http, &req, &cb, e))
                ph_circuit_check_done(&e->circuit, 0, t);
        }
        double at = ph_circuit_check_at(&e->circuit, p);
        if (at < next)
            next = at;
    }
    return next;
}

/* One round of work: network I/O (waiting at most `wait_ms`), then finished requests. */
static void work(ph_host *h, double wait_ms)
{
    if (ph_http_running(h->http))
        ph_http_poll(h->http, (int)(wait_ms + 0.5));
    else
        sleep_ms(wait_ms);
    sweep_requests(h);
}

int ph_host_poll(ph_host *h, int timeout_ms)
{
    double deadline = now_ms() + (timeout_ms > 0 ? timeout_ms : 0);
    sweep_requests(h);
    if (ph_http_running(h->http))
        work(h, 0);                /* whatever is ready now, even with timeout 0 */
    for (;;) {
        double t = now_ms();
        if (h->watch && t >= h->next_check_ms) {
            check_files(h);
            h->next_check_ms = t + h->interval_ms;
        }
        double waiter = tick_waiting(h, t), batch = ph_batcher_tick(h->batcher, t), health = tick_health(h, t);
        if (batch < waiter)
            waiter = batch;
        if (health < waiter)
            waiter = health;
        if (h->head || (timeout_ms >= 0 && t >= deadline))
            return queued(h);
        double wake = h->watch ? h->next_check_ms : t + 50;
        if (waiter < wake)
            wake = waiter;
        if (timeout_ms >= 0 && deadline < wake)
            wake = deadline;
        work(h, wake - t);
    }
}

int ph_host_next_event(ph_host *h, ph_event *ev)
{
    if (h->taken) {
        free(h->taken->json);
        free(h->taken);
        h->taken = NULL;
    }
    queued_event *q = h->head;
    if (!q)
        return 0;
    h->head = q->next;
    if (!h->head)
        h->tail = NULL;
    h->taken = q;
    *ev = q->ev;
    return 1;
}

void ph_host_template_names(ph_host *h, ph_buf *b)
{
    for (int i = 0; i < ph_gen_ntemplates(h->gen); i++)
        ph_buf_addf(b, "%s%s", i ? ", " : "", ph_gen_template(h->gen, i)->name);
}

int ph_host_render(ph_host *h, const char *name, const char *snapshot, size_t len,
                   ph_prompt *out, ph_error *err)
{
    memset(out, 0, sizeof *out);
    const ph_template *t = ph_gen_find_template(h->gen, name);
    if (!t) {
        ph_buf names;
        ph_buf_init(&names, 4096);
        ph_host_template_names(h, &names);
        ph_error_set(err, PH_ERR_NOTFOUND, "unknown template '%s' (known: %s)", name, ph_buf_str(&names));
        ph_buf_free(&names);
        return -1;
    }
    ph_buf user;
    ph_buf_init(&user, PH_MAX_PROMPT);
    if (ph_gen_render_user(h->gen, t, &snapshot, &len, 1, &user, err) != 0) {
        ph_buf_free(&user);
        return -1;
    }
    out->user_len = user.len;
    out->user = ph_buf_take(&user);
    out->system = strndup(t->system, t->system_len);
    out->system_len = t->system_len;
    out->chars = ph_utf8_chars(out->system, out->system_len) + ph_utf8_chars(out->user, out->user_len);
    out->tokens = ph_estimate_tokens(out->chars);
    return 0;
}

void ph_prompt_free(ph_prompt *p)
{
    free(p->system);
    free(p->user);
    memset(p, 0, sizeof *p);
}

char *ph_host_metrics(ph_host *h, size_t *len)
{
    const char *urls[PH_MAX_ENDPOINTS], *states[PH_MAX_ENDPOINTS];
    for (int i = 0; i < h->nendpoints; i++) {
        urls[i] = h->endpoints[i].url;
        states[i] = ph_circuit_name(h->endpoints[i].circuit.state);
    }
    ph_cache_stats cs;
    ph_cache_stats_get(h->cache, &cs);
    ph_metrics_gauges g = {h->env.cache ? &cs : NULL, ph_host_pending(h), ph_gen_id(h->gen), h->nendpoints, urls,
                           states};
    ph_buf b;
    ph_buf_init(&b, 64u << 20);
    ph_metrics_render(h->metrics, &g, &b);
    if (len)
        *len = b.len;
    return b.failed && !b.len ? (ph_buf_free(&b), NULL) : ph_buf_take(&b);
}

unsigned ph_host_generation(const ph_host *h) { return ph_gen_id(h->gen); }
unsigned long long ph_host_script_hash(const ph_host *h) { return ph_gen_hash(h->gen); }
ph_gen *ph_host_gen(ph_host *h) { return h->gen; }
const char *ph_host_root(const ph_host *h) { return h->root; }

int ph_host_snapshots(const ph_host *h, ph_snapshot_set *set, ph_error *err)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/examples/snapshots", h->root);
    return ph_snapshots_read(dir, set, err);
}
