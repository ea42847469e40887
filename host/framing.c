/* framing — a model server's streamed body, line by line, into text fragments and one final
 * frame (see framing.h for the contract).
 *
 * One pass: each feed is split at LF with memchr. A line lying wholly inside the feed is
 * decoded in place; only the line cut by the feed's end is copied, into `part` (capped at
 * max_line). NDJSON lines (Ollama) and SSE "data:" payloads (OpenAI-compatible servers,
 * llama.cpp) go through one jsonstream handle, reset per line. Its token callback keeps a small
 * context stack (top object > choices > choices[0] > delta, ...) and records only the members
 * it knows: the answer text, done flags, counts, durations, error words. A line acts only once
 * it has parsed whole, so a malformed line never leaves half its text behind.
 * Depends on jsonstream, buf and wire (ph_api); libc and libm.
 */
#include "framing.h"

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "jsonstream.h"

#define DEFAULT_MAX_LINE (1024u * 1024u)
#define MAX_CTX 6       /* deepest container whose members matter (top > choices > [0] > delta) */
#define ERR_CAP 1024    /* longest error message kept; server words are cut at a character */
#define REASON_CAP 32
#define SNIPPET 48      /* bytes of a bad line quoted in its error message */
#define NO_WORDS "the server reported an error without a message"

/* What a container is, for the members it holds. */
enum ctx { C_SKIP, C_TOP, C_MESSAGE, C_CHOICES, C_CHOICE, C_DELTA, C_USAGE, C_DETAILS,
           C_TIMINGS, C_ERROR, C_COUNT };

/* What a value is, from the key (or array position) it sits under. */
enum field {
    F_NONE, F_ROOT, F_CHOICE0,
    F_MESSAGE, F_CHOICES, F_DELTA, F_USAGE, F_DETAILS, F_TIMINGS, F_ERROR,
    F_TEXT, F_DONE, F_REASON, F_STOP_TYPE, F_STOPPED_STOP, F_STOPPED_LIMIT, F_INDEX, F_OBJECT,
    F_ERR_MSG,
    /* numbers, kept in num[] (bit i of `have` set when num[i] is) */
    F_PROMPT_N, F_GEN_N, F_T_PROMPT_N, F_T_GEN_N, F_CACHED_N,
    F_PROMPT_NS, F_GEN_NS, F_TOTAL_NS, F_LOAD_NS, F_PROMPT_MS, F_GEN_MS,
    F_END
};
#define NUM0 F_PROMPT_N
#define NNUM (F_END - NUM0)
#define HAVE(t, fl) (((t)->have >> ((fl) - NUM0)) & 1u)
#define VAL(t, fl) ((t)->num[(fl) - NUM0])

/* Which APIs know a member. */
#define A_CHAT (1u << PH_API_OLLAMA)
#define A_GEN (1u << PH_API_OLLAMA_GENERATE)
#define A_OAI (1u << PH_API_OPENAI)
#define A_LCPP (1u << PH_API_LLAMACPP)
#define A_OLL (A_CHAT | A_GEN)
#define A_ALL (A_OLL | A_OAI | A_LCPP)

typedef struct member {
    const char *name;
    uint8_t len, field, apis;
} member;
#define M(n, f, a) {n, (uint8_t)(sizeof n - 1), f, a}

/* "message" is Ollama chat's message object, or (a string) the words of an old vLLM
 * {"object":"error",...} chunk or of llama.cpp's "error:" payload. */
static const member top_members[] = {
    M("message", F_MESSAGE, A_ALL), M("response", F_TEXT, A_GEN),
    M("content", F_TEXT, A_LCPP), M("done", F_DONE, A_OLL), M("stop", F_DONE, A_LCPP),
    M("done_reason", F_REASON, A_OLL), M("prompt_eval_count", F_PROMPT_N, A_OLL),
    M("eval_count", F_GEN_N, A_OLL), M("prompt_eval_duration", F_PROMPT_NS, A_OLL),
    M("eval_duration", F_GEN_NS, A_OLL), M("total_duration", F_TOTAL_NS, A_OLL),
    M("load_duration", F_LOAD_NS, A_OLL), M("error", F_ERROR, A_ALL),
    M("choices", F_CHOICES, A_OAI), M("usage", F_USAGE, A_OAI), M("object", F_OBJECT, A_OAI),
    M("timings", F_TIMINGS, A_OAI | A_LCPP), M("stop_type", F_STOP_TYPE, A_LCPP),
    M("stopped_eos", F_STOPPED_STOP, A_LCPP), M("stopped_word", F_STOPPED_STOP, A_LCPP),
    M("stopped_limit", F_STOPPED_LIMIT, A_LCPP), M("tokens_evaluated", F_PROMPT_N, A_LCPP),
    M("tokens_predicted", F_GEN_N, A_LCPP),
};
static const member message_members[] = {M("content", F_TEXT, A_CHAT)};
static const member choice_members[] = {
    M("delta", F_DELTA, A_OAI), M("finish_reason", F_REASON, A_OAI), M("index", F_INDEX, A_OAI),
};
static const member delta_members[] = {M("content", F_TEXT, A_OAI)};
static const member usage_members[] = {
    M("prompt_tokens", F_PROMPT_N, A_OAI), M("completion_tokens", F_GEN_N, A_OAI),
    M("prompt_tokens_details", F_DETAILS, A_OAI),
};
static const member details_members[] = {M("cached_tokens", F_CACHED_N, A_OAI)};
static const member timings_members[] = {
    M("prompt_n", F_T_PROMPT_N, A_ALL), M("prompt_ms", F_PROMPT_MS, A_ALL),
    M("predicted_n", F_T_GEN_N, A_ALL), M("predicted_ms", F_GEN_MS, A_ALL),
};
static const member error_members[] = {M("message", F_ERR_MSG, A_ALL)};

#define TABLE(t) {t, sizeof t / sizeof t[0]}
static const struct { const member *m; size_t n; } tables[C_COUNT] = {
    [C_TOP] = TABLE(top_members), [C_MESSAGE] = TABLE(message_members),
    [C_CHOICE] = TABLE(choice_members), [C_DELTA] = TABLE(delta_members),
    [C_USAGE] = TABLE(usage_members), [C_DETAILS] = TABLE(details_members),
    [C_TIMINGS] = TABLE(timings_members), [C_ERROR] = TABLE(error_members),
};

/* Numbers and the finish reason, for one line or summed up over the stream. */
typedef struct tally {
    unsigned have;
    double num[NNUM];
    char reason[REASON_CAP];
} tally;

/* What one line said; reset before each line. */
typedef struct line {
    uint8_t cont[MAX_CTX + 1];  /* context of the container opened at each depth */
    uint8_t key[MAX_CTX + 2];   /* field named by the last key seen at each depth */
    signed char done;           /* done/stop: -1 absent, 0 false, 1 true */
    signed char index;          /* choices[0].index: -1 absent, 0, 1 = nonzero */
    uint8_t not_object, has_error, object_error, oom;
    tally t;
    ph_buf text;                /* the answer text of this line (cap max_line) */
    ph_buf msg;                 /* error words of this line (cap ERR_CAP) */
} line;

struct ph_framing {
    ph_api api;
    ph_framing_callbacks cb;
    void *ud;
    size_t max_line;
    ph_frame_status status;
    int finishing;              /* decoding the unterminated last line in ph_framing_finish */
    unsigned long lineno;       /* lines started so far (1-based number of the current one) */
    ph_json *json;
    ph_buf part;                /* the line cut by the end of the last feed */
    ph_buf err;                 /* the error message, once status is PH_FRAME_ERROR */
    tally tot;                  /* what the lines so far said about counts and timings */
    line ln;
};

/* ---- messages ------------------------------------------------------------------------ */

/* Length of s[0..n) cut to at most max bytes without splitting a UTF-8 character. */
static size_t utf8_cut(const char *s, size_t n, size_t max)
{
    if (n <= max)
        return n;
    while (max > 0 && ((unsigned char)s[max] & 0xC0) == 0x80)
        max--;
    return max;
}

/* Records a framing error (no callback). */
static ph_frame_status fail(ph_framing *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static ph_frame_status fail(ph_framing *f, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ph_buf_reset(&f->err);
    ph_buf_vaddf(&f->err, fmt, ap);
    va_end(ap);
    f->status = PH_FRAME_ERROR;
    return f->status;
}

/* Records the server's own error words and hands them to the error callback. The words are
 * a C string from here on: they end at a NUL byte, and none at all reads NO_WORDS. */
static ph_frame_status server_error(ph_framing *f, const char *msg, size_t len)
{
    const char *nul = memchr(msg, '\0', len);
    if (nul)
        len = (size_t)(nul - msg);
    if (len == 0)
        msg = NO_WORDS, len = sizeof NO_WORDS - 1;
    ph_buf_reset(&f->err);
    ph_buf_add(&f->err, msg, utf8_cut(msg, len, ERR_CAP));
    f->status = PH_FRAME_ERROR;
    if (f->cb.error)
        f->cb.error(f->ud, ph_buf_str(&f->err));
    return f->status;
}

/* Writes a printable quote of a bad line into out (at least SNIPPET + 4 bytes). */
static void snippet(char *out, const char *p, size_t n)
{
    size_t k = utf8_cut(p, n, SNIPPET);
    for (size_t i = 0; i < k; i++)
        out[i] = (unsigned char)p[i] < 0x20 || p[i] == 0x7f ? '?' : p[i];
    strcpy(out + k, k < n ? "..." : "");
}

/* A line that is not what the protocol expects; while finishing, the stream was cut. */
static ph_frame_status bad_line(ph_framing *f, const char *what, const char *p, size_t n,
                                const char *detail)
{
    char q[SNIPPET + 4];
    snippet(q, p, n);
    if (f->finishing)
        return fail(f, "the stream ended before the server said it was done (its last line, "
                       "line %lu, is cut short: %s)", f->lineno, q);
    return fail(f, "line %lu is not %s: %s%s%s%s", f->lineno, what, q, detail ? " (" : "",
                detail ? detail : "", detail ? ")" : "");
}

/* ---- reading one JSON line ------------------------------------------------------------ */

/* A JSON number (grammar already checked by jsonstream) as a double; locale-independent. */
static double json_num(const char *s, size_t n)
{
    static const double p10[23] = {1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10,
                                   1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19,
                                   1e20, 1e21, 1e22};
    const char *end = s + n;
    double v = 0;
    int neg = s < end && *s == '-', exp = 0, eneg = 0, e = 0;
    s += neg;
    for (; s < end && *s >= '0' && *s <= '9'; s++)
        v = v * 10 + (*s - '0');
    if (s < end && *s == '.')
        for (s++; s < end && *s >= '0' && *s <= '9'; s++, exp--)
            v = v * 10 + (*s - '0');
    if (s < end && (*s == 'e' || *s == 'E')) {
        s++;
        if (s < end && (*s == '+' || *s == '-'))
            eneg = *s++ == '-';
        for (; s < end && *s >= '0' && *s <= '9' && e < 10000; s++)
            e = e * 10 + (*s - '0');
    }
    exp += eneg ? -e : e;
    /* powers of ten up to 1e22 are exact, so 112.031 comes out as the double nearest it */
    if (exp < 0)
        v = -exp <= 22 ? v / p10[-exp] : v / pow(10, -exp);
    else if (exp > 0)
        v = exp <= 22 ? v * p10[exp] : v * pow(10, exp);
    return neg ? -v : v;
}

static void set_reason(line *ln, const char *s, size_t n)
{
    n = utf8_cut(s, n, REASON_CAP - 1);
    memcpy(ln->t.reason, s, n);
    ln->t.reason[n] = '\0';
}

/* llama.cpp's stop_type in the words the other servers use: eos and word are "stop", limit
 * is "length"; anything else is kept as written. */
static void set_stop_type(line *ln, const char *s, size_t n)
{
    if ((n == 3 && !memcmp(s, "eos", 3)) || (n == 4 && !memcmp(s, "word", 4)))
        set_reason(ln, "stop", 4);
    else if (n == 5 && !memcmp(s, "limit", 5))
        set_reason(ln, "length", 6);
    else
        set_reason(ln, s, n);
}

static void set_msg(line *ln, const char *s, size_t n)
{
    ph_buf_reset(&ln->msg);
    ph_buf_add(&ln->msg, s, utf8_cut(s, n, ERR_CAP));
}

static int lookup(ph_api api, int ctx, const char *k, size_t n)
{
    const member *m = tables[ctx].m;
    for (size_t i = 0; i < tables[ctx].n; i++)
        if (m[i].len == n && (m[i].apis >> api & 1u) && !memcmp(m[i].name, k, n))
            return m[i].field;
    return F_NONE;
}

static int ctx_at(const line *ln, unsigned d)
{
    return d <= MAX_CTX ? ln->cont[d] : C_SKIP;
}

/* The field of a value at depth d. */
static int slot(const line *ln, unsigned d)
{
    if (d == 0)
        return F_ROOT;
    int parent = ctx_at(ln, d - 1);
    if (parent == C_CHOICES)
        return F_CHOICE0;   /* C_CHOICES turns into C_SKIP once its first element closes */
    return parent == C_SKIP ? F_NONE : ln->key[d];
}

/* The context of a container opening as the value of `field`. */
static int open_ctx(ph_framing *f, int field, int is_obj)
{
    line *ln = &f->ln;
    switch (field) {
    case F_ROOT: ln->not_object = !is_obj; return is_obj ? C_TOP : C_SKIP;
    case F_MESSAGE: return is_obj && f->api == PH_API_OLLAMA ? C_MESSAGE : C_SKIP;
    case F_CHOICES: return is_obj ? C_SKIP : C_CHOICES;
    case F_CHOICE0: return is_obj ? C_CHOICE : C_SKIP;
    case F_DELTA: return is_obj ? C_DELTA : C_SKIP;
    case F_USAGE: return is_obj ? C_USAGE : C_SKIP;
    case F_DETAILS: return is_obj ? C_DETAILS : C_SKIP;
    case F_TIMINGS: return is_obj ? C_TIMINGS : C_SKIP;
    case F_ERROR: ln->has_error |= (uint8_t)is_obj; return is_obj ? C_ERROR : C_SKIP;
    default: return C_SKIP;
    }
}

static void scalar(ph_framing *f, int field, const ph_json_token *t)
{
    line *ln = &f->ln;
    int str = t->kind == PH_JSON_STRING, yes = t->kind == PH_JSON_TRUE;
    switch (field) {
    case F_ROOT: ln->not_object = 1; break;
    case F_TEXT:
        if (str && t->len && ph_buf_add(&ln->text, t->text, t->len))
            ln->oom = 1;
        break;
    case F_DONE: if (yes || t->kind == PH_JSON_FALSE) ln->done = (signed char)yes; break;
    case F_REASON: if (str) set_reason(ln, t->text, t->len); break;
    case F_STOP_TYPE: if (str) set_stop_type(ln, t->text, t->len); break;
    case F_STOPPED_STOP: if (yes) set_reason(ln, "stop", 4); break;
    case F_STOPPED_LIMIT: if (yes) set_reason(ln, "length", 6); break;
    case F_INDEX: if (t->kind == PH_JSON_NUMBER) ln->index = json_num(t->text, t->len) != 0; break;
    case F_OBJECT: if (str && t->len == 5 && !memcmp(t->text, "error", 5)) ln->object_error = 1; break;
    case F_ERROR:       /* a string here; an object goes through open_ctx */
        if (str) {
            ln->has_error = 1;
            set_msg(ln, t->text, t->len);
        }
        break;
    case F_ERR_MSG: if (str) set_msg(ln, t->text, t->len); break;
    case F_MESSAGE: if (str && !ln->msg.len) set_msg(ln, t->text, t->len); break;
    default:
        if (field >= NUM0 && field < F_END && t->kind == PH_JSON_NUMBER) {
            VAL(&ln->t, field) = json_num(t->text, t->len);
            ln->t.have |= 1u << (field - NUM0);
        }
    }
}

static int on_token(void *ud, const ph_json_token *t)
{
    ph_framing *f = ud;
    line *ln = &f->ln;
    unsigned d = t->depth;
    switch (t->kind) {
    case PH_JSON_KEY:
        if (ctx_at(ln, d - 1) != C_SKIP)
            ln->key[d] = (uint8_t)lookup(f->api, ctx_at(ln, d - 1), t->text, t->len);
        return 0;
    case PH_JSON_BEGIN_OBJECT:
    case PH_JSON_BEGIN_ARRAY:
        if (d <= MAX_CTX)
            ln->cont[d] = (uint8_t)open_ctx(f, slot(ln, d), t->kind == PH_JSON_BEGIN_OBJECT);
        return 0;
    default:
        if (t->kind != PH_JSON_END_OBJECT && t->kind != PH_JSON_END_ARRAY)
            scalar(f, slot(ln, d), t);
        if (d >= 1 && ctx_at(ln, d - 1) == C_CHOICES)
            ln->cont[d - 1] = C_SKIP;   /* a value closed: only the first choice is read */
        return ln->oom;
    }
}

/* Parses one JSON text into f->ln. Returns 0, or -1 (see ph_json_error; ln.oom for memory). */
static int parse(ph_framing *f, const char *p, size_t n)
{
    line *ln = &f->ln;
    ln->cont[0] = C_SKIP;
    ln->done = ln->index = -1;
    ln->not_object = ln->has_error = ln->object_error = ln->oom = 0;
    ln->t.have = 0;
    ln->t.reason[0] = '\0';
    ph_buf_reset(&ln->text);
    ph_buf_reset(&ln->msg);
    ph_json_reset(f->json);
    if (ph_json_feed(f->json, p, n, NULL) != PH_JSON_OK)
        return -1;
    return ph_json_finish(f->json) == PH_JSON_OK ? 0 : -1;
}

/* ---- acting on a line ----------------------------------------------------------------- */

static void tally_add(tally *to, const tally *from)
{
    for (int i = 0; i < NNUM; i++)
        if (from->have >> i & 1u)
            to->num[i] = from->num[i];
    to->have |= from->have;
    if (from->reason[0])
        memcpy(to->reason, from->reason, REASON_CAP);
}

static long count_of(const tally *t, int main, int alt)
{
    double v = HAVE(t, main) ? VAL(t, main) : HAVE(t, alt) ? VAL(t, alt) : -1;
    return v >= 0 && v < 1e15 ? (long)v : -1;
}

static double ms_of(const tally *t, int ms, int ns)
{
    return HAVE(t, ms) ? VAL(t, ms) : HAVE(t, ns) ? VAL(t, ns) / 1e6 : NAN;
}

static ph_frame_status say_done(ph_framing *f)
{
    const tally *t = &f->tot;
    ph_frame_stats st;
    st.prompt_tokens = count_of(t, F_PROMPT_N, F_T_PROMPT_N);
    st.completion_tokens = count_of(t, F_GEN_N, F_T_GEN_N);
    st.cached_tokens = count_of(t, F_CACHED_N, F_CACHED_N);
    if (st.cached_tokens < 0 && HAVE(t, F_PROMPT_N) && HAVE(t, F_T_PROMPT_N)
        && VAL(t, F_PROMPT_N) >= VAL(t, F_T_PROMPT_N))
        st.cached_tokens = (long)(VAL(t, F_PROMPT_N) - VAL(t, F_T_PROMPT_N));
    st.prompt_ms = ms_of(t, F_PROMPT_MS, F_PROMPT_NS);
    st.gen_ms = ms_of(t, F_GEN_MS, F_GEN_NS);
    st.total_ms = HAVE(t, F_TOTAL_NS) ? VAL(t, F_TOTAL_NS) / 1e6 : NAN;
    st.load_ms = HAVE(t, F_LOAD_NS) ? VAL(t, F_LOAD_NS) / 1e6 : NAN;
    st.done_reason = t->reason[0] ? t->reason : NULL;
    f->status = PH_FRAME_DONE;
    if (f->cb.done)
        f->cb.done(f->ud, &st);
    return f->status;
}

/* What a parsed line says: an error, a piece of text, the end (in that order of weight). */
static ph_frame_status apply(ph_framing *f, const char *p, size_t n)
{
    line *ln = &f->ln;
    if (ln->not_object)
        return bad_line(f, "a JSON object", p, n, NULL);
    if (ln->has_error || ln->object_error) {
        return ln->msg.len ? server_error(f, ln->msg.data, ln->msg.len)
                           : server_error(f, NO_WORDS, sizeof NO_WORDS - 1);
    }
    tally_add(&f->tot, &ln->t);
    if (ln->text.len && ln->index <= 0 && f->cb.text
        && f->cb.text(f->ud, ln->text.data, ln->text.len))
        return f->status = PH_FRAME_STOPPED;
    return ln->done == 1 ? say_done(f) : PH_FRAME_OK;
}

/* Decodes the JSON text p[0..n), which starts col0 bytes into its line. */
static ph_frame_status json_line(ph_framing *f, const char *p, size_t n, size_t col0)
{
    char detail[160];
    uint64_t off = 0;
    if (parse(f, p, n) == 0)
        return apply(f, p, n);
    if (f->ln.oom)
        return fail(f, "out of memory decoding line %lu", f->lineno);
    const char *why = ph_json_error(f->json, &off);
    snprintf(detail, sizeof detail, "%s at column %llu", why ? why : "?",
             (unsigned long long)(off + col0 + 1));
    return bad_line(f, "JSON", p, n, detail);
}

/* llama.cpp's "error: {...}" field: the payload's message, else the payload as written. */
static ph_frame_status sse_error(ph_framing *f, const char *p, size_t n)
{
    if (parse(f, p, n) == 0 && f->ln.msg.len)
        return server_error(f, f->ln.msg.data, f->ln.msg.len);
    return n ? server_error(f, p, n) : server_error(f, NO_WORDS, sizeof NO_WORDS - 1);
}

#define IS_WORD(p, n, w) ((n) == sizeof w - 1 && !memcmp(p, w, sizeof w - 1))

/* A name an SSE field may have (letters, digits, '_', '-', '.'). */
static int field_name(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (!((c | 0x20) >= 'a' && (c | 0x20) <= 'z') && !(c >= '0' && c <= '9') && c != '_'
            && c != '-' && c != '.')
            return 0;
    }
    return n > 0;
}

static ph_frame_status sse_line(ph_framing *f, const char *p, size_t n)
{
    if (n == 0 || p[0] == ':')
        return PH_FRAME_OK;                 /* event boundary or comment */
    const char *colon = memchr(p, ':', n), *v = colon ? colon + 1 : p + n;
    size_t name = colon ? (size_t)(colon - p) : n;
    if (v < p + n && *v == ' ')
        v++;
    size_t vn = (size_t)(p + n - v);
    if (IS_WORD(p, name, "data")) {
        size_t k = vn;
        while (k && (v[k - 1] == ' ' || v[k - 1] == '\t'))
            k--;
        if (k == 0)
            return PH_FRAME_OK;
        if (k == 6 && !memcmp(v, "[DONE]", 6))
            return say_done(f);
        return json_line(f, v, vn, (size_t)(v - p));
    }
    if (IS_WORD(p, name, "error"))
        return sse_error(f, v, vn);
    if (field_name(p, name))
        return PH_FRAME_OK;                 /* event:, id:, retry: and unknown fields */
    return bad_line(f, "an SSE line", p, n, "expected a data: field, another field, a comment "
                                            "or a blank line");
}

static ph_frame_status ndjson_line(ph_framing *f, const char *p, size_t n)
{
    size_t i = 0;
    while (i < n && (p[i] == ' ' || p[i] == '\t' || p[i] == '\r'))
        i++;
    return i == n ? PH_FRAME_OK : json_line(f, p, n, 0);
}

/* One complete line, without its LF. */
static ph_frame_status line_end(ph_framing *f, const char *p, size_t n)
{
    f->lineno++;
    if (n && p[n - 1] == '\r')
        n--;
    if (f->api == PH_API_OPENAI || f->api == PH_API_LLAMACPP)
        return sse_line(f, p, n);
    return ndjson_line(f, p, n);
}

/* ---- the public API ------------------------------------------------------------------- */

static ph_frame_status too_long(ph_framing *f)
{
    return fail(f, "line %lu is longer than max_line (%zu bytes)", f->lineno + 1, f->max_line);
}

/* Adds p[0..n) to the partial line; fails at the cap. */
static int add_part(ph_framing *f, const char *p, size_t n)
{
    if (n > f->max_line - f->part.len)
        return too_long(f), -1;
    if (ph_buf_add(&f->part, p, n))
        return fail(f, "out of memory buffering line %lu", f->lineno + 1), -1;
    return 0;
}

ph_framing *ph_framing_new(ph_api api, const ph_framing_callbacks *cb, void *ud, size_t max_line)
{
    ph_framing *f = calloc(1, sizeof *f);
    if (!f)
        return NULL;
    f->api = api;
    if (cb)
        f->cb = *cb;
    f->ud = ud;
    f->max_line = max_line ? max_line : DEFAULT_MAX_LINE;
    f->status = PH_FRAME_OK;
    ph_buf_init(&f->part, f->max_line);
    ph_buf_init(&f->err, ERR_CAP + 256);
    ph_buf_init(&f->ln.text, f->max_line);
    ph_buf_init(&f->ln.msg, ERR_CAP);
    ph_json_config cfg = {0};
    cfg.max_token = f->max_line;
    f->json = ph_json_new(&cfg, on_token, f);
    if (!f->json) {
        ph_framing_free(f);
        return NULL;
    }
    return f;
}

ph_frame_status ph_framing_feed(ph_framing *f, const char *bytes, size_t len)
{
    const char *p = bytes, *end = bytes + len;
    while (f->status == PH_FRAME_OK && p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl) {
            add_part(f, p, (size_t)(end - p));
            break;
        }
        if (f->part.len) {
            if (add_part(f, p, (size_t)(nl - p)) == 0) {
                line_end(f, f->part.data, f->part.len);
                ph_buf_reset(&f->part);
            }
        } else if ((size_t)(nl - p) > f->max_line) {
            too_long(f);
        } else {
            line_end(f, p, (size_t)(nl - p));
        }
        p = nl + 1;
    }
    return f->status;
}

ph_frame_status ph_framing_finish(ph_framing *f)
{
    if (f->status != PH_FRAME_OK)
        return f->status;
    if (f->part.len) {
        f->finishing = 1;
        line_end(f, f->part.data, f->part.len);
        ph_buf_reset(&f->part);
        if (f->status != PH_FRAME_OK)
            return f->status;
    }
    if (f->api == PH_API_OPENAI && f->tot.reason[0])
        return say_done(f);             /* finish_reason came, only [DONE] is missing */
    return fail(f, "the stream ended before the server said it was done");
}

const char *ph_framing_error(const ph_framing *f)
{
    return f->status == PH_FRAME_ERROR ? ph_buf_str(&f->err) : NULL;
}

void ph_framing_free(ph_framing *f)
{
    if (!f)
        return;
    ph_json_free(f->json);
    ph_buf_free(&f->part);
    ph_buf_free(&f->err);
    ph_buf_free(&f->ln.text);
    ph_buf_free(&f->ln.msg);
    free(f);
}
