/* snapview — the snapshot view validation reads (see snapview.h).
 *
 * One tokenizer pass with a small state machine over the depths that matter:
 *   depth 1  the top-level keys (agent, player, me, enemies, allies, pois, obstacles);
 *   depth 2  player/me keys (id, pos), or the elements of a list section;
 *   depth 3  me.pos members, or an element's members (id, hp, x, y).
 * Everything deeper, and every other key, is skipped. Ids are canonicalised into one arena
 * (each NUL-terminated); obstacle cells are sorted once so a lookup is a binary search.
 * Depends on jsonstream, buf, error, registry (for the PH_OF_* bits). */
#include "snapview.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "jsonstream.h"

#define IDS_CAP (1u << 20)               /* bytes of canonical ids */
#define INT_LIMIT 9007199254740992.0     /* 2^53 */

enum { S_NONE, S_AGENT, S_PLAYER, S_ME, S_ENEMIES, S_ALLIES, S_POIS, S_OBSTACLES };
enum { F_NONE, F_ID, F_HP, F_POS, F_X, F_Y };

typedef struct ent { uint32_t off, len; unsigned kind; } ent;
typedef struct cell { long long x, y; } cell;

/* The element (list entry, or me.pos) being read. */
typedef struct pending {
    int has_id, has_hp, has_x, has_y;
    uint32_t id_off, id_len;
    double hp;
    long long x, y;
} pending;

struct ph_snapview {
    ph_json *j;
    ph_buf ids;
    ent *ents;
    int nents, ents_size;
    cell *cells;
    int ncells, cells_size;
    bool has_player, has_pos;
    long long px, py;
    long agent_off;          /* offset of the agent's id in ids, or -1 */
    /* parse state */
    int sec, open, fld;      /* section of the last top-level key; its container is open;
                                field of the last key inside it */
    int in_elem, in_pos;
    pending p;
    ph_code fail;            /* set by the callback when it stops the parse */
};

/* ---- numbers and ids --------------------------------------------------------------- */

static int is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
static int is_digit(char c) { return c >= '0' && c <= '9'; }

/* Whether s[0..n) is a decimal number: [+-]digits[.digits][e[+-]digits], with digits on at
 * least one side of the point. */
static int num_grammar(const char *s, size_t n)
{
    size_t i = 0, d = 0;
    i += i < n && (s[i] == '-' || s[i] == '+');
    for (; i < n && is_digit(s[i]); i++)
        d++;
    if (i < n && s[i] == '.')
        for (i++; i < n && is_digit(s[i]); i++)
            d++;
    if (d == 0)
        return 0;
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        i += i < n && (s[i] == '-' || s[i] == '+');
        if (i == n || !is_digit(s[i]))
            return 0;
        while (i < n && is_digit(s[i]))
            i++;
    }
    return i == n;
}

/* Plain integers (-?digits, at most 15 of them), the common case, without strtod: 0 and
 * *out set, or -1 when s[0..n) is not one. */
static int plain_int(const char *s, size_t n, long long *out)
{
    size_t i = n && *s == '-';
    long long v = 0;
    if (n == i || n - i > 15)
        return -1;
    for (size_t k = i; k < n; k++) {
        if (!is_digit(s[k]))
            return -1;
        v = v * 10 + (s[k] - '0');
    }
    *out = i ? -v : v;
    return 0;
}

int ph_sv_number(const char *s, size_t n, double *out)
{
    char tmp[64];
    long long iv;
    while (n && is_space(s[n - 1]))
        n--;
    while (n && is_space(*s))
        s++, n--;
    if (plain_int(s, n, &iv) == 0)
        return *out = (double)iv, 0;
    if (n == 0 || n >= sizeof tmp || !num_grammar(s, n))
        return -1;
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    *out = strtod(tmp, NULL);
    return isfinite(*out) ? 0 : -1;
}

/* An integral number of at most 2^53: 0 and *out set, else -1. */
static int int_value(const char *s, size_t n, long long *out)
{
    double v;
    if (plain_int(s, n, out) == 0)
        return 0;
    if (ph_sv_number(s, n, &v) || v > INT_LIMIT || v < -INT_LIMIT || v != floor(v))
        return -1;
    *out = (long long)v;
    return 0;
}

int ph_entity_canon(const char *id, size_t len, char *out, size_t size)
{
    long long v;
    while (len && is_space(id[len - 1]))
        len--;
    while (len && is_space(*id))
        id++, len--;
    if (len == 0 || size == 0)
        return -1;
    int verbatim = plain_int(id, len, &v) == 0 && (len == 1 || id[*id == '-'] != '0');
    if (!verbatim && int_value(id, len, &v) == 0) {
        int n = snprintf(out, size, "%lld", v);
        return n > 0 && (size_t)n < size ? n : -1;
    }
    if (len >= size)
        return -1;
    memcpy(out, id, len);
    out[len] = '\0';
    return (int)len;
}

/* ---- building ---------------------------------------------------------------------- */

static int stop(ph_snapview *s, ph_code code)
{
    s->fail = code;
    return 1;
}

/* Canonicalises an id token into the arena; returns 0 (and where it is), or nonzero when
 * the parse must stop. An id that is empty or too long is not kept (found never). */
static int keep_id(ph_snapview *s, const ph_json_token *t, uint32_t *off, uint32_t *len)
{
    char tmp[PH_SV_MAX_ID];
    int n = ph_entity_canon(t->text, t->len, tmp, sizeof tmp);
    if (n < 0)
        return -1;
    *off = (uint32_t)s->ids.len;
    *len = (uint32_t)n;
    return ph_buf_add(&s->ids, tmp, (size_t)n + 1) ? stop(s, PH_ERR_LIMIT) : 0;
}

static int add_ent(ph_snapview *s, uint32_t off, uint32_t len, unsigned kind)
{
    if (s->nents == s->ents_size) {
        if (s->nents >= PH_SV_MAX_ENTITIES)
            return stop(s, PH_ERR_LIMIT);
        int size = s->ents_size ? s->ents_size * 2 : 32;
        ent *e = realloc(s->ents, (size_t)size * sizeof *e);
        if (!e)
            return stop(s, PH_ERR_MEMORY);
        s->ents = e, s->ents_size = size;
    }
    s->ents[s->nents++] = (ent){off, len, kind};
    return 0;
}

static int add_cell(ph_snapview *s, long long x, long long y)
{
    if (s->ncells == s->cells_size) {
        if (s->ncells >= PH_SV_MAX_OBSTACLES)
            return stop(s, PH_ERR_LIMIT);
        int size = s->cells_size ? s->cells_size * 2 : 32;
        cell *c = realloc(s->cells, (size_t)size * sizeof *c);
        if (!c)
            return stop(s, PH_ERR_MEMORY);
        s->cells = c, s->cells_size = size;
    }
    s->cells[s->ncells++] = (cell){x, y};
    return 0;
}

/* A scalar id (agent, player.id, me.id) straight into the entity list. */
static int scalar_id(ph_snapview *s, const ph_json_token *t, unsigned kind)
{
    uint32_t off, len;
    if (t->kind != PH_JSON_STRING && t->kind != PH_JSON_NUMBER)
        return 0;
    int rc = keep_id(s, t, &off, &len);
    if (rc)
        return rc > 0;
    if (kind == PH_OF_SELF && (s->agent_off < 0 || s->sec == S_AGENT))
        s->agent_off = (long)off;     /* `agent` wins over me.id */
    return add_ent(s, off, len, kind);
}

/* A list element closed: keep what it named. */
static int commit(ph_snapview *s)
{
    const pending *p = &s->p;
    static const unsigned kinds[] = {[S_ENEMIES] = PH_OF_ENEMY, [S_ALLIES] = PH_OF_ALLY,
                                     [S_POIS] = PH_SV_POI};
    if (s->sec == S_OBSTACLES)
        return p->has_x && p->has_y ? add_cell(s, p->x, p->y) : 0;
    if (!p->has_id)
        return 0;
    unsigned kind = kinds[s->sec];
    if (kind == PH_OF_ENEMY && p->has_hp && p->hp <= 0)
        kind = PH_SV_DEAD;
    return add_ent(s, p->id_off, p->id_len, kind);
}

static int classify_top(const char *k, size_t n)
{
    static const char *const names[] = {[S_AGENT] = "agent", [S_PLAYER] = "player",
                                        [S_ME] = "me", [S_ENEMIES] = "enemies",
                                        [S_ALLIES] = "allies", [S_POIS] = "pois",
                                        [S_OBSTACLES] = "obstacles"};
    for (int i = S_AGENT; i <= S_OBSTACLES; i++)
        if (strlen(names[i]) == n && memcmp(names[i], k, n) == 0)
            return i;
    return S_NONE;
}

static int classify_field(const char *k, size_t n)
{
    if (n == 1)
        return *k == 'x' ? F_X : *k == 'y' ? F_Y : F_NONE;
    if (n == 2)
        return memcmp(k, "id", 2) == 0 ? F_ID : memcmp(k, "hp", 2) == 0 ? F_HP : F_NONE;
    return n == 3 && memcmp(k, "pos", 3) == 0 ? F_POS : F_NONE;
}

static int is_scalar(ph_json_kind k) { return k <= PH_JSON_STRING; }

/* A member value inside an element or me.pos (depth 3). */
static int member(ph_snapview *s, const ph_json_token *t)
{
    pending *p = &s->p;
    if (!is_scalar(t->kind))
        return 0;
    switch (s->fld) {
    case F_ID: {
        int rc = (t->kind == PH_JSON_STRING || t->kind == PH_JSON_NUMBER) && !s->in_pos
                     ? keep_id(s, t, &p->id_off, &p->id_len) : -1;
        p->has_id = rc == 0;
        return rc > 0;
    }
    case F_HP: p->has_hp = ph_sv_number(t->text, t->len, &p->hp) == 0; return 0;
    case F_X: p->has_x = t->kind == PH_JSON_NUMBER && int_value(t->text, t->len, &p->x) == 0; return 0;
    case F_Y: p->has_y = t->kind == PH_JSON_NUMBER && int_value(t->text, t->len, &p->y) == 0; return 0;
    default: return 0;
    }
}

/* Depth 1: a top-level key, or the value that follows it. */
static int at_top(ph_snapview *s, const ph_json_token *t)
{
    int list = s->sec >= S_ENEMIES;
    if (t->kind == PH_JSON_KEY) {
        s->sec = classify_top(t->text, t->len), s->open = 0;
        return 0;
    }
    if (t->kind == PH_JSON_END_OBJECT || t->kind == PH_JSON_END_ARRAY) {
        s->open = 0;
        return 0;
    }
    if (s->sec == S_AGENT)
        return scalar_id(s, t, PH_OF_SELF);
    if ((s->sec == S_PLAYER || s->sec == S_ME) && t->kind == PH_JSON_BEGIN_OBJECT)
        s->open = 1, s->fld = F_NONE, s->has_player |= s->sec == S_PLAYER;
    else if (list && t->kind == PH_JSON_BEGIN_ARRAY)
        s->open = 1, s->in_elem = 0;
    return 0;
}

/* Depth 2: a player/me key or value, or a list element opening or closing. */
static int at_section(ph_snapview *s, const ph_json_token *t)
{
    if (s->sec >= S_ENEMIES) {
        if (t->kind == PH_JSON_BEGIN_OBJECT)
            s->in_elem = 1, s->fld = F_NONE, memset(&s->p, 0, sizeof s->p);
        else if (t->kind == PH_JSON_END_OBJECT && s->in_elem)
            return s->in_elem = 0, commit(s);
        return 0;
    }
    if (t->kind == PH_JSON_KEY) {
        s->fld = classify_field(t->text, t->len);
        return 0;
    }
    if (t->kind == PH_JSON_BEGIN_OBJECT && s->fld == F_POS && s->sec == S_ME) {
        s->in_pos = 1, s->fld = F_NONE, memset(&s->p, 0, sizeof s->p);
    } else if (t->kind == PH_JSON_END_OBJECT && s->in_pos) {
        s->in_pos = 0;
        if (s->p.has_x && s->p.has_y)
            s->has_pos = 1, s->px = s->p.x, s->py = s->p.y;
    } else if (s->fld == F_ID) {
        return scalar_id(s, t, s->sec == S_PLAYER ? PH_OF_PLAYER : PH_OF_SELF);
    }
    return 0;
}

/* Depth 3: the members of a list element or of me.pos. */
static int at_member(ph_snapview *s, const ph_json_token *t)
{
    if (!s->in_elem && !s->in_pos)
        return 0;
    if (t->kind == PH_JSON_KEY) {
        s->fld = classify_field(t->text, t->len);
        if (s->in_pos && s->fld != F_X && s->fld != F_Y)
            s->fld = F_NONE;
        return 0;
    }
    if (!is_scalar(t->kind))
        s->fld = F_NONE;     /* a nested value: its insides are deeper and skipped */
    return member(s, t);
}

static int on_token(void *ctx, const ph_json_token *t)
{
    ph_snapview *s = ctx;
    switch (t->depth) {
    case 0:
        return t->kind == PH_JSON_BEGIN_OBJECT || t->kind == PH_JSON_END_OBJECT
                   ? 0 : stop(s, PH_ERR_JSON);
    case 1: return at_top(s, t);
    case 2: return s->open ? at_section(s, t) : 0;
    case 3: return s->open ? at_member(s, t) : 0;
    default: return 0;
    }
}

static int cell_cmp(const void *a, const void *b)
{
    const cell *p = a, *q = b;
    if (p->x != q->x)
        return p->x < q->x ? -1 : 1;
    return (p->y > q->y) - (p->y < q->y);
}

/* Sorts the obstacle cells: insertion sort for the usual handful (glibc's qsort allocates). */
static void sort_cells(cell *c, int n)
{
    if (n > 64) {
        qsort(c, (size_t)n, sizeof *c, cell_cmp);
        return;
    }
    for (int i = 1; i < n; i++) {
        cell k = c[i];
        int j = i;
        for (; j > 0 && cell_cmp(&c[j - 1], &k) > 0; j--)
            c[j] = c[j - 1];
        c[j] = k;
    }
}

static void clear(ph_snapview *s)
{
    ph_buf_reset(&s->ids);
    s->nents = s->ncells = 0;
    s->has_player = s->has_pos = false;
    s->px = s->py = 0;
    s->agent_off = -1;
    s->sec = S_NONE, s->open = s->fld = s->in_elem = s->in_pos = 0;
    s->fail = PH_OK;
}

/* Why a parse stopped or failed, into err. */
static int load_error(ph_snapview *s, ph_json_status st, ph_error *err)
{
    uint64_t off = 0;
    const char *msg = st == PH_JSON_ERROR ? ph_json_error(s->j, &off) : NULL;
    ph_code code = s->fail;
    clear(s);
    if (msg)
        return ph_error_set(err, PH_ERR_JSON, "snapshot: invalid JSON at byte %llu: %s",
                            (unsigned long long)off, msg);
    if (code == PH_ERR_JSON)
        return ph_error_set(err, PH_ERR_JSON, "snapshot: invalid JSON at byte 0: "
                            "the snapshot is not a JSON object");
    if (code == PH_ERR_MEMORY)
        return ph_error_set(err, PH_ERR_MEMORY, "snapshot: out of memory");
    return ph_error_set(err, PH_ERR_LIMIT, "snapshot: more than %d entities, %d obstacles "
                        "or %u bytes of ids", PH_SV_MAX_ENTITIES, PH_SV_MAX_OBSTACLES, IDS_CAP);
}

int ph_snapview_load(ph_snapview *s, const char *json, size_t len, ph_error *err)
{
    clear(s);
    ph_json_reset(s->j);
    ph_json_status st = ph_json_feed(s->j, json, len, NULL);
    if (st == PH_JSON_OK)
        st = ph_json_finish(s->j);
    if (st != PH_JSON_OK)
        return load_error(s, st, err);
    sort_cells(s->cells, s->ncells);
    ph_error_clear(err);
    return 0;
}

ph_snapview *ph_snapview_new(const char *json, size_t len, ph_error *err)
{
    ph_snapview *s = calloc(1, sizeof *s);
    if (s)
        s->j = ph_json_new(NULL, on_token, s);
    if (!s || !s->j) {
        free(s);
        ph_error_set(err, PH_ERR_MEMORY, "snapshot: out of memory");
        return NULL;
    }
    ph_buf_init(&s->ids, IDS_CAP);
    if (ph_snapview_load(s, json, len, err) != 0) {
        ph_snapview_free(s);
        return NULL;
    }
    return s;
}

void ph_snapview_free(ph_snapview *s)
{
    if (!s)
        return;
    ph_json_free(s->j);
    ph_buf_free(&s->ids);
    free(s->ents);
    free(s->cells);
    free(s);
}

/* ---- queries ----------------------------------------------------------------------- */

unsigned ph_snapview_lookup(const ph_snapview *s, const char *id, size_t len)
{
    char c[PH_SV_MAX_ID];
    int n = ph_entity_canon(id, len, c, sizeof c);
    unsigned kinds = 0;
    if (n < 0)
        return 0;
    if (n == 6 && memcmp(c, "player", 6) == 0 && s->has_player)
        kinds |= PH_OF_PLAYER;
    if (n == 4 && memcmp(c, "self", 4) == 0)
        kinds |= PH_OF_SELF;
    for (int i = 0; i < s->nents; i++)
        if (s->ents[i].len == (uint32_t)n && memcmp(s->ids.data + s->ents[i].off, c, (size_t)n) == 0)
            kinds |= s->ents[i].kind;
    if (!s->has_player)
        kinds &= ~(unsigned)PH_OF_PLAYER;
    return kinds;
}

bool ph_snapview_has_player(const ph_snapview *s) { return s->has_player; }

const char *ph_snapview_agent(const ph_snapview *s)
{
    return s->agent_off < 0 ? NULL : s->ids.data + s->agent_off;
}

bool ph_snapview_position(const ph_snapview *s, long long *x, long long *y)
{
    if (s->has_pos)
        *x = s->px, *y = s->py;
    return s->has_pos;
}

bool ph_snapview_obstacle(const ph_snapview *s, long long x, long long y)
{
    cell key = {x, y};
    return s->ncells &&
           bsearch(&key, s->cells, (size_t)s->ncells, sizeof key, cell_cmp) != NULL;
}

int ph_snapview_count(const ph_snapview *s, unsigned kind)
{
    int n = 0;
    for (int i = 0; i < s->nents; i++)
        n += s->ents[i].kind == kind;
    return n;
}

int ph_snapview_obstacles(const ph_snapview *s) { return s->ncells; }
