/* wire — request bodies for the model servers planhost speaks to.
 *
 * Ollama /api/chat and /api/generate, OpenAI-compatible /v1/chat/completions, and llama.cpp's
 * /completion. The system part always comes first, so a server's prompt cache can reuse the
 * static prefix across requests. Bodies are byte-identical for identical inputs. No Lua.
 * Depends on buf, jsonw, script (for ph_model_options). */
#ifndef PH_WIRE_H
#define PH_WIRE_H

#include "buf.h"
#include "script.h"

typedef enum ph_api { PH_API_OLLAMA, PH_API_OLLAMA_GENERATE, PH_API_OPENAI, PH_API_LLAMACPP } ph_api;

typedef struct ph_request_spec {
    ph_api api;
    const char *model;
    const char *system;
    size_t system_len;
    const char *user;
    size_t user_len;
    const ph_model_options *options;   /* may be NULL */
    const char *keep_alive;            /* Ollama only; NULL leaves the server's default */
    const char *schema;                /* JSON schema text for structured output, or NULL */
} ph_request_spec;

/* Parses "ollama", "ollama-generate", "openai", "llamacpp"; returns -1 when unknown. */
int ph_api_parse(const char *name);
const char *ph_api_name(ph_api api);
/* The URL path the API posts to: "/api/chat", "/v1/chat/completions", ... */
const char *ph_api_path(ph_api api);
/* The path a GET answers 2xx on while the server is up: "/api/version" (Ollama),
 * "/v1/models" (OpenAI-compatible), "/health" (llama.cpp). */
const char *ph_api_health_path(ph_api api);

/* Appends the streaming request body for `spec` to `out`. Returns 0, or -1 at the cap. */
int ph_wire_body(const ph_request_spec *spec, ph_buf *out);

#endif
