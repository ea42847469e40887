/* sim_proto — the bytes of each API's answers, as the real servers write them.
 *
 *   Ollama /api/chat, /api/generate   NDJSON: {"model","created_at","message":{..}|"response",
 *                                     "done":false} per token; the last object has done:true,
 *                                     done_reason, the counts and four durations in ns
 *   OpenAI /v1/chat/completions       SSE: data: chat.completion.chunk with
 *                                     choices[0].delta.content; a finish chunk with
 *                                     finish_reason and usage; then data: [DONE]
 *   llama.cpp /completion             SSE: data: {"content","stop":false}; the last event has
 *                                     stop:true, timings, tokens_evaluated, ...; no [DONE]
 *
 * Every function appends to a ph_buf; nothing here knows about time or sockets. */
#include <stdio.h>
#include <string.h>

#include "jsonw.h"
#include "sim.h"

#define NS(s) ((long long)((s) * 1e9))

const char *sim_proto_content_type(sim_api api, int stream)
{
    if (!stream)
        return "application/json; charset=utf-8";
    return api == SIM_OLLAMA_CHAT || api == SIM_OLLAMA_GENERATE ? "application/x-ndjson" : "text/event-stream";
}

static int is_ollama(sim_api api) { return api == SIM_OLLAMA_CHAT || api == SIM_OLLAMA_GENERATE; }

/* {"model":..,"created_at":.., then the answer text as the Ollama endpoint carries it. */
static void ollama_head(ph_buf *b, sim_api api, const sim_stats *st, const char *text, size_t n)
{
    ph_buf_adds(b, "{\"model\":");
    ph_jsonw_cstr(b, st->model);
    ph_jsonw_key(b, "created_at", 0), ph_jsonw_cstr(b, st->created_at);
    if (api == SIM_OLLAMA_CHAT) {
        ph_buf_adds(b, ",\"message\":{\"role\":\"assistant\",\"content\":");
        ph_jsonw_str(b, text, n);
        ph_buf_adds(b, "}");
    } else {
        ph_jsonw_key(b, "response", 0), ph_jsonw_str(b, text, n);
    }
}

static void ollama_done(ph_buf *b, const sim_stats *st)
{
    ph_jsonw_key(b, "done_reason", 0), ph_jsonw_cstr(b, st->reason);
    ph_buf_addf(b, ",\"done\":true,\"total_duration\":%lld,\"load_duration\":%lld,"
                   "\"prompt_eval_count\":%ld,\"prompt_eval_duration\":%lld,"
                   "\"eval_count\":%ld,\"eval_duration\":%lld}",
                NS(st->total_s), NS(st->load_s), st->prompt_eval, NS(st->prompt_s), st->eval_count,
                NS(st->eval_s));
}

/* {"id":..,"object":..,"created":..,"model":..,"system_fingerprint":.., */
static void openai_head(ph_buf *b, const sim_stats *st, const char *object)
{
    ph_buf_adds(b, "{\"id\":");
    ph_jsonw_cstr(b, st->id);
    ph_buf_addf(b, ",\"object\":\"%s\",\"created\":%lld,\"model\":", object, st->created);
    ph_jsonw_cstr(b, st->model);
    ph_buf_adds(b, ",\"system_fingerprint\":\"planhost-sim\",");
}

static void openai_usage(ph_buf *b, const sim_stats *st)
{
    ph_buf_addf(b, ",\"usage\":{\"prompt_tokens\":%ld,\"completion_tokens\":%ld,\"total_tokens\":%ld,"
                   "\"prompt_tokens_details\":{\"cached_tokens\":%ld}}}",
                st->prompt_tokens, st->eval_count, st->prompt_tokens + st->eval_count, st->cached);
}

static double per_second(long n, double s) { return s > 0 ? n / s : 0; }
static double per_token_ms(long n, double s) { return n > 0 ? s * 1e3 / n : 0; }

/* llama.cpp's closing fields, after "content". */
static void llamacpp_done(ph_buf *b, const sim_stats *st)
{
    const char *type = st->stop_word ? "word" : strcmp(st->reason, "length") == 0 ? "limit" : "eos";
    ph_buf_addf(b, ",\"id_slot\":%d,\"stop\":true,\"model\":", st->slot);
    ph_jsonw_cstr(b, st->model);
    ph_buf_addf(b, ",\"tokens_predicted\":%ld,\"tokens_evaluated\":%ld,\"tokens_cached\":%ld,"
                   "\"truncated\":false,\"stop_type\":\"%s\",\"stopping_word\":",
                st->eval_count, st->prompt_tokens, st->cached, type);
    ph_jsonw_cstr(b, st->stop_word ? st->stop_word : "");
    ph_buf_addf(b, ",\"timings\":{\"prompt_n\":%ld,\"prompt_ms\":", st->prompt_eval);
    ph_jsonw_num(b, st->prompt_s * 1e3);
    ph_buf_adds(b, ",\"prompt_per_token_ms\":"), ph_jsonw_num(b, per_token_ms(st->prompt_eval, st->prompt_s));
    ph_buf_adds(b, ",\"prompt_per_second\":"), ph_jsonw_num(b, per_second(st->prompt_eval, st->prompt_s));
    ph_buf_addf(b, ",\"predicted_n\":%ld,\"predicted_ms\":", st->eval_count);
    ph_jsonw_num(b, st->eval_s * 1e3);
    ph_buf_adds(b, ",\"predicted_per_token_ms\":"), ph_jsonw_num(b, per_token_ms(st->eval_count, st->eval_s));
    ph_buf_adds(b, ",\"predicted_per_second\":"), ph_jsonw_num(b, per_second(st->eval_count, st->eval_s));
    ph_buf_adds(b, "}}");
}

void sim_proto_token(ph_buf *b, sim_api api, const sim_stats *st, const char *piece, size_t n, int first)
{
    switch (api) {
    case SIM_OLLAMA_CHAT:
    case SIM_OLLAMA_GENERATE:
        ollama_head(b, api, st, piece, n);
        ph_buf_adds(b, ",\"done\":false}\n");
        break;
    case SIM_OPENAI:
        ph_buf_adds(b, "data: ");
        openai_head(b, st, "chat.completion.chunk");
        ph_buf_adds(b, first ? "\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":"
                             : "\"choices\":[{\"index\":0,\"delta\":{\"content\":");
        ph_jsonw_str(b, piece, n);
        ph_buf_adds(b, "},\"logprobs\":null,\"finish_reason\":null}]}\n\n");
        break;
    case SIM_LLAMACPP:
        ph_buf_adds(b, "data: {\"index\":0,\"content\":");
        ph_jsonw_str(b, piece, n);
        ph_buf_addf(b, ",\"tokens\":[],\"stop\":false,\"id_slot\":%d,\"tokens_predicted\":%ld,"
                       "\"tokens_evaluated\":%ld}\n\n", st->slot, st->eval_count, st->prompt_tokens);
        break;
    }
}

void sim_proto_final(ph_buf *b, sim_api api, const sim_stats *st)
{
    switch (api) {
    case SIM_OLLAMA_CHAT:
    case SIM_OLLAMA_GENERATE:
        ollama_head(b, api, st, "", 0);
        ollama_done(b, st);
        ph_buf_adds(b, "\n");
        break;
    case SIM_OPENAI:
        ph_buf_adds(b, "data: ");
        openai_head(b, st, "chat.completion.chunk");
        ph_buf_addf(b, "\"choices\":[{\"index\":0,\"delta\":{},\"logprobs\":null,\"finish_reason\":\"%s\"}]",
                    st->reason);
        openai_usage(b, st);
        ph_buf_adds(b, "\n\ndata: [DONE]\n\n");
        break;
    case SIM_LLAMACPP:
        ph_buf_adds(b, "data: {\"index\":0,\"content\":\"\",\"tokens\":[]");
        llamacpp_done(b, st);
        ph_buf_adds(b, "\n\n");
        break;
    }
}

void sim_proto_whole(ph_buf *b, sim_api api, const sim_stats *st, const char *text, size_t n)
{
    switch (api) {
    case SIM_OLLAMA_CHAT:
    case SIM_OLLAMA_GENERATE:
        ollama_head(b, api, st, text, n);
        ollama_done(b, st);
        break;
    case SIM_OPENAI:
        openai_head(b, st, "chat.completion");
        ph_buf_adds(b, "\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":");
        ph_jsonw_str(b, text, n);
        ph_buf_addf(b, "},\"logprobs\":null,\"finish_reason\":\"%s\"}]", st->reason);
        openai_usage(b, st);
        break;
    case SIM_LLAMACPP:
        ph_buf_adds(b, "{\"index\":0,\"content\":");
        ph_jsonw_str(b, text, n);
        ph_buf_adds(b, ",\"tokens\":[]");
        llamacpp_done(b, st);
        break;
    }
    ph_buf_adds(b, "\n");
}

static const char *status_type(unsigned status)
{
    switch (status) {
    case 400: return "invalid_request_error";
    case 404: return "not_found_error";
    case 413: return "invalid_request_error";
    case 503: return "unavailable_error";
    default: return status >= 500 ? "server_error" : "invalid_request_error";
    }
}

void sim_proto_stream_error(ph_buf *b, sim_api api, const char *msg)
{
    if (is_ollama(api)) {
        ph_buf_adds(b, "{\"error\":");
        ph_jsonw_cstr(b, msg);
        ph_buf_adds(b, "}\n");
    } else if (api == SIM_OPENAI) {
        ph_buf_adds(b, "data: {\"error\":{\"message\":");
        ph_jsonw_cstr(b, msg);
        ph_buf_adds(b, ",\"type\":\"server_error\",\"param\":null,\"code\":null}}\n\n");
    } else {
        ph_buf_adds(b, "error: {\"code\":500,\"message\":");
        ph_jsonw_cstr(b, msg);
        ph_buf_adds(b, ",\"type\":\"server_error\"}\n\n");
    }
}

void sim_proto_error(ph_buf *b, sim_api api, unsigned status, const char *msg, const char *code)
{
    if (is_ollama(api)) {
        ph_buf_adds(b, "{\"error\":");
        ph_jsonw_cstr(b, msg);
        ph_buf_adds(b, "}\n");
    } else if (api == SIM_OPENAI) {
        ph_buf_adds(b, "{\"error\":{\"message\":");
        ph_jsonw_cstr(b, msg);
        int missing = code && strcmp(code, "model_not_found") == 0;   /* OpenAI's own choice */
        ph_buf_addf(b, ",\"type\":\"%s\",\"param\":null,\"code\":",
                    missing ? "invalid_request_error" : status_type(status));
        if (code)
            ph_jsonw_cstr(b, code);
        else
            ph_buf_addf(b, "%u", status);
        ph_buf_adds(b, "}}\n");
    } else {
        ph_buf_addf(b, "{\"error\":{\"code\":%u,\"message\":", status);
        ph_jsonw_cstr(b, msg);
        ph_buf_addf(b, ",\"type\":\"%s\"}}\n", status_type(status));
    }
}

void sim_proto_garbage(ph_buf *b, sim_api api, long n)
{
    if (is_ollama(api))
        ph_buf_addf(b, "<<planhost sim garbage %ld: this line is not JSON>>\n", n);
    else
        ph_buf_addf(b, "data: <<planhost sim garbage %ld: this line is not JSON>>\n\n", n);
}
