/* fuzz_framing — libFuzzer target for the stream decoder (host/framing.h): Ollama NDJSON
 * (/api/chat and /api/generate), OpenAI SSE and llama.cpp SSE.
 *
 * Input: an 8-byte header, then the HTTP body.
 *   [0] the API: bits 0..1 PH_API_OLLAMA, PH_API_OLLAMA_GENERATE, PH_API_OPENAI, PH_API_LLAMACPP
 *   [1] max_line: 0 the default (1 MiB), else 4 * n bytes
 *   [2] the n-th text callback asks to stop, in both runs (0 = never)
 *   [3..7] piece sizes of the split run, used in turn
 * The body is decoded whole and in pieces (each copied to a block of its exact size, freed
 * after the feed). Both runs must give the same callbacks in the same order (text pieces,
 * the done frame's stats, the server error's words), the same final status and the same
 * ph_framing_error. Each run also checks: text pieces are never empty; done and error come
 * at most once, as the last call; a status other than PH_FRAME_OK is final; PH_FRAME_DONE
 * came with done, a server error with PH_FRAME_ERROR; finish is repeatable.
 * Depends on framing, jsonstream, buf, wire. */
#define FUZZ_NAME "fuzz_framing"
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "buf.h"
#include "framing.h"

#define HDR 8

typedef struct run {
    int stop_at, ntext, ndone, nerror, stopped;
    ph_buf log;
    char outcome[300];
} run;

static void put(run *r, const void *p, size_t n)
{
    CHECK(ph_buf_add(&r->log, p, n) == 0);
}

static void put_str(run *r, char tag, const char *s, size_t n)
{
    uint64_t len = s ? n : UINT64_MAX;
    put(r, &tag, 1);
    put(r, &len, sizeof len);
    if (s && n)
        put(r, s, n);
}

static int on_text(void *ud, const char *s, size_t len)
{
    run *r = ud;
    CHECK(!r->ndone && !r->nerror && !r->stopped);
    CHECK(s && len > 0);
    put_str(r, 'T', s, len);
    if (++r->ntext == r->stop_at)
        return r->stopped = 1;
    return 0;
}

static int on_done(void *ud, const ph_frame_stats *st)
{
    run *r = ud;
    CHECK(!r->ndone && !r->nerror && !r->stopped);
    r->ndone++;
    char s[512];
    int n = snprintf(s, sizeof s, "%ld %ld %a %a %a %a %ld", st->prompt_tokens,
                     st->completion_tokens, st->prompt_ms, st->gen_ms, st->total_ms,
                     st->load_ms, st->cached_tokens);
    CHECK(n > 0 && (size_t)n < sizeof s);
    put_str(r, 'D', s, (size_t)n);
    put_str(r, 'R', st->done_reason, st->done_reason ? strlen(st->done_reason) : 0);
    return 0;
}

static int on_error(void *ud, const char *message)
{
    run *r = ud;
    CHECK(!r->ndone && !r->nerror && !r->stopped);
    CHECK(message && message[0]);
    r->nerror++;
    put_str(r, 'X', message, strlen(message));
    return 1;   /* ignored: error is the last call either way */
}

static void decode(run *r, ph_api api, size_t max_line, const char *body, size_t len,
                   const uint8_t *sizes)
{
    ph_framing_callbacks cb = {on_text, on_done, on_error};
    ph_framing *f = ph_framing_new(api, &cb, r, max_line);
    CHECK(f != NULL);
    ph_frame_status st = PH_FRAME_OK;
    size_t pos = 0, k = 0;
    while (pos < len) {
        size_t n = sizes ? fuzz_piece(sizes, 5, &k) : len;
        if (n > len - pos)
            n = len - pos;
        char *copy = malloc(n);
        CHECK(copy != NULL);
        memcpy(copy, body + pos, n);
        ph_frame_status was = st;
        st = ph_framing_feed(f, copy, n);
        free(copy);
        CHECK(was == PH_FRAME_OK || st == was);
        pos += n;
    }
    ph_frame_status fin = ph_framing_finish(f);
    CHECK(st == PH_FRAME_OK || fin == st);
    CHECK(ph_framing_finish(f) == fin);
    CHECK(ph_framing_feed(f, "\n", 1) == fin || fin == PH_FRAME_OK);
    CHECK(fin != PH_FRAME_OK);
    CHECK((fin == PH_FRAME_STOPPED) == r->stopped);
    CHECK((fin == PH_FRAME_DONE) == (r->ndone == 1));
    CHECK(!r->nerror || fin == PH_FRAME_ERROR);
    const char *err = ph_framing_error(f);
    CHECK((fin == PH_FRAME_ERROR) == (err != NULL));
    int32_t tail = fin;
    put(r, "E", 1);
    put(r, &tail, sizeof tail);
    put_str(r, 'M', err, err ? strlen(err) : 0);
    snprintf(r->outcome, sizeof r->outcome, "%d texts, %d done, %d errors, status %d: %s",
             r->ntext, r->ndone, r->nerror, (int)fin, err ? err : "-");
    ph_framing_free(f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t hdr[HDR] = {0};
    memcpy(hdr, data, size < HDR ? size : HDR);
    const char *body = size > HDR ? (const char *)data + HDR : "";
    size_t len = size > HDR ? size - HDR : 0;
    static const ph_api apis[] = {PH_API_OLLAMA, PH_API_OLLAMA_GENERATE, PH_API_OPENAI,
                                  PH_API_LLAMACPP};
    ph_api api = apis[hdr[0] & 3];
    size_t max_line = 4u * hdr[1];

    run whole = {.stop_at = hdr[2]}, split = {.stop_at = hdr[2]};
    ph_buf_init(&whole.log, (size_t)-1 / 2);
    ph_buf_init(&split.log, (size_t)-1 / 2);
    decode(&whole, api, max_line, body, len, NULL);
    decode(&split, api, max_line, body, len, hdr + 3);
    fuzz_same_logs(&whole.log, &split.log, whole.outcome, split.outcome);
    ph_buf_free(&whole.log);
    ph_buf_free(&split.log);
    return 0;
}
