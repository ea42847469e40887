/* sim — `planhost sim`: a SIMULATED LLM server on the loopback interface.
 *
 *   planhost sim [--port P] [--profile NAME] [--profiles FILE] [--model-script FILE]
 *                [--replay FILE] [--parallel N] [--fault MODE] [--misbehave SPEC] [--seed N]
 *                [--api-key KEY]
 *
 * Speaks Ollama (/api/chat, /api/generate), OpenAI (/v1/chat/completions) and llama.cpp
 * (/completion) with a latency model, answers from a Lua model script, fault modes and
 * replay of recorded streams (sim.h maps the files). When ready it prints one line to
 * stdout, "planhost sim: SIMULATED LLM server listening on http://127.0.0.1:PORT (profile
 * NAME)", and it stops cleanly on SIGINT or SIGTERM. Every response carries
 * X-Planhost-Sim: 1. Exit status: 0 after a clean stop, 1 when it cannot start, 2 on bad
 * options. This file: options, the daemon, routing, the GET endpoints, request lifetime. */
#include <netinet/in.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "sim.h"

#define MAX_PARALLEL 64
#define IDLE_TIMEOUT_S 60

typedef struct sim_opts {
    long port, parallel;
    unsigned long long seed;
    const char *profile, *profiles, *model, *replay, *fault, *misbehave, *api_key;
} sim_opts;

static atomic_int stop_flag;

int sim_stopping(void) { return atomic_load(&stop_flag); }

/* ---- requests ------------------------------------------------------------------------ */

enum MHD_Result sim_queue(sim_conn *c, unsigned status, struct MHD_Response *resp)
{
    MHD_add_response_header(resp, "X-Planhost-Sim", "1");
    enum MHD_Result rc = MHD_queue_response(c->mhd, status, resp);
    MHD_destroy_response(resp);
    return rc;
}

enum MHD_Result sim_reply_json(sim_conn *c, unsigned status, const char *json, size_t len)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(len, (void *)json, MHD_RESPMEM_MUST_COPY);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json; charset=utf-8");
    return sim_queue(c, status, r);
}

enum MHD_Result sim_reply_error(sim_conn *c, unsigned status, const char *msg, const char *code)
{
    ph_buf b;
    ph_buf_init(&b, 1u << 16);
    sim_proto_error(&b, c->req.api, status, msg, code);
    enum MHD_Result rc = sim_reply_json(c, status, ph_buf_str(&b), b.len);
    ph_buf_free(&b);
    return rc;
}

static sim_conn *conn_new(sim_server *srv, struct MHD_Connection *mc)
{
    sim_conn *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->srv = srv;
    c->mhd = mc;
    atomic_init(&c->refs, 1);
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(mc, MHD_CONNECTION_INFO_CONNECTION_FD);
    c->fd = ci ? ci->connect_fd : -1;
    c->t0 = sim_now();
    c->slot = -1;
    ph_buf_init(&c->upload, SIM_MAX_BODY);
    ph_buf_init(&c->answer, SIM_MAX_ANSWER);
    ph_buf_init(&c->out, SIM_MAX_ANSWER + 4096);
    return c;
}

void sim_conn_drop(sim_conn *c)
{
    if (!c || atomic_fetch_sub(&c->refs, 1) != 1)
        return;
    if (c->slot >= 0)
        sim_sched_release(c->srv->sched, c->slot);
    sim_req_free(&c->req);
    ph_buf_free(&c->upload);
    ph_buf_free(&c->answer);
    ph_buf_free(&c->out);
    free(c);
}

static void completed(void *cls, struct MHD_Connection *mc, void **con_cls, enum MHD_RequestTerminationCode toe)
{
    (void)cls, (void)mc, (void)toe;
    sim_conn_drop(*con_cls);
    *con_cls = NULL;
}

/* ---- GET endpoints --------------------------------------------------------------------- */

static const char TAGS[] =
    "{\"models\":[{\"name\":\"" SIM_MODEL "\",\"model\":\"" SIM_MODEL "\",\"modified_at\":\"2025-01-01T00:00:00Z\","
    "\"size\":0,\"digest\":\"planhost-sim\",\"details\":{\"format\":\"simulated\",\"family\":\"planhost-sim\","
    "\"parameter_size\":\"simulated\",\"quantization_level\":\"none\"}}]}\n";
static const char MODELS[] =
    "{\"object\":\"list\",\"data\":[{\"id\":\"" SIM_MODEL "\",\"object\":\"model\",\"created\":0,"
    "\"owned_by\":\"planhost-sim (simulated)\"}]}\n";
static const char VERSION[] = "{\"version\":\"" SIM_VERSION "\"}\n";
static const char HEALTH[] = "{\"status\":\"ok\",\"simulated\":true}\n";
static const char ROOT[] = "planhost sim is running (SIMULATED LLM server, not a real model)\n";

static enum MHD_Result get_endpoint(sim_conn *c, const char *url)
{
    if (strcmp(url, "/") == 0) {
        struct MHD_Response *r =
            MHD_create_response_from_buffer(sizeof ROOT - 1, (void *)ROOT, MHD_RESPMEM_PERSISTENT);
        if (!r)
            return MHD_NO;
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; charset=utf-8");
        return sim_queue(c, MHD_HTTP_OK, r);
    }
    if (strcmp(url, "/sim/last_body") == 0) {  /* what the host sent, for determinism tests */
        pthread_mutex_lock(&c->srv->last_mu);
        enum MHD_Result res = sim_reply_json(c, MHD_HTTP_OK, ph_buf_str(&c->srv->last_body), c->srv->last_body.len);
        pthread_mutex_unlock(&c->srv->last_mu);
        return res;
    }
    if (strcmp(url, "/sim/stats") == 0) {
        char stats[128];
        int n = snprintf(stats, sizeof stats, "{\"simulated\":true,\"requests\":%lu}\n",
                         atomic_load(&c->srv->arrivals));
        return sim_reply_json(c, MHD_HTTP_OK, stats, (size_t)n);
    }
    const char *body = strcmp(url, "/api/version") == 0 ? VERSION
                     : strcmp(url, "/api/tags") == 0   ? TAGS
                     : strcmp(url, "/v1/models") == 0 || strcmp(url, "/models") == 0 ? MODELS
                     : strcmp(url, "/health") == 0     ? HEALTH
                                                       : NULL;
    if (body)
        return sim_reply_json(c, MHD_HTTP_OK, body, strlen(body));
    char msg[300];
    snprintf(msg, sizeof msg, "planhost sim: no such endpoint: GET %.200s", url);
    return sim_reply_error(c, MHD_HTTP_NOT_FOUND, msg, NULL);
}

/* ---- routing --------------------------------------------------------------------------- */

/* Without --api-key every request is; with it, "Authorization: Bearer KEY" must name it. */
static int authorized(const sim_conn *c)
{
    if (!c->srv->api_key)
        return 1;
    const char *h = MHD_lookup_connection_value(c->mhd, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    return h && strncmp(h, "Bearer ", 7) == 0 && strcmp(h + 7, c->srv->api_key) == 0;
}

static enum MHD_Result route(sim_conn *c, const char *url, const char *method)
{
    int api = sim_api_from_path(url);
    c->req.api = api >= 0 ? (sim_api)api : SIM_OLLAMA_CHAT;
    if (strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0) {
        if (api < 0)
            return get_endpoint(c, url);
        return sim_reply_error(c, MHD_HTTP_METHOD_NOT_ALLOWED, "use POST", NULL);
    }
    if (strcmp(method, "POST") != 0)
        return sim_reply_error(c, MHD_HTTP_METHOD_NOT_ALLOWED, "planhost sim answers GET and POST", NULL);
    if (c->too_large)
        return sim_reply_error(c, MHD_HTTP_CONTENT_TOO_LARGE, "request body too large", NULL);
    c->n = atomic_fetch_add(&c->srv->arrivals, 1) + 1;   /* GET /sim/stats reports it */
    if (!authorized(c))     /* as vLLM's --api-key answers */
        return sim_reply_error(c, MHD_HTTP_UNAUTHORIZED, "planhost sim: missing or wrong API key "
                               "(send Authorization: Bearer KEY)", "invalid_api_key");
    pthread_mutex_lock(&c->srv->last_mu);
    ph_buf_reset(&c->srv->last_body);
    ph_buf_add(&c->srv->last_body, c->upload.data ? c->upload.data : "", c->upload.len);
    pthread_mutex_unlock(&c->srv->last_mu);
    if (c->srv->replaying)
        return sim_replay_serve(c, url);
    if (api < 0) {
        char msg[400];
        snprintf(msg, sizeof msg, "planhost sim: no such endpoint: POST %.200s (it speaks /api/chat, "
                 "/api/generate, /v1/chat/completions, /completion)", url);
        return sim_reply_error(c, MHD_HTTP_NOT_FOUND, msg, NULL);
    }
    return sim_generate(c, (sim_api)api);
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *mc, const char *url, const char *method,
                               const char *version, const char *upload, size_t *upload_size, void **con_cls)
{
    (void)version;
    sim_conn *c = *con_cls;
    if (!c) {
        *con_cls = c = conn_new(cls, mc);
        return c ? MHD_YES : MHD_NO;
    }
    if (*upload_size) {
        if (!c->too_large && ph_buf_add(&c->upload, upload, *upload_size) != 0)
            c->too_large = 1;
        *upload_size = 0;
        return MHD_YES;
    }
    return route(c, url, method);
}

/* ---- options --------------------------------------------------------------------------- */

static int usage(FILE *f)
{
    fputs("usage: planhost sim [--port P] [--profile NAME] [--profiles FILE] [--model-script FILE]\n"
          "                    [--replay FILE] [--parallel N] [--fault MODE] [--misbehave SPEC] [--seed N]\n"
          "                    [--api-key KEY]\n"
          "  a SIMULATED LLM server on 127.0.0.1 (Ollama, OpenAI and llama.cpp protocols);\n"
          "  see examples/sim/README.md\n", f);
    return f == stderr ? 2 : 0;
}

static int number_opt(const char *name, const char *v, long lo, long hi, long *out)
{
    return ph_cli_number("planhost sim", name, v, lo, hi, out);
}

/* One option and its value; returns 0, 1 for --help, -1 for an error. */
static int one_opt(sim_opts *o, const char *a, const char *v)
{
    long n;
    if (strcmp(a, "--port") == 0) return number_opt(a, v, 0, 65535, &o->port);
    if (strcmp(a, "--parallel") == 0) return number_opt(a, v, 1, MAX_PARALLEL, &o->parallel);
    if (strcmp(a, "--seed") == 0) {
        if (number_opt(a, v, 0, 0x7FFFFFFFL, &n) != 0)
            return -1;
        o->seed = (unsigned long long)n;
        return 0;
    }
    const char **slot = strcmp(a, "--profile") == 0 ? &o->profile
                      : strcmp(a, "--profiles") == 0 ? &o->profiles
                      : strcmp(a, "--model-script") == 0 ? &o->model
                      : strcmp(a, "--replay") == 0 ? &o->replay
                      : strcmp(a, "--fault") == 0 ? &o->fault
                      : strcmp(a, "--api-key") == 0 ? &o->api_key
                      : strcmp(a, "--misbehave") == 0 ? &o->misbehave : NULL;
    if (!slot) {
        fprintf(stderr, "planhost sim: unknown option '%s'\n", a);
        return -1;
    }
    *slot = v;
    return 0;
}

static int parse_opts(int argc, char **argv, sim_opts *o)
{
    *o = (sim_opts){.port = 0, .parallel = 1, .profile = "cpu-7b"};
    for (int i = 1; i < argc; i += 2) {     /* options come in pairs: --name value */
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            return 1;
        if (i + 1 >= argc) {
            fprintf(stderr, "planhost sim: %s needs a value\n", argv[i]);
            return -1;
        }
        if (one_opt(o, argv[i], argv[i + 1]) != 0)
            return -1;
    }
    return 0;
}

/* ---- setup ----------------------------------------------------------------------------- */

static int exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* The source tree: $PLANHOST_ROOT, the current folder, or up from the executable. */
static void find_root(char *root, size_t n)
{
    const char *env = getenv("PLANHOST_ROOT");
    char exe[4096], probe[4200];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    exe[len > 0 ? len : 0] = '\0';
    char *slash = strrchr(exe, '/');
    if (slash)
        *slash = '\0';
    const char *fmt[] = {"%s", ".", "%s/..", "%s/../.."};
    for (int i = 0; i < 4; i++) {
        if (i == 0 && !(env && *env))
            continue;
        snprintf(root, n, fmt[i], i == 0 ? env : exe);
        snprintf(probe, sizeof probe, "%s/examples/sim/profiles.lua", root);
        if (exists(probe))
            return;
    }
    snprintf(root, n, ".");
}

static int setup_model(sim_server *srv, const sim_opts *o, const char *root, char *what, size_t n)
{
    char profiles[4200], model[4200], lua_dir[4200];
    ph_error err;
    snprintf(profiles, sizeof profiles, "%s/examples/sim/profiles.lua", root);
    snprintf(model, sizeof model, "%s/examples/sim/model.lua", root);
    snprintf(lua_dir, sizeof lua_dir, "%s/lua", root);
    if (sim_profile_load(o->profiles ? o->profiles : profiles, o->profile, &srv->profile, &err) != 0 ||
        !(srv->model = sim_lua_open(o->model ? o->model : model, exists(lua_dir) ? lua_dir : NULL,
                                    o->misbehave, &err))) {
        fprintf(stderr, "planhost sim: %s\n", err.message);
        if (err.traceback[0] && getenv("PLANHOST_TRACEBACK"))
            fprintf(stderr, "%s\n", err.traceback);
        return -1;
    }
    snprintf(what, n, "profile %s", srv->profile.name);
    return 0;
}

static int setup(sim_server *srv, const sim_opts *o, char *what, size_t n)
{
    char root[4096], msg[300];
    ph_error err;
    memset(srv, 0, sizeof *srv);
    pthread_mutex_init(&srv->last_mu, NULL);
    ph_buf_init(&srv->last_body, 8u << 20);
    srv->seed = o->seed;
    srv->api_key = o->api_key ? strdup(o->api_key) : NULL;
    if (o->fault && sim_fault_parse(o->fault, &srv->fault, msg, sizeof msg) != 0)
        return fprintf(stderr, "planhost sim: %s\n", msg), -1;
    find_root(root, sizeof root);
    if (o->replay) {
        if (ph_record_load(o->replay, 0, &srv->replay, &err) != 0)
            return fprintf(stderr, "planhost sim: %s\n", err.message), -1;
        srv->replaying = 1;
        snprintf(what, n, "replay %s", o->replay);
    } else if (setup_model(srv, o, root, what, n) != 0) {
        return -1;
    }
    srv->sched = sim_sched_new((int)o->parallel);
    return srv->sched ? 0 : -1;
}

static void teardown(sim_server *srv)
{
    ph_buf_free(&srv->last_body);
    free(srv->api_key);
    pthread_mutex_destroy(&srv->last_mu);
    sim_lua_close(srv->model);
    ph_record_free(&srv->replay);
    sim_sched_free(srv->sched);
}

/* ---- the daemon ------------------------------------------------------------------------ */

/* libmicrohttpd's own messages (a connection closed mid-stream, ...), marked as its. */
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    fputs("planhost sim: libmicrohttpd: ", stderr);
    vfprintf(stderr, fmt, ap);
}

static struct MHD_Daemon *start(sim_server *srv, long port)
{
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_ITC |
                     MHD_USE_ERROR_LOG;
    return MHD_start_daemon(flags, (uint16_t)port, NULL, NULL, handler, srv,
                            MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
                            MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
                            MHD_OPTION_NOTIFY_COMPLETED, completed, srv,
                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)IDLE_TIMEOUT_S,
                            MHD_OPTION_END);
}

/* Serves until SIGINT or SIGTERM (blocked in every thread, taken here by sigwait). */
static int serve(sim_server *srv, const sim_opts *o, const char *what)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    struct MHD_Daemon *d = start(srv, o->port);
    if (!d) {
        fprintf(stderr, "planhost sim: cannot listen on 127.0.0.1:%ld\n", o->port);
        return 1;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    printf("planhost sim: SIMULATED LLM server listening on http://127.0.0.1:%u (%s)\n",
           info ? info->port : (unsigned)o->port, what);
    fflush(stdout);
    fprintf(stderr, "planhost sim: %ld slot(s), fault %s%s%s; SIGINT or SIGTERM stops it\n", o->parallel,
            sim_fault_name(srv->fault.kind), o->misbehave ? ", misbehave " : "", o->misbehave ? o->misbehave : "");
    int sig = 0;
    sigwait(&set, &sig);
    atomic_store(&stop_flag, 1);
    sim_sched_wake(srv->sched);
    MHD_stop_daemon(d);
    fprintf(stderr, "planhost sim: stopped (signal %d)\n", sig);
    return 0;
}

int ph_sim_main(int argc, char **argv)
{
    sim_opts o;
    int rc = parse_opts(argc, argv, &o);
    if (rc != 0)
        return rc > 0 ? usage(stdout) : usage(stderr);
    sim_server srv;
    char what[4200];
    if (setup(&srv, &o, what, sizeof what) != 0) {
        teardown(&srv);
        return 1;
    }
    rc = serve(&srv, &o, what);
    teardown(&srv);
    return rc;
}
