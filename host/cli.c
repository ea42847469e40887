/* cli — the `planhost` command.
 *
 *   planhost prompt [--template NAME] [--body [--api A] [--model M]] SNAPSHOT.json
 *   planhost check [--watch]
 *   planhost hash SNAPSHOT.json         (the cache's snapshot hash and what it was made of)
 *   planhost lua SCRIPT [ARGS...]       (a Lua 5.4 interpreter with `planhost` built in)
 *
 * Every command takes --root DIR (default: $PLANHOST_ROOT, else the current folder if it
 * holds prompts/, else the source tree the command was built from). Exit status: 0 fine,
 * 1 a script failed, 2 bad input (unreadable file, malformed snapshot, unknown template or
 * option). Depends on the public API, host.h and wire. */
#define _POSIX_C_SOURCE 200809L
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "host.h"
#include "schema.h"
#include "serve.h"
#include "snaphash.h"
#include "tree.h"
#include "wire.h"

#ifndef PH_SOURCE_ROOT
#define PH_SOURCE_ROOT "."
#endif


#define MAX_SNAPSHOT_FILE (4u << 20)


static int usage(FILE *f)
{
    fputs("usage: planhost COMMAND [--root DIR] ...\n"
          "  prompt [--template NAME] [--body [--api ollama|ollama-generate|openai|llamacpp] [--model M]] SNAPSHOT.json\n"
          "                 print the prompt (or the request body) for a snapshot\n"
          "  check [--watch]  render every template against every example snapshot\n"
          "  batch [--url U] [--api A] [--model M] [--header H]... [--timeout-ms N] SNAPSHOT.json...\n"
          "                 plan for several agents in one model request (prompts/batch.lua)\n"
          "  hash SNAPSHOT.json  the snapshot hash the plan cache keys on, and the canonical\n"
          "                 form it was computed from (policies/cache.lua says what counts)\n"
          "  plan [--url U] [--api A] [--model M] [--header 'Name: value']... [--template T] [--timeout-ms N]\n"
          "       [--pretty] [--record F] [--cache-file F] [--no-cache] [--metrics] SNAPSHOT.json\n"
          "                 plan for a snapshot with a model server, printing events as they happen;\n"
          "                 --cache-file keeps the plan cache between runs, --metrics prints the\n"
          "                 Prometheus metrics to stderr at the end\n"
          "  parse [--chunk N] [--template T] [--snapshot S] FILE\n"
          "                 run saved model output through the plan parser in N-byte pieces\n"
          "  sim [--port P] [--profile NAME] ...  the SIMULATED model server (see planhost sim --help)\n"
          "  serve [--port P] [--url U] [--max-body B] [--max-clients N] ...  the HTTP/NDJSON service (planhost serve --help)\n"
          "  ab EXPERIMENT.lua [--out DIR] | ab --from EVENTS.ndjson [--out DIR]\n"
          "                 run an A/B experiment (or analyse recorded events): report.md,\n"
          "                 trials.ndjson, plot.svg with intervals and tests\n"
          "  lua SCRIPT [ARGS]  run a Lua script with the planhost module built in\n"
          "  version\n"
          "plan, batch and serve send each --header line to the model server, and\n"
          "'Authorization: Bearer $PLANHOST_API_KEY' when that variable is set.\n", f);
    return f == stderr ? 2 : 0;
}

static const char *default_root(void)
{
    const char *env = getenv("PLANHOST_ROOT");
    struct stat st;
    if (env && *env)
        return env;
    if (stat("prompts", &st) == 0 && S_ISDIR(st.st_mode))
        return ".";
    return PH_SOURCE_ROOT;
}

/* Parses the options every command shares; a non-option argument becomes o->file. */
int ph_cli_parse_opts(int argc, char **argv, opts *o)
{
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        const char **slot = NULL, *header = NULL;
        if (strcmp(a, "--root") == 0) slot = &o->root;
        else if (strcmp(a, "--template") == 0) slot = &o->tmpl;
        else if (strcmp(a, "--api") == 0) slot = &o->api;
        else if (strcmp(a, "--model") == 0) slot = &o->model;
        else if (strcmp(a, "--url") == 0) slot = &o->url;
        else if (strcmp(a, "--timeout-ms") == 0) slot = &o->timeout;
        else if (strcmp(a, "--record") == 0) slot = &o->record;
        else if (strcmp(a, "--chunk") == 0) slot = &o->chunk;
        else if (strcmp(a, "--snapshot") == 0) slot = &o->snapshot;
        else if (strcmp(a, "--header") == 0) slot = &header;     /* repeatable */
        else if (strcmp(a, "--cache-file") == 0) slot = &o->cache_file;
        else if (strcmp(a, "--metrics") == 0) { o->metrics = 1; continue; }
        else if (strcmp(a, "--no-cache") == 0) { o->no_cache = 1; continue; }
        else if (strcmp(a, "--pretty") == 0) { o->pretty = 1; continue; }
        else if (strcmp(a, "--body") == 0) { o->body = 1; continue; }
        else if (strcmp(a, "--watch") == 0) { o->watch = 1; continue; }
        else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "planhost: unknown option '%s'\n", a);
            return -1;
        } else if (o->nfiles < (int)(sizeof o->files / sizeof o->files[0])) {
            o->files[o->nfiles++] = a;
            if (!o->file)
                o->file = a;
            continue;
        } else {
            fprintf(stderr, "planhost: too many arguments ('%s')\n", a);
            return -1;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "planhost: %s needs a value\n", a);
            return -1;
        }
        *slot = argv[++i];
        if (header && ph_cli_add_header(o, header) != 0)
            return -1;
    }
    if (!o->root)
        o->root = default_root();
    return 0;
}

void ph_cli_print_error(const ph_error *err)
{
    fprintf(stderr, "planhost: %s\n", err->message);
    if (err->traceback[0] && getenv("PLANHOST_TRACEBACK"))
        fprintf(stderr, "%s\n", err->traceback);
}

int ph_cli_number(const char *cmd, const char *name, const char *v, long lo, long hi, long *out)
{
    char *end;
    long n = strtol(v, &end, 10);
    if (!*v || *end || n < lo || n > hi) {
        fprintf(stderr, "%s: %s wants a number from %ld to %ld, not '%s'\n", cmd, name, lo, hi, v);
        return -1;
    }
    *out = n;
    return 0;
}

int ph_cli_add_header(opts *o, const char *line)
{
    if (o->nheaders >= PH_MAX_HEADERS) {
        fprintf(stderr, "planhost: at most %d --header options\n", PH_MAX_HEADERS);
        return -1;
    }
    o->headers[o->nheaders++] = line;
    o->headers[o->nheaders] = NULL;
    return 0;
}

ph_host *ph_cli_open_host(const opts *o, int watch)
{
    const char *headers[PH_MAX_HEADERS + 2];
    int n = 0;
    for (; n < o->nheaders; n++)
        headers[n] = o->headers[n];
    const char *key = getenv("PLANHOST_API_KEY");
    char auth[1024];
    if (key && *key) {     /* from the environment, so the key stays out of `ps` */
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", key);
        headers[n++] = auth;
    }
    headers[n] = NULL;
    ph_host_config cfg = {.root = o->root, .watch = watch, .url = o->url, .api = o->api, .model = o->model,
                          .headers = n ? headers : NULL, .cache_file = o->cache_file, .cache_off = o->no_cache};
    ph_error err;
    ph_host *h = ph_host_open(&cfg, &err);
    if (!h)
        ph_cli_print_error(&err);
    return h;
}

/* ---- prompt -------------------------------------------------------------------------- */

static int print_body(ph_host *h, const opts *o, const ph_prompt *p)
{
    int api = ph_api_parse(o->api ? o->api : "ollama");
    if (api < 0) {
        fprintf(stderr, "planhost: unknown --api '%s' (known: ollama, ollama-generate, openai, llamacpp)\n", o->api);
        return 2;
    }
    const ph_template *t = ph_gen_find_template(ph_host_gen(h), o->tmpl);
    ph_buf schema, body;
    ph_buf_init(&schema, 1u << 20);
    if (t->schema)
        ph_schema_build(ph_gen_registry(ph_host_gen(h)), t->tools, t->ntools, t->batch, &schema);
    ph_request_spec spec = {(ph_api)api, o->model ? o->model : PH_DEFAULT_MODEL, p->system, p->system_len,
                            p->user, p->user_len, &t->options, NULL, t->schema ? ph_buf_str(&schema) : NULL};
    ph_buf_init(&body, 4u << 20);
    int rc = ph_wire_body(&spec, &body);
    ph_buf_free(&schema);
    if (rc == 0)
        printf("%s\n", ph_buf_str(&body));
    fprintf(stderr, "POST %s  %zu bytes\n", ph_api_path((ph_api)api), body.len);
    ph_buf_free(&body);
    return rc == 0 ? 0 : 1;
}

/* What prompt and hash start with: the snapshot file read into *text, a host opened. Returns
 * 0, or the exit status after printing why (`usage` when no file was named). */
static int open_with_snapshot(opts *o, const char *usage, char **text, size_t *len, ph_host **h)
{
    if (!o->file)
        return fprintf(stderr, "%s\n", usage), 2;
    ph_error err;
    if (!(*text = ph_read_file(o->file, MAX_SNAPSHOT_FILE, len, &err)))
        return ph_cli_print_error(&err), 2;
    if (!(*h = ph_cli_open_host(o, 0)))
        return free(*text), 1;
    return 0;
}

static int cmd_prompt(opts *o)
{
    if (!o->tmpl)
        o->tmpl = "simplified";
    ph_error err;
    size_t len;
    char *text;
    ph_host *h;
    int opened = open_with_snapshot(o, "planhost prompt: which snapshot? (planhost prompt [--template NAME] "
                                       "SNAPSHOT.json)", &text, &len, &h);
    if (opened)
        return opened;
    ph_prompt p;
    int rc = 0;
    if (ph_host_render(h, o->tmpl, text, len, &p, &err) != 0) {
        if (err.code == PH_ERR_JSON)
            ph_error_prefix(&err, "%s", o->file);
        ph_cli_print_error(&err);
        rc = err.code == PH_ERR_JSON || err.code == PH_ERR_NOTFOUND ? 2 : 1;
    } else {
        if (o->body)
            rc = print_body(h, o, &p);
        else
            printf("=== system ===\n%s\n=== user ===\n%s\n", p.system, p.user);
        fprintf(stderr, "template %s: %zu chars, ~%zu tokens (system %zu bytes, user %zu bytes)\n",
                o->tmpl, p.chars, p.tokens, p.system_len, p.user_len);
        ph_prompt_free(&p);
    }
    ph_host_close(h);
    free(text);
    return rc;
}

/* ---- hash ---------------------------------------------------------------------------- */

/* Prints the snapshot's hash under the generation's rules (exact hashing when the cache is
 * off) and the canonical form, then a note on where the rules came from. */
static int cmd_hash(opts *o)
{
    ph_error err;
    size_t len;
    char *text;
    ph_host *h;
    int opened = open_with_snapshot(o, "planhost hash: which snapshot? (planhost hash SNAPSHOT.json)", &text, &len, &h);
    if (opened)
        return opened;
    ph_hash_rules *own = NULL, *rules = ph_gen_hash_rules(ph_host_gen(h));
    if (!rules)
        rules = own = ph_hash_rules_new();
    ph_buf canon;
    ph_buf_init(&canon, 64u << 20);
    int ok = 0;
    uint64_t hash = rules ? ph_snaphash(rules, text, len, &canon, &err, &ok) : 0;
    int rc = 0;
    if (!ok) {
        ph_error_prefix(&err, "%s", o->file);
        ph_cli_print_error(&err);
        rc = 2;
    } else {
        printf("%016llx\n%s\n", (unsigned long long)hash, ph_buf_str(&canon));
        fprintf(stderr, "%s; rules fingerprint %016llx, scripts %016llx\n",
                own ? "cache off (no policies/cache.lua or enabled = false): exact hash"
                    : "rules from policies/cache.lua",
                (unsigned long long)ph_hash_rules_fingerprint(rules), ph_host_script_hash(h));
    }
    ph_buf_free(&canon);
    ph_hash_rules_free(own);
    ph_host_close(h);
    free(text);
    return rc;
}

/* ---- check --------------------------------------------------------------------------- */

static void print_row(void *ud, const ph_check_row *r)
{
    (void)ud;
    printf("%-12s %-22s %6zu %7zu   %2d/%-2d  %s\n", r->tmpl->name, r->snapshot, r->chars, r->tokens,
           r->tools_named, r->tools_total, r->error ? r->error->message : "ok");
}

static int print_check(ph_host *h)
{
    ph_snapshot_set set;
    ph_error err;
    if (ph_host_snapshots(h, &set, &err) != 0)
        return ph_cli_print_error(&err), 1;
    printf("%-12s %-22s %6s %7s   %-5s  %s\n", "template", "snapshot", "chars", "~tokens", "tools", "status");
    int failed = ph_check_generation(ph_host_gen(h), &set, print_row, NULL, NULL);
    int rows = 0;
    for (int i = 0; i < ph_gen_ntemplates(ph_host_gen(h)); i++)
        rows += set.n + (ph_gen_template(ph_host_gen(h), i)->batch && set.n);
    printf("%d renders, %d failed — generation %u, scripts %016llx, %d example snapshots\n", rows, failed,
           ph_host_generation(h), ph_host_script_hash(h), set.n);
    ph_snapshots_free(&set);
    fflush(stdout);
    return failed ? 1 : 0;
}

static volatile sig_atomic_t stop_watch;

static void on_signal(int sig)
{
    (void)sig;
    stop_watch = 1;
}

/* Waits for the scripts to change on disk (used while no generation loads at all). */
static void wait_for_change(const char *root)
{
    uint64_t sig = ph_tree_signature(root);
    struct timespec tick = {0, 100 * 1000 * 1000};
    while (!stop_watch && ph_tree_signature(root) == sig)
        nanosleep(&tick, NULL);
}

static void report_reload(ph_host *h, const ph_event *ev)
{
    if (strstr(ev->json, "\"ok\":true")) {
        printf("\n-- reloaded --\n");
        print_check(h);
    } else {
        printf("\n-- reload failed; generation %u keeps serving --\n%s\n", ph_host_generation(h), ev->json);
        fflush(stdout);
    }
}

static int cmd_check(opts *o)
{
    if (!o->watch) {
        ph_host *h = ph_cli_open_host(o, 0);
        if (!h)
            return 1;
        int rc = print_check(h);
        ph_host_close(h);
        return rc;
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    ph_host *h = NULL;
    while (!stop_watch && !(h = ph_cli_open_host(o, 1))) {
        fprintf(stderr, "planhost: waiting for a save under %s ...\n", o->root);
        wait_for_change(o->root);
    }
    if (!h)
        return 1;
    print_check(h);
    printf("watching %s/{lua,prompts,policies} — save a file to re-check, Ctrl-C to stop\n", o->root);
    fflush(stdout);
    while (!stop_watch) {
        ph_host_poll(h, 200);
        ph_event ev;
        while (ph_host_next_event(h, &ev))
            if (ev.kind == PH_EVENT_RELOAD)
                report_reload(h, &ev);
    }
    ph_host_close(h);
    return 0;
}

/* `planhost ab ...`: tools/ab/main.lua in the Lua interpreter, told where this command and
 * the script tree are (PLANHOST_EXE, PLANHOST_AB_ROOT). */
static int run_ab(int argc, char **argv)
{
    static char script[4200], exe[4096];
    snprintf(script, sizeof script, "%s/tools/ab/main.lua", PH_SOURCE_ROOT);
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    exe[n > 0 ? n : 0] = '\0';
    if (n > 0)
        setenv("PLANHOST_EXE", exe, 1);
    setenv("PLANHOST_AB_ROOT", default_root(), 0);
    char **args = calloc((size_t)argc + 2, sizeof *args);
    if (!args)
        return 1;
    args[0] = script;
    for (int i = 0; i < argc; i++)
        args[i + 1] = argv[i];
    int rc = ph_cli_lua(argc + 1, args);
    free(args);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return usage(stderr);
    const char *cmd = argv[1];
    if (strcmp(cmd, "lua") == 0)
        return ph_cli_lua(argc - 2, argv + 2);
    if (strcmp(cmd, "ab") == 0)
        return run_ab(argc - 2, argv + 2);
    if (strcmp(cmd, "sim") == 0)
        return ph_sim_main(argc - 1, argv + 1);
    if (strcmp(cmd, "serve") == 0)
        return ph_serve_main(argc - 2, argv + 2);
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0)
        return usage(stdout);
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0)
        return printf("planhost %s\n", PH_VERSION), 0;
    opts o = {0};
    if (ph_cli_parse_opts(argc - 2, argv + 2, &o) != 0)
        return 2;
    if (strcmp(cmd, "batch") == 0)
        return ph_cli_batch(&o);
    if (o.nfiles > 1) {
        fprintf(stderr, "planhost %s: unexpected argument '%s'\n", cmd, o.files[1]);
        return 2;
    }
    if (strcmp(cmd, "prompt") == 0)
        return cmd_prompt(&o);
    if (strcmp(cmd, "check") == 0)
        return cmd_check(&o);
    if (strcmp(cmd, "plan") == 0)
        return ph_cli_plan(&o);
    if (strcmp(cmd, "hash") == 0)
        return cmd_hash(&o);
    if (strcmp(cmd, "parse") == 0)
        return ph_cli_parse(&o);
    fprintf(stderr, "planhost: unknown command '%s'\n", cmd);
    return usage(stderr);
}
