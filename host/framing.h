/* framing — turns a model server's streamed HTTP body into text fragments.
 *
 * Ollama streams NDJSON (one JSON object per line: "response" or "message.content" pieces,
 * a final object with done:true and its counts and durations, or {"error": ...}); OpenAI-
 * compatible servers stream SSE ("data: {...}" lines, ":" comment lines, "data: [DONE]");
 * llama.cpp's /completion streams SSE without [DONE], ending with stop:true and "timings".
 * Bytes arrive split anywhere (inside a line, inside a multi-byte character); the decoder
 * buffers at most one line (capped) and calls back per text fragment as soon as its line
 * is complete. Lines are parsed with jsonstream. No Lua, no network.
 * Depends on jsonstream, wire (ph_api), buf. */
#ifndef PH_FRAMING_H
#define PH_FRAMING_H

#include <stddef.h>

#include "wire.h"

typedef struct ph_frame_stats {
    long prompt_tokens;      /* the server's own counts; -1 when it did not say */
    long completion_tokens;
    double prompt_ms;        /* prefill time; NaN when unknown */
    double gen_ms;           /* decode time; NaN when unknown */
    double total_ms;         /* server-side total; NaN when unknown */
    double load_ms;          /* model load time (Ollama); NaN when unknown */
    const char *done_reason; /* "stop", "length", ...; NULL when unknown */
} ph_frame_stats;

/* Callbacks; the data passed is valid during the call only. Return nonzero to stop. */
typedef struct ph_framing_callbacks {
    int (*text)(void *ud, const char *s, size_t len);   /* a piece of the model's answer */
    int (*done)(void *ud, const ph_frame_stats *st);    /* the server said it finished */
    int (*error)(void *ud, const char *message);        /* the server reported an error in the stream */
} ph_framing_callbacks;

typedef enum ph_frame_status {
    PH_FRAME_OK,        /* feed more */
    PH_FRAME_DONE,      /* the final frame arrived; later bytes are ignored */
    PH_FRAME_STOPPED,   /* a callback asked to stop */
    PH_FRAME_ERROR,     /* malformed framing (a non-JSON line, a line past the cap) or a
                           server error frame; see ph_framing_error */
} ph_frame_status;

typedef struct ph_framing ph_framing;

/* Creates a decoder for `api` (PH_API_OLLAMA: /api/chat, PH_API_OLLAMA_GENERATE:
 * /api/generate, PH_API_OPENAI, PH_API_LLAMACPP). `cb` is copied, `ud` passed through.
 * `max_line` caps one line (0: 1 MiB). NULL when out of memory. */
ph_framing *ph_framing_new(ph_api api, const ph_framing_callbacks *cb, void *ud, size_t max_line);

/* Feeds body bytes as they arrive. */
ph_frame_status ph_framing_feed(ph_framing *f, const char *bytes, size_t len);

/* End of the body. A last line without its newline is decoded. Returns PH_FRAME_DONE when
 * the final frame was seen, PH_FRAME_ERROR when the stream ended without one ("the stream
 * ended before the server said it was done"). */
ph_frame_status ph_framing_finish(ph_framing *f);

/* The last error (owned by the decoder), or NULL. Server errors keep the server's words. */
const char *ph_framing_error(const ph_framing *f);

void ph_framing_free(ph_framing *f);

#endif
