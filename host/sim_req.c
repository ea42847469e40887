/* sim_req — request bodies of the four generation APIs into one sim_request.
 *
 * The body is tokenized once with jsonstream; each token is routed by its path ("model",
 * "messages[].content", "options.stop[]", ...), so the members may come in any order and
 * unknown ones are skipped. Accepts what wire.c sends and what other clients commonly send
 * (content as a list of text parts, "stop" as a string, max_completion_tokens). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonstream.h"
#include "sim.h"

#define MAX_PATH_DEPTH 8
#define TEXT_CAP SIM_MAX_BODY

static const char *const api_paths[] = {"/api/chat", "/api/generate", "/v1/chat/completions", "/completion"};
static const char *const api_names[] = {"ollama", "ollama-generate", "openai", "llamacpp"};

int sim_api_from_path(const char *path)
{
    for (int i = 0; i < 4; i++)
        if (strcmp(path, api_paths[i]) == 0)
            return i;
    if (strcmp(path, "/chat/completions") == 0 || strcmp(path, "/completions") == 0)
        return strcmp(path, "/completions") == 0 ? SIM_LLAMACPP : SIM_OPENAI;
    return -1;
}

const char *sim_api_path(sim_api api) { return api_paths[api]; }
const char *sim_api_name(sim_api api) { return api_names[api]; }

typedef struct frame {
    char key[48];
    int array;
} frame;

typedef struct parser {
    sim_request *r;
    frame st[MAX_PATH_DEPTH];
    char path[MAX_PATH_DEPTH * 50];
    char role[16];              /* the message being read */
    ph_buf content;
    int top_object, saw_messages, saw_prompt, nmessages, rf_text;
    char msg[160];              /* first problem found */
} parser;

static void fail(parser *p, const char *msg)
{
    if (!p->msg[0])
        snprintf(p->msg, sizeof p->msg, "%s", msg);
}

/* Builds the path of a token at `depth` from the open containers. */
static const char *token_path(parser *p, unsigned depth)
{
    size_t n = 0;
    p->path[0] = '\0';
    for (unsigned i = 0; i < depth && i < MAX_PATH_DEPTH; i++) {
        const char *part = p->st[i].array ? "[]" : p->st[i].key;
        int dot = !p->st[i].array && n > 0;
        n += (size_t)snprintf(p->path + n, sizeof p->path - n, "%s%s", dot ? "." : "", part);
        if (n >= sizeof p->path)
            break;
    }
    return p->path;
}

static void add_option(sim_request *r, const char *name, const char *text, size_t len)
{
    char tmp[64];
    if (r->nopts >= SIM_MAX_OPTIONS || len >= sizeof tmp)
        return;
    memcpy(tmp, text, len);
    tmp[len] = '\0';
    sim_option *o = &r->opts[r->nopts++];
    snprintf(o->name, sizeof o->name, "%.31s", name);
    o->value = strtod(tmp, NULL);
}

static void add_stop(parser *p, const char *s, size_t len)
{
    sim_request *r = p->r;
    if (len == 0 || r->nstop >= SIM_MAX_STOP)
        return;
    if (len > 256)
        return fail(p, "a stop string is longer than 256 bytes");
    char *copy = malloc(len + 1);
    if (!copy)
        return fail(p, "out of memory");
    memcpy(copy, s, len);
    copy[len] = '\0';
    r->stop[r->nstop++] = copy;
}

/* A message closed: its content joins the system or the prompt part. */
static void end_message(parser *p)
{
    ph_buf *to = strcmp(p->role, "system") == 0 ? &p->r->system : &p->r->prompt;
    if (to->len)
        ph_buf_adds(to, "\n");
    ph_buf_add(to, p->content.data ? p->content.data : "", p->content.len);
    ph_buf_reset(&p->content);
    p->role[0] = '\0';
    p->nmessages++;
}

static void on_string(parser *p, const char *path, const ph_json_token *t)
{
    sim_request *r = p->r;
    if (strcmp(path, "model") == 0)
        snprintf(r->model, sizeof r->model, "%.*s", (int)(t->len < 255 ? t->len : 255), t->text);
    else if (strcmp(path, "system") == 0)
        ph_buf_add(&r->system, t->text, t->len);
    else if (strcmp(path, "prompt") == 0)
        ph_buf_add(&r->prompt, t->text, t->len), p->saw_prompt = 1;
    else if (strcmp(path, "messages[].role") == 0)
        snprintf(p->role, sizeof p->role, "%.*s", (int)(t->len < 15 ? t->len : 15), t->text);
    else if (strcmp(path, "messages[].content") == 0 || strcmp(path, "messages[].content[].text") == 0)
        ph_buf_add(&p->content, t->text, t->len);
    else if (strcmp(path, "stop") == 0 || strcmp(path, "stop[]") == 0 || strcmp(path, "options.stop[]") == 0)
        add_stop(p, t->text, t->len);
    else if (strcmp(path, "format") == 0 || (strcmp(path, "grammar") == 0 && t->len))
        r->schema = 1;
    else if (strcmp(path, "response_format.type") == 0)
        p->rf_text = t->len == 4 && memcmp(t->text, "text", 4) == 0;
}

/* A container opens at the token's depth: what it means at its path. */
static void on_begin(parser *p, const char *path, const ph_json_token *t)
{
    if (t->depth == 0) {
        p->top_object = t->kind == PH_JSON_BEGIN_OBJECT;
        return;
    }
    if (strcmp(path, "messages") == 0)
        p->saw_messages = t->kind == PH_JSON_BEGIN_ARRAY;
    else if (strcmp(path, "format") == 0 || strcmp(path, "json_schema") == 0 ||
             strcmp(path, "response_format") == 0)
        p->r->schema = 1;
    else if (strcmp(path, "prompt") == 0)
        fail(p, "\"prompt\" must be a string");
}

static int on_token(void *ctx, const ph_json_token *t)
{
    parser *p = ctx;
    unsigned d = t->depth;
    const char *path = token_path(p, d);
    switch (t->kind) {
    case PH_JSON_BEGIN_OBJECT:
    case PH_JSON_BEGIN_ARRAY:
        on_begin(p, path, t);
        if (d < MAX_PATH_DEPTH)
            p->st[d].array = t->kind == PH_JSON_BEGIN_ARRAY, p->st[d].key[0] = '\0';
        break;
    case PH_JSON_END_OBJECT:
        if (strcmp(path, "messages[]") == 0)
            end_message(p);
        break;
    case PH_JSON_KEY:
        if (d >= 1 && d - 1 < MAX_PATH_DEPTH)
            snprintf(p->st[d - 1].key, sizeof p->st[d - 1].key, "%.*s", (int)(t->len < 47 ? t->len : 47), t->text);
        break;
    case PH_JSON_STRING:
        on_string(p, path, t);
        break;
    case PH_JSON_NUMBER:
        if (d == 1 || strncmp(path, "options.", 8) == 0)
            add_option(p->r, d == 1 ? path : path + 8, t->text, t->len);
        break;
    case PH_JSON_TRUE:
    case PH_JSON_FALSE:
        if (strcmp(path, "stream") == 0)
            p->r->stream = t->kind == PH_JSON_TRUE;
        break;
    default:
        break;
    }
    return 0;
}

static const sim_option *find_option(const sim_request *r, const char *name)
{
    for (int i = 0; i < r->nopts; i++)
        if (strcmp(r->opts[i].name, name) == 0)
            return &r->opts[i];
    return NULL;
}

/* Seed and token limit under whichever name the API uses. */
static void normalize(sim_request *r, parser *p)
{
    static const char *const limits[] = {"num_predict", "max_tokens", "max_completion_tokens", "n_predict"};
    const sim_option *o;
    for (int i = 0; i < 4 && r->num_predict < 0; i++)
        if ((o = find_option(r, limits[i])) && o->value >= 0)
            r->num_predict = o->value < 1e9 ? (long)o->value : 1000000000L;
    if ((o = find_option(r, "seed")) && o->value >= 0 && o->value < 9e18)
        r->seed = (long long)o->value, r->has_seed = 1;
    if (p->rf_text)
        r->schema = 0;
    if (r->stream < 0)
        r->stream = r->api == SIM_OLLAMA_CHAT || r->api == SIM_OLLAMA_GENERATE;
}

/* What each API insists on. */
static void check_required(sim_request *r, parser *p)
{
    int ollama = r->api == SIM_OLLAMA_CHAT || r->api == SIM_OLLAMA_GENERATE;
    if (ollama && !r->model[0])
        fail(p, "model is required");
    else if ((r->api == SIM_OLLAMA_CHAT || r->api == SIM_OPENAI) && !p->saw_messages)
        fail(p, "messages is required (an array of {role, content})");
    else if ((r->api == SIM_OLLAMA_GENERATE || r->api == SIM_LLAMACPP) && !p->saw_prompt)
        fail(p, "prompt is required (a string)");
    else if (r->system.failed || r->prompt.failed || p->content.failed)
        fail(p, "the prompt is too long");
}

/* Runs the tokenizer over the body; a malformed body leaves its message in p->msg. */
static void tokenize(parser *p, const char *body, size_t len)
{
    ph_json_config cfg = {0, 64, TEXT_CAP};
    ph_json *j = ph_json_new(&cfg, on_token, p);
    ph_json_status st = j ? ph_json_feed(j, body, len, NULL) : PH_JSON_ERROR;
    if (st == PH_JSON_OK)
        st = ph_json_finish(j);
    if (!j) {
        fail(p, "out of memory");
    } else if (st != PH_JSON_OK) {
        uint64_t off = 0;
        const char *e = ph_json_error(j, &off);
        snprintf(p->msg, sizeof p->msg, "invalid JSON in the request body at byte %llu: %s",
                 (unsigned long long)off, e ? e : "?");
    }
    ph_json_free(j);
    if (!p->top_object)
        fail(p, "the request body must be a JSON object");
}

int sim_req_parse(sim_request *r, sim_api api, const char *body, size_t len, char *msg, size_t msgsize)
{
    memset(r, 0, sizeof *r);
    r->api = api;
    r->stream = -1;
    r->num_predict = -1;
    ph_buf_init(&r->system, TEXT_CAP);
    ph_buf_init(&r->prompt, TEXT_CAP);
    parser p;
    memset(&p, 0, sizeof p);
    p.r = r;
    ph_buf_init(&p.content, TEXT_CAP);
    tokenize(&p, body, len);
    normalize(r, &p);
    check_required(r, &p);
    ph_buf_free(&p.content);
    snprintf(msg, msgsize, "%s", p.msg);
    return p.msg[0] ? -1 : 0;
}

void sim_req_free(sim_request *r)
{
    ph_buf_free(&r->system);
    ph_buf_free(&r->prompt);
    for (int i = 0; i < r->nstop; i++)
        free(r->stop[i]);
    r->nstop = 0;
}
