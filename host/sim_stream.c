/* sim_stream — one generation request, from its parsed body to its last byte.
 *
 * The model script writes the whole answer at once; stop strings and the token limit cut
 * it; then the latency model plays it out: wait for a slot (FIFO), wait for the model load,
 * prefill the prompt tokens the slot's prefix cache does not hold (prefill_tps), then send
 * the answer in token-sized pieces (chars_per_token bytes, never splitting a UTF-8
 * character), one every 1/decode_tps seconds. Tokens are estimated as characters divided by
 * chars_per_token. The queue, load and prefill happen before the response headers, as on a
 * real server; the pieces then stream through libmicrohttpd's content reader. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "sim.h"

#define READER_BLOCK 4096

enum { ST_TOKENS, ST_FINAL, ST_END };
enum { EV_MORE, EV_END, EV_ABORT };

/* ---- tokens ---------------------------------------------------------------------------- */

static size_t piece_bytes(const sim_conn *c)
{
    double cpt = c->srv->profile.chars_per_token;
    return cpt >= 1 ? (size_t)(cpt + 0.5) : 1;
}

/* Length of the piece at `pos`: `want` bytes, stretched to the end of a UTF-8 character. */
static size_t piece_len(const char *s, size_t len, size_t pos, size_t want)
{
    size_t end = pos + want < len ? pos + want : len;
    while (end < len && ((unsigned char)s[end] & 0xC0) == 0x80)
        end++;
    return end - pos;
}

static long count_chars(const char *s, size_t len)
{
    long n = 0;
    for (size_t i = 0; i < len; i++)
        n += ((unsigned char)s[i] & 0xC0) != 0x80;
    return n;
}

static long chars_to_tokens(const sim_conn *c, long chars, int round_up)
{
    double cpt = c->srv->profile.chars_per_token > 0 ? c->srv->profile.chars_per_token : 4;
    double t = chars / cpt;
    return round_up ? (long)(t + 0.999999) : (long)t;
}

/* Scales a delay by the profile's jitter (a deterministic xorshift per request). */
static double jitter(sim_conn *c, double s)
{
    double j = c->srv->profile.jitter;
    if (j <= 0 || s <= 0)
        return s;
    c->rng ^= c->rng << 13, c->rng ^= c->rng >> 7, c->rng ^= c->rng << 17;
    double u = (double)(c->rng >> 11) / 9007199254740992.0;   /* [0, 1) */
    return s * (1 + j * (2 * u - 1));
}

static double token_delay(sim_conn *c)
{
    const sim_profile *p = &c->srv->profile;
    double d = p->decode_tps > 0 ? 1 / p->decode_tps : 0;
    int busy = sim_sched_busy(c->srv->sched);
    if (busy > 1)
        d *= 1 + p->batch_penalty * (busy - 1);
    return sim_fault_delay(c, jitter(c, d));
}

static void stamp(sim_stats *st)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    char day[32];
    strftime(day, sizeof day, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(st->created_at, sizeof st->created_at, "%s.%09ldZ", day, ts.tv_nsec);
    st->created = (long long)ts.tv_sec;
}

/* ---- the answer ------------------------------------------------------------------------ */

static uint64_t mix(uint64_t h, uint64_t v)
{
    h ^= v + 0x9E3779B97F4A7C15ull + (h << 6) + (h >> 2);
    h ^= h >> 31, h *= 0xBF58476D1CE4E5B9ull, h ^= h >> 29;
    return h;
}

static uint64_t fnv(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}

/* Runs the model script: --seed, the request's seed (else its arrival number) and the prompt
 * pick its random choices. */
static int ask_model(sim_conn *c, ph_error *err)
{
    const sim_request *r = &c->req;
    uint64_t rng = mix(c->srv->seed, r->has_seed ? (uint64_t)r->seed : (uint64_t)c->n);
    rng = mix(mix(rng, fnv(r->system.data ? r->system.data : "", r->system.len)),
              fnv(r->prompt.data ? r->prompt.data : "", r->prompt.len));
    sim_call call = {r, c->n, rng >> 1,
                     MHD_lookup_connection_value(c->mhd, MHD_HEADER_KIND, "X-Sim-Misbehave")};
    c->rng = rng | 1;
    return sim_lua_answer(c->srv->model, &call, &c->answer, err);
}

/* Cuts the answer at the first stop string and counts its tokens against the limit. */
static void limit_answer(sim_conn *c)
{
    c->stats.reason = "stop";
    for (int i = 0; i < c->req.nstop; i++) {
        const char *hit = c->answer.len ? strstr(c->answer.data, c->req.stop[i]) : NULL;
        if (hit && (size_t)(hit - c->answer.data) < c->answer.len) {
            c->answer.len = (size_t)(hit - c->answer.data);
            c->answer.data[c->answer.len] = '\0';
            c->stats.stop_word = c->req.stop[i];
        }
    }
    size_t want = piece_bytes(c);
    long n = 0;
    for (size_t at = 0; at < c->answer.len; at += piece_len(c->answer.data, c->answer.len, at, want))
        n++;
    c->max_tok = n;
    if (c->req.num_predict >= 0 && c->req.num_predict < n) {
        c->max_tok = c->req.num_predict;
        c->stats.reason = "length";
        c->stats.stop_word = NULL;
    }
}

/* ---- queue, load, prefill ---------------------------------------------------------------- */

/* The text the prefix cache compares: system part first, as the server's template puts it. */
static void cache_key(const sim_request *r, ph_buf *key)
{
    if (r->api != SIM_LLAMACPP) {
        ph_buf_add(key, r->system.data ? r->system.data : "", r->system.len);
        ph_buf_adds(key, "\n\n");
    }
    ph_buf_add(key, r->prompt.data ? r->prompt.data : "", r->prompt.len);
}

static int take_slot(sim_conn *c, const ph_buf *key)
{
    size_t common = 0;
    double t = sim_now();
    c->slot = sim_sched_acquire(c->srv->sched, c, key->data ? key->data : "", key->len, &common, &c->done_before);
    c->queue_s = sim_now() - t;
    if (c->slot < 0)
        return -1;
    sim_stats *st = &c->stats;
    st->slot = c->slot;
    st->prompt_tokens = chars_to_tokens(c, count_chars(key->data, key->len), 1);
    st->cached = chars_to_tokens(c, count_chars(key->data, common), 0);
    if (st->cached >= st->prompt_tokens)
        st->cached = st->prompt_tokens > 0 ? st->prompt_tokens - 1 : 0;   /* one is always evaluated */
    st->prompt_eval = st->prompt_tokens - st->cached;
    return 0;
}

static int load_and_prefill(sim_conn *c)
{
    const sim_profile *p = &c->srv->profile;
    double t = sim_now();
    if (sim_conn_sleep(c, sim_sched_load_left(c->srv->sched, p->load_s)) != 0)
        return -1;
    double t1 = sim_now();
    c->stats.load_s = t1 - t;
    double prefill = p->prefill_tps > 0 ? c->stats.prompt_eval / p->prefill_tps : 0;
    if (sim_conn_sleep(c, jitter(c, p->overhead_ms / 1e3 + prefill)) != 0)
        return -1;
    c->t_decode = sim_now();
    c->stats.prompt_s = c->t_decode - t1;
    return 0;
}

/* A slot, the model load, the prefill; then the slot's cache holds this prompt. */
static int schedule(sim_conn *c)
{
    ph_buf key;
    ph_buf_init(&key, 2 * SIM_MAX_BODY + 4);
    cache_key(&c->req, &key);
    int rc = take_slot(c, &key) == 0 && load_and_prefill(c) == 0 ? 0 : -1;
    if (rc == 0)
        sim_sched_remember(c->srv->sched, c->slot, key.data ? key.data : "", key.len);
    ph_buf_free(&key);
    return rc;
}

/* Generation is over: final stats, and the slot goes to the next in line. */
static void finish(sim_conn *c)
{
    double now = sim_now();
    c->stats.eval_count = c->ntok;
    c->stats.eval_s = now - c->t_decode;
    c->stats.total_s = now - c->t0;
    stamp(&c->stats);
    if (c->slot >= 0)
        sim_sched_release(c->srv->sched, c->slot);
    c->slot = -1;
}

/* ---- the response ------------------------------------------------------------------------ */

static void add_headers(sim_conn *c, struct MHD_Response *r, int stream)
{
    char v[32];
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, sim_proto_content_type(c->req.api, stream));
    if (stream)
        MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
#define HDR(name, fmt, val) (snprintf(v, sizeof v, fmt, val), MHD_add_response_header(r, name, v))
    HDR("X-Sim-Request", "%lu", c->n);
    HDR("X-Sim-Slot", "%d", c->stats.slot);
    HDR("X-Sim-Queue-Ms", "%.1f", c->queue_s * 1e3);
    HDR("X-Sim-Done-Before", "%lu", c->done_before);
    HDR("X-Sim-Prompt-Tokens", "%ld", c->stats.prompt_tokens);
    HDR("X-Sim-Cached-Tokens", "%ld", c->stats.cached);
#undef HDR
    if (c->fault.kind != SIM_FAULT_NONE)
        MHD_add_response_header(r, "X-Sim-Fault", sim_fault_name(c->fault.kind));
}

static void emit_piece(sim_conn *c)
{
    if (c->pos >= c->answer.len)   /* endless: round again */
        c->pos = 0;
    const char *s = c->answer.len ? c->answer.data : " ";
    size_t len = c->answer.len ? c->answer.len : 1;
    size_t n = piece_len(s, len, c->pos, piece_bytes(c));
    c->stats.eval_count = c->ntok + 1;
    stamp(&c->stats);
    sim_proto_token(&c->out, c->req.api, &c->stats, s + c->pos, n, c->ntok == 0);
    c->pos += n;
    c->ntok++;
}

/* Fills c->out with the next event. */
static int next_event(sim_conn *c)
{
    switch (c->state) {
    case ST_TOKENS:
        if (c->ntok >= c->max_tok && c->fault.kind != SIM_FAULT_ENDLESS) {
            c->state = ST_FINAL;
            return EV_MORE;
        }
        switch (sim_fault_token(c)) {
        case SIM_ABORT: return EV_ABORT;
        case SIM_END: finish(c), c->state = ST_END; return EV_MORE;
        case SIM_GO: break;
        }
        if (sim_conn_sleep(c, token_delay(c)) != 0)
            return EV_ABORT;
        emit_piece(c);
        return EV_MORE;
    case ST_FINAL:
        finish(c);
        sim_proto_final(&c->out, c->req.api, &c->stats);
        c->state = ST_END;
        return EV_MORE;
    default:
        return EV_END;
    }
}

static ssize_t reader(void *cls, uint64_t offset, char *buf, size_t max)
{
    sim_conn *c = cls;
    (void)offset;
    while (c->out_off >= c->out.len) {
        ph_buf_reset(&c->out);
        c->out_off = 0;
        int ev = next_event(c);
        if (ev == EV_END)
            return MHD_CONTENT_READER_END_OF_STREAM;
        if (ev == EV_ABORT || c->out.failed)
            return MHD_CONTENT_READER_END_WITH_ERROR;
    }
    size_t n = c->out.len - c->out_off < max ? c->out.len - c->out_off : max;
    memcpy(buf, c->out.data + c->out_off, n);
    c->out_off += n;
    return (ssize_t)n;
}

static void reader_done(void *cls) { sim_conn_drop(cls); }

static enum MHD_Result start_stream(sim_conn *c)
{
    struct MHD_Response *r =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, READER_BLOCK, reader, c, reader_done);
    if (!r)
        return MHD_NO;
    atomic_fetch_add(&c->refs, 1);
    add_headers(c, r, 1);
    return sim_queue(c, MHD_HTTP_OK, r);
}

/* stream:false: the whole decode time, then one object. */
static enum MHD_Result answer_whole(sim_conn *c)
{
    enum MHD_Result res;
    double per_token = token_delay(c);
    if (sim_fault_whole(c, per_token, &res))
        return res;
    if (sim_conn_sleep(c, per_token * (double)c->max_tok) != 0)
        return MHD_NO;
    size_t want = piece_bytes(c), len = 0;
    for (c->ntok = 0; c->ntok < c->max_tok; c->ntok++)
        len += piece_len(c->answer.data, c->answer.len, len, want);
    finish(c);
    ph_buf_reset(&c->out);
    sim_proto_whole(&c->out, c->req.api, &c->stats, c->answer.data ? c->answer.data : "", len);
    struct MHD_Response *r = MHD_create_response_from_buffer(c->out.len, c->out.data, MHD_RESPMEM_MUST_COPY);
    if (!r)
        return MHD_NO;
    add_headers(c, r, 0);
    return sim_queue(c, MHD_HTTP_OK, r);
}

enum MHD_Result sim_generate(sim_conn *c, sim_api api)
{
    char msg[512];
    enum MHD_Result res;
    c->req.api = api;
    if (sim_fault_for(c, msg, sizeof msg) != 0)
        return sim_reply_error(c, MHD_HTTP_BAD_REQUEST, msg, NULL);
    if (sim_req_parse(&c->req, api, c->upload.data ? c->upload.data : "", c->upload.len, msg, sizeof msg) != 0)
        return sim_reply_error(c, MHD_HTTP_BAD_REQUEST, msg, NULL);
    snprintf(c->stats.model, sizeof c->stats.model, "%s", c->req.model[0] ? c->req.model : SIM_MODEL);
    snprintf(c->stats.id, sizeof c->stats.id, "chatcmpl-sim-%lu", c->n);
    if (sim_fault_early(c, &res))
        return res;
    ph_error err;
    if (ask_model(c, &err) != 0)
        return sim_reply_error(c, err.code == PH_ERR_ARG ? MHD_HTTP_BAD_REQUEST : MHD_HTTP_INTERNAL_SERVER_ERROR,
                               err.message, NULL);
    limit_answer(c);
    if (schedule(c) != 0)
        return MHD_NO;
    return c->req.stream ? start_stream(c) : answer_whole(c);
}
