/* record — writing and reading recorded response streams. See record.h for the format. */
#include "record.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "jsonstream.h"
#include "jsonw.h"
#include "tree.h"

#define B64_LEN(n) (((n) + 2) / 3 * 4)
#define LINE_CAP (B64_LEN(PH_RECORD_MAX_CHUNK) + 256)
#define DEFAULT_MAX_FILE (64u << 20)

/* ---- base64 ---------------------------------------------------------------------------- */

static const char b64_chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static void b64_encode(ph_buf *b, const unsigned char *p, size_t n)
{
    char quad[4];
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)p[i] << 16;
        if (i + 1 < n) v |= (unsigned)p[i + 1] << 8;
        if (i + 2 < n) v |= p[i + 2];
        quad[0] = b64_chars[v >> 18 & 63];
        quad[1] = b64_chars[v >> 12 & 63];
        quad[2] = i + 1 < n ? b64_chars[v >> 6 & 63] : '=';
        quad[3] = i + 2 < n ? b64_chars[v & 63] : '=';
        ph_buf_add(b, quad, 4);
    }
}

static int b64_value(unsigned char c)
{
    const char *p = c ? strchr(b64_chars, c) : NULL;
    return p ? (int)(p - b64_chars) : -1;
}

/* Decodes padded base64 into `out` (at least n / 4 * 3 bytes). Returns the length or -1. */
static long b64_decode(const char *s, size_t n, unsigned char *out)
{
    if (n % 4)
        return -1;
    size_t len = 0;
    for (size_t i = 0; i < n; i += 4) {
        int pad = (s[i + 3] == '=') + (s[i + 2] == '=' && s[i + 3] == '=');
        if (pad && i + 4 != n)
            return -1;
        unsigned v = 0;
        for (int k = 0; k < 4 - pad; k++) {
            int d = b64_value((unsigned char)s[i + k]);
            if (d < 0)
                return -1;
            v = v << 6 | (unsigned)d;
        }
        v <<= 6 * pad;
        out[len++] = (unsigned char)(v >> 16);
        if (pad < 2) out[len++] = (unsigned char)(v >> 8 & 255);
        if (pad < 1) out[len++] = (unsigned char)(v & 255);
    }
    return (long)len;
}

/* ---- writer ---------------------------------------------------------------------------- */

struct ph_record_writer {
    FILE *f;
    ph_buf line;
    int failed;
};

/* Writes the line built in w->line and flushes it. */
static int put_line(ph_record_writer *w, ph_error *err)
{
    if (!w->failed && !w->line.failed && fwrite(w->line.data, 1, w->line.len, w->f) == w->line.len &&
        fflush(w->f) == 0)
        return 0;
    w->failed = 1;
    return ph_error_set(err, PH_ERR_IO, "record: write failed");
}

ph_record_writer *ph_record_open(const char *file, const ph_record_meta *meta, ph_error *err)
{
    if (!meta || !meta->api || !meta->path)
        return ph_error_set(err, PH_ERR_ARG, "record: the header needs api and path"), NULL;
    ph_record_writer *w = calloc(1, sizeof *w);
    if (!w)
        return ph_error_set(err, PH_ERR_IO, "record: out of memory"), NULL;
    w->f = fopen(file, "wb");
    if (!w->f) {
        free(w);
        return ph_error_set(err, PH_ERR_IO, "%s: cannot create", file), NULL;
    }
    ph_buf_init(&w->line, LINE_CAP);
    ph_buf_addf(&w->line, "{\"record\":\"planhost\",\"version\":%d,\"api\":", PH_RECORD_VERSION);
    ph_jsonw_cstr(&w->line, meta->api);
    ph_jsonw_key(&w->line, "path", 0), ph_jsonw_cstr(&w->line, meta->path);
    ph_buf_addf(&w->line, ",\"status\":%d", meta->status);
    ph_jsonw_key(&w->line, "content_type", 0);
    ph_jsonw_cstr(&w->line, meta->content_type ? meta->content_type : "");
    ph_buf_adds(&w->line, "}\n");
    if (put_line(w, err) != 0) {
        ph_record_close(w, NULL);
        return NULL;
    }
    return w;
}

int ph_record_add(ph_record_writer *w, double t_ms, const void *data, size_t len, ph_error *err)
{
    if (w->failed)
        return ph_error_set(err, PH_ERR_IO, "record: an earlier write failed");
    if (len > PH_RECORD_MAX_CHUNK)
        return ph_error_set(err, PH_ERR_LIMIT, "record: chunk of %zu bytes is past the cap", len);
    ph_buf_reset(&w->line);
    ph_buf_adds(&w->line, "{\"t_ms\":");
    ph_jsonw_num(&w->line, isfinite(t_ms) ? round(t_ms * 1000.0) / 1000.0 : 0.0);
    ph_buf_adds(&w->line, ",\"b64\":\"");
    b64_encode(&w->line, data, len);
    ph_buf_adds(&w->line, "\"}\n");
    return put_line(w, err);
}

int ph_record_close(ph_record_writer *w, ph_error *err)
{
    if (!w)
        return 0;
    int bad = w->failed;
    if (fclose(w->f) != 0)
        bad = 1;
    ph_buf_free(&w->line);
    free(w);
    return bad ? ph_error_set(err, PH_ERR_IO, "record: the file is incomplete (a write failed)") : 0;
}

/* ---- reader ---------------------------------------------------------------------------- */

/* The top-level members of one line that the format defines. */
typedef struct line_vals {
    char key[32];
    char *str[5];               /* record, api, path, content_type, b64 */
    size_t b64_len;
    double num[3];              /* version, status, t_ms */
    int has_num[3];
    int object;
} line_vals;

static const char *const str_keys[] = {"record", "api", "path", "content_type", "b64"};
static const char *const num_keys[] = {"version", "status", "t_ms"};
enum { S_RECORD, S_API, S_PATH, S_CTYPE, S_B64 };
enum { N_VERSION, N_STATUS, N_TMS };

static void keep_string(line_vals *v, const ph_json_token *t)
{
    for (int i = 0; i < 5; i++) {
        if (strcmp(v->key, str_keys[i]) != 0 || v->str[i])
            continue;
        v->str[i] = malloc(t->len + 1);
        if (v->str[i]) {
            memcpy(v->str[i], t->text, t->len);
            v->str[i][t->len] = '\0';
            if (i == S_B64)
                v->b64_len = t->len;
        }
    }
}

static void keep_number(line_vals *v, const ph_json_token *t)
{
    char tmp[64];
    if (t->len >= sizeof tmp)
        return;
    memcpy(tmp, t->text, t->len);
    tmp[t->len] = '\0';
    for (int i = 0; i < 3; i++)
        if (strcmp(v->key, num_keys[i]) == 0)
            v->num[i] = strtod(tmp, NULL), v->has_num[i] = 1;
}

static int on_token(void *ctx, const ph_json_token *t)
{
    line_vals *v = ctx;
    if (t->depth == 0) {
        v->object |= t->kind == PH_JSON_BEGIN_OBJECT;
        return 0;
    }
    if (t->depth != 1)
        return 0;
    if (t->kind == PH_JSON_KEY) {
        size_t n = t->len < sizeof v->key - 1 ? t->len : sizeof v->key - 1;
        memcpy(v->key, t->text, n);
        v->key[n] = '\0';
    } else if (t->kind == PH_JSON_STRING) {
        keep_string(v, t);
    } else if (t->kind == PH_JSON_NUMBER) {
        keep_number(v, t);
    }
    v->key[0] = t->kind == PH_JSON_KEY ? v->key[0] : '\0';
    return 0;
}

static void vals_free(line_vals *v)
{
    for (int i = 0; i < 5; i++)
        free(v->str[i]);
    memset(v, 0, sizeof *v);
}

/* Takes the header's fields into `r`. */
static int take_header(ph_record *r, line_vals *v, const char *where, ph_error *err)
{
    if (!v->str[S_RECORD] || strcmp(v->str[S_RECORD], "planhost") != 0)
        return ph_error_set(err, PH_ERR_ARG, "%s: not a planhost record (no \"record\":\"planhost\")", where);
    if (!v->has_num[N_VERSION] || v->num[N_VERSION] != PH_RECORD_VERSION)
        return ph_error_set(err, PH_ERR_ARG, "%s: unsupported record version (this reader knows %d)", where,
                            PH_RECORD_VERSION);
    if (!v->str[S_API] || !v->str[S_PATH] || !v->has_num[N_STATUS])
        return ph_error_set(err, PH_ERR_ARG, "%s: the header needs api, path and status", where);
    if (!(v->num[N_STATUS] >= 100 && v->num[N_STATUS] <= 999))
        return ph_error_set(err, PH_ERR_ARG, "%s: status must be an HTTP status (100-999)", where);
    r->version = PH_RECORD_VERSION;
    r->status = (int)v->num[N_STATUS];
    r->api = v->str[S_API], v->str[S_API] = NULL;
    r->path = v->str[S_PATH], v->str[S_PATH] = NULL;
    r->content_type = v->str[S_CTYPE] ? v->str[S_CTYPE] : strdup("");
    v->str[S_CTYPE] = NULL;
    return r->content_type ? 0 : ph_error_set(err, PH_ERR_IO, "record: out of memory");
}

/* Decodes a chunk line and appends it to `r` (whose chunk array has room). */
static int take_chunk(ph_record *r, line_vals *v, const char *where, ph_error *err)
{
    if (!v->has_num[N_TMS] || !v->str[S_B64])
        return ph_error_set(err, PH_ERR_ARG, "%s: a chunk line needs t_ms and b64", where);
    double prev = r->nchunks ? r->chunks[r->nchunks - 1].t_ms : 0;
    if (!isfinite(v->num[N_TMS]) || v->num[N_TMS] < prev)
        return ph_error_set(err, PH_ERR_ARG, "%s: t_ms goes backwards", where);
    if (v->b64_len / 4 * 3 > PH_RECORD_MAX_CHUNK)
        return ph_error_set(err, PH_ERR_LIMIT, "%s: chunk past the cap", where);
    unsigned char *data = malloc(v->b64_len / 4 * 3 + 1);
    long n = data ? b64_decode(v->str[S_B64], v->b64_len, data) : -1;
    if (n < 0) {
        free(data);
        return ph_error_set(err, PH_ERR_ARG, "%s: b64 is not valid base64", where);
    }
    ph_record_chunk *c = &r->chunks[r->nchunks++];
    c->t_ms = v->num[N_TMS];
    c->data = (char *)data;
    c->len = (size_t)n;
    r->bytes += c->len;
    return 0;
}

/* Parses one line into `v`. */
static int parse_line(ph_json *j, const char *s, size_t n, const char *where, ph_error *err)
{
    ph_json_reset(j);
    ph_json_status st = ph_json_feed(j, s, n, NULL);
    if (st == PH_JSON_OK)
        st = ph_json_finish(j);
    if (st != PH_JSON_OK) {
        uint64_t off = 0;
        const char *msg = ph_json_error(j, &off);
        return ph_error_set(err, PH_ERR_JSON, "%s: invalid JSON at byte %llu: %s", where,
                            (unsigned long long)off, msg ? msg : "?");
    }
    return 0;
}

static size_t count_lines(const char *s, size_t len)
{
    size_t n = 1;
    for (size_t i = 0; i < len; i++)
        n += s[i] == '\n';
    return n;
}

/* Walks the lines of `text`: the header first, then chunks. */
static int parse_text(ph_record *r, const char *file, const char *text, size_t len, ph_error *err)
{
    line_vals v;
    memset(&v, 0, sizeof v);
    ph_json_config cfg = {0, 16, B64_LEN(PH_RECORD_MAX_CHUNK) + 16};
    ph_json *j = ph_json_new(&cfg, on_token, &v);
    r->chunks = calloc(count_lines(text, len), sizeof *r->chunks);
    if (!j || !r->chunks)
        return ph_json_free(j), ph_error_set(err, PH_ERR_IO, "record: out of memory");
    int rc = 0, lineno = 0, header = 0;
    for (size_t at = 0; at < len && rc == 0;) {
        const char *nl = memchr(text + at, '\n', len - at);
        size_t end = nl ? (size_t)(nl - text) : len, n = end - at;
        char where[300];
        snprintf(where, sizeof where, "%s:%d", file, ++lineno);
        while (n && (text[at + n - 1] == '\r' || text[at + n - 1] == ' '))
            n--;
        if (n) {
            rc = parse_line(j, text + at, n, where, err);
            if (rc == 0 && !v.object)
                rc = ph_error_set(err, PH_ERR_ARG, "%s: each line must be a JSON object", where);
            if (rc == 0)
                rc = header ? take_chunk(r, &v, where, err) : take_header(r, &v, where, err);
            header = 1;
            vals_free(&v);
        }
        at = end + 1;
    }
    ph_json_free(j);
    if (rc == 0 && !header)
        rc = ph_error_set(err, PH_ERR_ARG, "%s: empty record file", file);
    return rc;
}

int ph_record_load(const char *file, size_t max_file, ph_record *out, ph_error *err)
{
    memset(out, 0, sizeof *out);
    size_t len;
    char *text = ph_read_file(file, max_file ? max_file : DEFAULT_MAX_FILE, &len, err);
    if (!text)
        return -1;
    int rc = parse_text(out, file, text, len, err);
    free(text);
    return rc;
}

void ph_record_free(ph_record *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->nchunks; i++)
        free(r->chunks[i].data);
    free(r->chunks);
    free(r->api);
    free(r->path);
    free(r->content_type);
    memset(r, 0, sizeof *r);
}
