/* framing — turns a model server's streamed HTTP body into text fragments.
 *
 * Ollama streams NDJSON (one JSON object per line: "response" or "message.content" pieces,
 * a final object with done:true and its counts and durations, or {"error": ...}); OpenAI-
 * compatible servers stream SSE ("data: {...}" lines, ":" comment lines, "data: [DONE]");
 * llama.cpp's /completion streams SSE without [DONE], ending with stop:true and "timings".
 * Bytes arrive split anywhere (inside a line, inside a multi-byte character); the decoder
 * buffers at most one line (capped) and calls back per text fragment as soon as its line
 * is complete. Lines are parsed with jsonstream. No Lua, no network.
 *
 * Lines end at LF; a CR just before the LF is dropped (a lone CR does not end a line). In
 * SSE, every "data:" line must hold one whole JSON value (what every known server sends;
 * events spread over several data: lines are not joined); "event:", "id:", "retry:" and other
 * fields are ignored, and "error: {...}" (older llama.cpp servers) is a server error. Blank
 * lines are skipped in NDJSON too. A line acts only once it has parsed whole: a malformed
 * line emits nothing of its own. Only choices[0] of an OpenAI chunk is read (n = 1).
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
    const char *done_reason; /* "stop", "length", ...; NULL when unknown. llama.cpp's stop_type
                                is given in the same words: eos/word -> "stop", limit -> "length" */
    long cached_tokens;      /* prompt tokens the server took from its prompt cache: OpenAI
                                usage.prompt_tokens_details.cached_tokens, or (llama.cpp) the
                                prompt tokens minus timings.prompt_n; -1 when it did not say */
} ph_frame_stats;
/* Where the numbers come from: Ollama prompt_eval_count, eval_count and the *_duration
 * fields (ns, converted to ms); OpenAI usage.prompt_tokens / completion_tokens (only with
 * stream_options.include_usage) and, from llama.cpp's server, timings.prompt_ms and
 * predicted_ms; llama.cpp tokens_evaluated / tokens_predicted (else timings.prompt_n /
 * predicted_n), timings.prompt_ms -> prompt_ms, predicted_ms -> gen_ms, no total or load. */

/* Callbacks, each may be NULL; the data passed is valid during the call only. They must not
 * call ph_framing_* on their own decoder. text: a nonzero return stops the decoder
 * (PH_FRAME_STOPPED, the rest of the feed is dropped). done and error are the last call a
 * decoder makes; their return value is ignored. Text pieces are never empty; their bytes are
 * the server's (decoded from JSON escapes; not checked to be whole characters at piece ends). */
typedef struct ph_framing_callbacks {
    int (*text)(void *ud, const char *s, size_t len);   /* a piece of the model's answer */
    int (*done)(void *ud, const ph_frame_stats *st);    /* the server said it finished */
    int (*error)(void *ud, const char *message);        /* the server reported an error in the stream */
} ph_framing_callbacks;

/* Every status but PH_FRAME_OK is final: later feeds change nothing and return it again. */
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
 * `max_line` caps one line: the bytes before its LF, a CR included (0: 1 MiB); a longer line
 * is a PH_FRAME_ERROR, whatever the split of the feeds. NULL when out of memory. The caller
 * owns the decoder and releases it with ph_framing_free. */
ph_framing *ph_framing_new(ph_api api, const ph_framing_callbacks *cb, void *ud, size_t max_line);

/* Feeds body bytes as they arrive (any split; `bytes` is read during the call only). Every
 * line completed by this feed is decoded, and its text handed over, before the call returns;
 * only the unfinished last line is kept. After PH_FRAME_DONE the rest is ignored. */
ph_frame_status ph_framing_feed(ph_framing *f, const char *bytes, size_t len);

/* End of the body. A last line without its newline is decoded. Returns PH_FRAME_DONE when
 * the final frame was seen, PH_FRAME_ERROR when the stream ended without one ("the stream
 * ended before the server said it was done", with the cut line quoted when the last line
 * does not parse). An OpenAI stream that sent a finish_reason but no [DONE] ends DONE here.
 * When the decoder had already stopped (DONE, STOPPED, ERROR) it returns that status. */
ph_frame_status ph_framing_finish(ph_framing *f);

/* The error message when the status is PH_FRAME_ERROR (owned by the decoder, valid until it
 * is freed), else NULL. Server errors keep the server's words (cut at 1 KiB); framing errors
 * name the line: "line 3 is not JSON: ...", "line 3 is longer than max_line (...)". */
const char *ph_framing_error(const ph_framing *f);

/* Releases the decoder; NULL is allowed. */
void ph_framing_free(ph_framing *f);

#endif
