/* wire — request bodies. See wire.h. */
#include "wire.h"

#include <math.h>
#include <string.h>

#include "jsonw.h"

static const char *const api_names[] = {"ollama", "ollama-generate", "openai", "llamacpp"};
static const char *const api_paths[] = {"/api/chat", "/api/generate", "/v1/chat/completions", "/completion"};

int ph_api_parse(const char *name)
{
    for (int i = 0; i < 4; i++)
        if (strcmp(name, api_names[i]) == 0)
            return i;
    return -1;
}

const char *ph_api_name(ph_api api) { return api_names[api]; }
const char *ph_api_path(ph_api api) { return api_paths[api]; }

const char *ph_api_health_path(ph_api api)
{
    static const char *const paths[] = {"/api/version", "/api/version", "/v1/models", "/health"};
    return paths[api];
}

/* Appends ,"key":number when the option is set. */
static void opt_num(ph_buf *b, const char *key, double v, int set)
{
    if (!set)
        return;
    ph_jsonw_key(b, key, 0);
    ph_jsonw_num(b, v);
}

static void opt_stop(ph_buf *b, const char *key, const ph_model_options *o)
{
    if (!o->nstop)
        return;
    ph_jsonw_key(b, key, 0);
    ph_buf_adds(b, "[");
    for (int i = 0; i < o->nstop; i++) {
        if (i)
            ph_buf_adds(b, ",");
        ph_jsonw_cstr(b, o->stop[i]);
    }
    ph_buf_adds(b, "]");
}

/* Ollama's "options" object: its own names for the sampling settings. */
static void ollama_options(ph_buf *b, const ph_model_options *o)
{
    ph_buf_adds(b, ",\"options\":{");
    size_t mark = b->len;
    opt_num(b, "temperature", o->temperature, !isnan(o->temperature));
    opt_num(b, "top_p", o->top_p, !isnan(o->top_p));
    opt_num(b, "top_k", (double)o->top_k, o->top_k >= 0);
    opt_num(b, "seed", (double)o->seed, o->seed >= 0);
    opt_num(b, "num_predict", (double)o->num_predict, o->num_predict >= 0);
    opt_num(b, "num_ctx", (double)o->num_ctx, o->num_ctx >= 0);
    opt_stop(b, "stop", o);
    if (b->len > mark)   /* drop the comma the first option wrote */
        memmove(b->data + mark, b->data + mark + 1, b->len - mark), b->len--;
    ph_buf_adds(b, "}");
}

/* OpenAI and llama.cpp take the settings at the top level, under their own names. */
static void flat_options(ph_buf *b, const ph_model_options *o, int llamacpp)
{
    opt_num(b, "temperature", o->temperature, !isnan(o->temperature));
    opt_num(b, "top_p", o->top_p, !isnan(o->top_p));
    if (llamacpp)
        opt_num(b, "top_k", (double)o->top_k, o->top_k >= 0);
    opt_num(b, "seed", (double)o->seed, o->seed >= 0);
    opt_num(b, llamacpp ? "n_predict" : "max_tokens", (double)o->num_predict, o->num_predict >= 0);
    opt_stop(b, "stop", o);
}

static void messages(ph_buf *b, const ph_request_spec *s)
{
    ph_buf_adds(b, ",\"messages\":[{\"role\":\"system\",\"content\":");
    ph_jsonw_str(b, s->system, s->system_len);
    ph_buf_adds(b, "},{\"role\":\"user\",\"content\":");
    ph_jsonw_str(b, s->user, s->user_len);
    ph_buf_adds(b, "}]");
}

int ph_wire_body(const ph_request_spec *s, ph_buf *b)
{
    static const ph_model_options none = {NAN, NAN, -1, -1, -1, -1, NULL, 0};
    const ph_model_options *o = s->options ? s->options : &none;
    ph_buf_adds(b, "{\"model\":");
    ph_jsonw_cstr(b, s->model);
    switch (s->api) {
    case PH_API_OLLAMA:
    case PH_API_OLLAMA_GENERATE:
        if (s->api == PH_API_OLLAMA) {
            messages(b, s);
        } else {
            ph_buf_adds(b, ",\"system\":");
            ph_jsonw_str(b, s->system, s->system_len);
            ph_buf_adds(b, ",\"prompt\":");
            ph_jsonw_str(b, s->user, s->user_len);
        }
        ph_buf_adds(b, ",\"stream\":true");
        if (s->schema)
            ph_buf_addf(b, ",\"format\":%s", s->schema);
        ollama_options(b, o);
        if (s->keep_alive)
            ph_jsonw_key(b, "keep_alive", 0), ph_jsonw_cstr(b, s->keep_alive);
        break;
    case PH_API_OPENAI:
        messages(b, s);
        ph_buf_adds(b, ",\"stream\":true,\"stream_options\":{\"include_usage\":true}");
        flat_options(b, o, 0);
        if (s->schema)
            ph_buf_addf(b, ",\"response_format\":{\"type\":\"json_schema\",\"json_schema\":"
                           "{\"name\":\"plan\",\"strict\":true,\"schema\":%s}}", s->schema);
        break;
    case PH_API_LLAMACPP:
        ph_buf_adds(b, ",\"prompt\":");
        {   /* one text: system, a blank line, user */
            ph_buf joined;
            ph_buf_init(&joined, b->cap);
            ph_buf_add(&joined, s->system, s->system_len);
            ph_buf_adds(&joined, "\n\n");
            ph_buf_add(&joined, s->user, s->user_len);
            ph_jsonw_str(b, joined.data, joined.len);
            ph_buf_free(&joined);
        }
        ph_buf_adds(b, ",\"stream\":true,\"cache_prompt\":true");
        flat_options(b, o, 1);
        if (s->schema)
            ph_buf_addf(b, ",\"json_schema\":%s", s->schema);
        break;
    }
    ph_buf_adds(b, "}");
    return b->failed ? -1 : 0;
}
