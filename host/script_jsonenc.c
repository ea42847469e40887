/* script_jsonenc — host.json_encode: lua/json.lua's deterministic encoder, in C.
 *
 * Gives, byte for byte, what json.lua's Lua encoder (json.encode_lua, the reference) gives:
 * compact output; object keys ranked first (the `rank` table: key -> position), the rest
 * sorted bytewise; arrays for tables with [1] (holes and extra keys are errors), for
 * json.array() tables and for empty tables under an `array_keys` key; integers and integral
 * floats below 2^53 without ".0", other floats as %.6g but never with an exponent; NaN and
 * infinities as null; RFC 8259 string escapes with every byte that is not strict UTF-8 (as
 * utf8.len judges it) replaced by U+FFFD; cjson.null (a NULL light userdata) as null.
 *
 * The json.array() marker is json.lua's marker metatable itself, passed as the 4th argument
 * and compared by identity, as json.lua's getmetatable(t) == ARRAY_MT does.
 *
 * Tables are read raw. A read-only view (sandbox.c) is unwrapped to its table, and everything
 * below a view is read as the view would show it: raw, and never marked (json.lua sees the
 * view's locked metatable there, not the marker). A table with any other metatable is left
 * to json.lua (the call returns nil), since only the Lua encoder honours metamethods.
 *
 * Work is charged to the call's instruction budget (one unit per value, per key and per 64
 * string bytes: a small fraction of what the Lua encoder costs), so an input that expands,
 * such as a table listing itself twice per level, is stopped like a runaway script. Output
 * grows in userdata through the state's allocator, under the generation's memory cap.
 * Part of the script adapter; depends on script_internal.h (views, budgets) only. */
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "script_internal.h"

#define MAX_DEPTH 64        /* as json.lua: deeper nesting is an error (likely a cycle) */
#define LOCAL_OUT 4096      /* output bytes kept on the C stack before the first userdata */
#define LOCAL_KEYS 16       /* object keys sorted without an allocation */
#define CHARGE_STEP 1024    /* budget units gathered before the budget is touched */
#define FLOAT_MAX 512       /* %.0f of DBL_MAX needs 310 bytes */

/* Stack slots: the arguments, then the output userdata (nil while output is local). */
enum { ARG_VALUE = 1, ARG_RANK, ARG_ARRAY_KEYS, ARG_MARKER, SLOT_OUT };

enum { DONE = 0, DECLINED = 1 };                /* results of the encode_* functions */
enum { RAW, MARKED, VIEWED, FOREIGN };          /* how json.lua would see a table */

typedef struct enc {
    lua_State *L;
    char *buf;              /* the output: `local` or the userdata at SLOT_OUT */
    size_t len, cap;
    int marker_ok;          /* the marker has no __index/__pairs json.lua would honour */
    long pending;           /* budget units not yet taken */
    char local[LOCAL_OUT];
} enc;

typedef struct key_ent {
    const char *s;          /* the key's text, anchored at stack slot `slot` */
    size_t len;
    lua_Integer rank;
    int ranked;
    int slot;               /* the key's string; its value is at slot + 1 */
} key_ent;

static int encode_value(enc *e, int idx, int key_slot, int depth, int viewed);

/* Raises a message without a position, as json.lua's error(msg, 0). */
static int json_error(lua_State *L, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    lua_pushvfstring(L, fmt, ap);
    va_end(ap);
    return lua_error(L);
}

/* ---- output and budget --------------------------------------------------------------- */

/* Makes room for `need` more bytes: a new userdata twice the size replaces the old one. */
static void grow(enc *e, size_t need)
{
    size_t cap = e->cap;
    while (cap - e->len < need) {
        if (cap > SIZE_MAX / 2)
            json_error(e->L, "json: output too large");
        cap *= 2;
    }
    char *nb = lua_newuserdatauv(e->L, cap, 0);  /* ... out' */
    memcpy(nb, e->buf, e->len);
    lua_replace(e->L, SLOT_OUT);                 /* the old output is garbage now */
    e->buf = nb;
    e->cap = cap;
}

static void put(enc *e, const char *s, size_t n)
{
    if (e->cap - e->len < n)
        grow(e, n);
    memcpy(e->buf + e->len, s, n);
    e->len += n;
}

static void put_char(enc *e, char c)
{
    if (e->cap == e->len)
        grow(e, 1);
    e->buf[e->len++] = c;
}

/* Stops the call as the sandbox's count hook does: marked killed, so no pcall keeps it. */
static void budget_stop(lua_State *L, ph_gen *g)
{
    if (!g->killed) {
        g->killed = 1;
        snprintf(g->kill_msg, sizeof g->kill_msg, "json.encode: instruction budget exceeded "
                 "(%ld instructions per call)", g->limits.instructions);
    }
    lua_pushstring(L, g->kill_msg);
    lua_error(L);
}

static void charge(enc *e, size_t units)
{
    e->pending += (long)units;
    if (e->pending < CHARGE_STEP)
        return;
    ph_gen *g = ph_sb_gen(e->L);
    g->budget_left -= e->pending;
    e->pending = 0;
    if (g->budget_left <= 0 || g->killed)
        budget_stop(e->L, g);
}

/* ---- numbers ------------------------------------------------------------------------- */

/* What string.format("%d", v) gives; `out` holds 24 bytes. */
static size_t format_integer(lua_Integer v, char *out)
{
    char tmp[24], *p = tmp + sizeof tmp;
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    do
        *--p = (char)('0' + u % 10);
    while ((u /= 10) != 0);
    if (v < 0)
        *--p = '-';
    memcpy(out, p, (size_t)(tmp + sizeof tmp - p));
    return (size_t)(tmp + sizeof tmp - p);
}

static void commas_to_points(char *s, int n)
{
    for (int i = 0; i < n; i++)
        if (s[i] == ',')
            s[i] = '.';
}

/* json.lua's encode_float: %.6g, or fixed notation where %.6g would use an exponent (%.0f
 * from 1 up, else 6 significant decimals, at most 30, with trailing zeros and a bare point
 * trimmed). A comma from LC_NUMERIC becomes a point; "-0" becomes "0". */
static size_t format_float(double v, char out[FLOAT_MAX])
{
    int n = snprintf(out, FLOAT_MAX, "%.6g", v);
    if (memchr(out, 'e', (size_t)n)) {
        if (fabs(v) >= 1) {
            n = snprintf(out, FLOAT_MAX, "%.0f", v);
        } else {
            int decimals = 5 - (int)floor(log10(fabs(v)));
            n = snprintf(out, FLOAT_MAX, "%.*f", decimals < 30 ? decimals : 30, v);
            commas_to_points(out, n);
            while (n > 0 && out[n - 1] == '0')
                n--;
            if (n > 0 && out[n - 1] == '.')
                n--;
        }
    }
    commas_to_points(out, n);
    if (n == 2 && out[0] == '-' && out[1] == '0')
        return out[0] = '0', 1;
    return (size_t)n;
}

/* json.lua's encode_number for the number at `idx`. */
static size_t format_number(lua_State *L, int idx, char out[FLOAT_MAX])
{
    if (lua_isinteger(L, idx))
        return format_integer(lua_tointeger(L, idx), out);
    double v = (double)lua_tonumber(L, idx);
    if (isnan(v) || isinf(v))
        return memcpy(out, "null", 4), 4;
    if (v == floor(v) && fabs(v) < 9007199254740992.0)     /* 2^53 */
        return format_integer((lua_Integer)v, out);
    return format_float(v, out);
}

static void put_number(enc *e, int idx)
{
    char s[FLOAT_MAX];
    put(e, s, format_number(e->L, idx, s));
}

/* ---- strings ------------------------------------------------------------------------- */

/* Length of the strict UTF-8 sequence that starts with byte p[0] >= 0x80, or 0 when Lua's
 * utf8.len would stop there: a stray continuation byte, a lead of 5 or more bytes, a
 * truncated or overlong sequence, a surrogate, or a code point above U+10FFFF. */
static size_t utf8_seq(const unsigned char *p, size_t avail)
{
    static const unsigned least[] = {0, 0x80, 0x800, 0x10000};
    unsigned c = p[0];
    if (c < 0xC0 || c > 0xF7)
        return 0;
    size_t n = c >= 0xF0 ? 3 : c >= 0xE0 ? 2 : 1;  /* continuation bytes */
    if (avail <= n)
        return 0;
    unsigned cp = c & (0x3Fu >> n);
    for (size_t i = 1; i <= n; i++) {
        if ((p[i] & 0xC0) != 0x80)
            return 0;
        cp = cp << 6 | (p[i] & 0x3Fu);
    }
    if (cp < least[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return n + 1;
}

static void put_escape(enc *e, unsigned char c)
{
    static const char hex[] = "0123456789abcdef";
    if (c == '"' || c == '\\') {
        char esc[2] = {'\\', (char)c};
        put(e, esc, 2);
        return;
    }
    char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
    put(e, esc, 6);
}

/* Plain bytes are copied in runs; escapes and U+FFFD go between the runs. */
static void put_string(enc *e, const char *str, size_t len)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0, run = 0;
    charge(e, 1 + len / 64);
    put_char(e, '"');
    while (i < len) {
        unsigned char c = s[i];
        size_t n = 1;
        if (c >= 0x20 && c != '"' && c != '\\' && (c < 0x80 || (n = utf8_seq(s + i, len - i)))) {
            i += n;
            continue;
        }
        put(e, str + run, i - run);
        if (c < 0x80)
            put_escape(e, c);
        else
            put(e, "\xEF\xBF\xBD", 3);
        run = ++i;
    }
    put(e, str + run, i - run);
    put_char(e, '"');
}

/* ---- tables -------------------------------------------------------------------------- */

/* Pushes the table to read for the table at `idx` (its own, or the one behind a view) and
 * returns how json.lua would see it; `viewed`: `idx` lies below a read-only view. */
static int push_raw(enc *e, int idx, int viewed)
{
    lua_State *L = e->L;
    if (!lua_getmetatable(L, idx)) {
        lua_pushvalue(L, idx);
        return viewed ? VIEWED : RAW;
    }
    if (!viewed && lua_rawequal(L, -1, ARG_MARKER)) {  /* mt */
        lua_pop(L, 1);
        lua_pushvalue(L, idx);
        return e->marker_ok ? MARKED : FOREIGN;
    }
    lua_pop(L, 1);
    ph_sb_unwrap(L, idx);                              /* the target, or the table itself */
    if (viewed || !lua_rawequal(L, -1, idx))
        return VIEWED;
    return FOREIGN;
}

/* An array of t[1..n]: json.lua's encode_array, items first, then the count check. */
static int encode_array(enc *e, int t, int depth, int viewed)
{
    lua_State *L = e->L;
    lua_Integer n = 0;
    put_char(e, '[');
    while (lua_rawgeti(L, t, n + 1) != LUA_TNIL) {     /* ... item */
        if (n > 0)
            put_char(e, ',');
        if (encode_value(e, lua_gettop(L), 0, depth, viewed) != DONE)
            return DECLINED;
        lua_pop(L, 1);
        n++;
    }
    lua_pop(L, 1);
    put_char(e, ']');
    lua_Integer count = 0;
    lua_pushnil(L);
    while (lua_next(L, t))
        lua_pop(L, 1), count++;
    if (count != n)
        json_error(L, "json: table mixes array items with other keys, or has holes");
    return DONE;
}

/* Replaces the key at `slot` with its JSON string: a number as encode_number writes it. */
static void key_to_string(lua_State *L, int slot)
{
    int type = lua_type(L, slot);
    if (type == LUA_TSTRING)
        return;
    if (type != LUA_TNUMBER)
        json_error(L, "json: cannot encode a %s key", lua_typename(L, type));
    char s[FLOAT_MAX];
    lua_pushlstring(L, s, format_number(L, slot, s));
    lua_replace(L, slot);
}

/* Pushes every key (as its string) and value of table `t`: two slots per pair above the
 * current top. Returns the number of pairs, or -1 when the Lua stack cannot hold them. */
static int collect_pairs(lua_State *L, int t)
{
    int n = 0;
    lua_pushnil(L);
    while (lua_next(L, t)) {                           /* ... k v */
        if (!lua_checkstack(L, 4))
            return -1;
        lua_pushvalue(L, -2);                          /* ... k v k: lua_next goes on */
        key_to_string(L, lua_gettop(L) - 2);           /* ... ks v k */
        n++;
    }
    return n;
}

/* Ranked keys first by rank, then the others bytewise (ties between equal ranks, which
 * json.lua's RANK never has, bytewise too). */
static int key_cmp(const void *pa, const void *pb)
{
    const key_ent *a = pa, *b = pb;
    if (a->ranked && b->ranked && a->rank != b->rank)
        return a->rank < b->rank ? -1 : 1;
    if (a->ranked != b->ranked)
        return a->ranked ? -1 : 1;
    int c = memcmp(a->s, b->s, a->len < b->len ? a->len : b->len);
    if (c != 0)
        return c;
    return (a->len > b->len) - (a->len < b->len);
}

/* Fills keys[0..n) from the pairs that collect_pairs left from slot `first` on. */
static void fill_keys(lua_State *L, key_ent *keys, int first, int n)
{
    for (int i = 0; i < n; i++) {
        key_ent *k = &keys[i];
        k->slot = first + 2 * i;
        k->s = lua_tolstring(L, k->slot, &k->len);
        lua_pushvalue(L, k->slot);
        lua_rawget(L, ARG_RANK);                       /* ... rank|nil */
        int isint;
        k->rank = lua_tointegerx(L, -1, &isint);
        k->ranked = isint;
        if (!isint && !lua_isnil(L, -1))
            json_error(L, "host.json_encode: the rank of '%s' is not an integer", k->s);
        lua_pop(L, 1);
    }
}

/* Sorts the keys and raises on two keys with the same text (2 and "2"). */
static void sort_keys(lua_State *L, key_ent *keys, int n)
{
    if (n > LOCAL_KEYS) {
        qsort(keys, (size_t)n, sizeof *keys, key_cmp);
    } else {                                           /* insertion sort: no set-up cost */
        for (int i = 1; i < n; i++) {
            key_ent k = keys[i];
            int j = i;
            for (; j > 0 && key_cmp(&keys[j - 1], &k) > 0; j--)
                keys[j] = keys[j - 1];
            keys[j] = k;
        }
    }
    for (int i = 1; i < n; i++) {
        if (keys[i].len != keys[i - 1].len || memcmp(keys[i].s, keys[i - 1].s, keys[i].len))
            continue;
        lua_pushliteral(L, "json: duplicate key '");
        lua_pushvalue(L, keys[i].slot);
        lua_pushliteral(L, "'");
        lua_concat(L, 3);
        lua_error(L);
    }
}

/* An object: json.lua's encode_object. */
static int encode_object(enc *e, int t, int depth, int viewed)
{
    lua_State *L = e->L;
    int base = lua_gettop(L);
    int n = collect_pairs(L, t);
    if (n < 0)
        return DECLINED;
    charge(e, (size_t)n);
    key_ent local[LOCAL_KEYS];
    key_ent *keys = n <= LOCAL_KEYS ? local : lua_newuserdatauv(L, (size_t)n * sizeof *keys, 0);
    fill_keys(L, keys, base + 1, n);
    sort_keys(L, keys, n);
    put_char(e, '{');
    for (int i = 0; i < n; i++) {
        if (i > 0)
            put_char(e, ',');
        put_string(e, keys[i].s, keys[i].len);
        put_char(e, ':');
        if (encode_value(e, keys[i].slot + 1, keys[i].slot, depth, viewed) != DONE)
            return DECLINED;
    }
    put_char(e, '}');
    lua_settop(L, base);
    return DONE;
}

/* Whether json.lua's ARRAY_KEYS holds the key at `slot` (0: no key, as in an array). */
static int is_array_key(lua_State *L, int slot)
{
    if (slot == 0)
        return 0;
    lua_pushvalue(L, slot);
    lua_rawget(L, ARG_ARRAY_KEYS);
    int yes = lua_toboolean(L, -1);
    lua_pop(L, 1);
    return yes;
}

/* json.lua's encode_table for the table at `idx`, stored under the key at `key_slot`. */
static int encode_table(enc *e, int idx, int key_slot, int depth, int viewed)
{
    lua_State *L = e->L;
    if (depth > MAX_DEPTH)
        json_error(L, "json: nesting deeper than %d (a cycle?)", MAX_DEPTH);
    if (!lua_checkstack(L, 8))
        return DECLINED;
    int kind = push_raw(e, idx, viewed);               /* ... t */
    if (kind == FOREIGN)
        return DECLINED;
    int t = lua_gettop(L), rc = DONE;
    viewed = kind == VIEWED;
    int first = lua_rawgeti(L, t, 1);                  /* ... t t[1] */
    lua_pop(L, 1);
    if (first != LUA_TNIL) {
        rc = encode_array(e, t, depth + 1, viewed);
    } else {
        lua_pushnil(L);
        if (lua_next(L, t))                            /* ... t k v */
            lua_pop(L, 2), rc = encode_object(e, t, depth + 1, viewed);
        else
            put(e, kind == MARKED || is_array_key(L, key_slot) ? "[]" : "{}", 2);
    }
    lua_settop(L, t - 1);
    return rc;
}

static int encode_value(enc *e, int idx, int key_slot, int depth, int viewed)
{
    lua_State *L = e->L;
    charge(e, 1);
    switch (lua_type(L, idx)) {
    case LUA_TSTRING: {
        size_t len;
        const char *s = lua_tolstring(L, idx, &len);
        put_string(e, s, len);
        return DONE;
    }
    case LUA_TNUMBER:
        put_number(e, idx);
        return DONE;
    case LUA_TBOOLEAN:
        if (lua_toboolean(L, idx))
            put(e, "true", 4);
        else
            put(e, "false", 5);
        return DONE;
    case LUA_TTABLE:
        return encode_table(e, idx, key_slot, depth, viewed);
    case LUA_TLIGHTUSERDATA:
        if (lua_touserdata(L, idx) == NULL) {          /* cjson.null */
            put(e, "null", 4);
            return DONE;
        }
        break;
    }
    return json_error(L, "json: cannot encode a %s", luaL_typename(L, idx));
}

/* ---- host.json_encode ---------------------------------------------------------------- */

/* Replaces table argument `arg` (a view is fine) with the table it reads. */
static void check_table_arg(lua_State *L, int arg)
{
    luaL_checktype(L, arg, LUA_TTABLE);
    ph_sb_unwrap(L, arg);
    lua_replace(L, arg);
}

/* Whether json.lua would read marked tables raw: the marker has no __index or __pairs. */
static int marker_is_plain(lua_State *L)
{
    if (lua_isnil(L, ARG_MARKER))
        return 1;
    lua_pushliteral(L, "__index");
    int plain = lua_rawget(L, ARG_MARKER) == LUA_TNIL;
    lua_pushliteral(L, "__pairs");
    plain = plain && lua_rawget(L, ARG_MARKER) == LUA_TNIL;
    lua_settop(L, ARG_MARKER);
    return plain;
}

/* host.json_encode(value, rank, array_keys [, marker]) -> string | nil
 * The bytes json.lua's Lua encoder gives for `value`, given its RANK (key -> integer place),
 * ARRAY_KEYS (key -> true) and ARRAY_MT (the json.array() marker). nil, without an error,
 * when `value` holds a table with another metatable (see the file comment): the caller then
 * encodes in Lua. Raises json.lua's errors (functions, holes, mixed tables, depth > 64,
 * duplicate keys). Only reads its arguments; the string returned is new. */
int ph_sb_json_encode(lua_State *L)
{
    luaL_checkany(L, ARG_VALUE);
    check_table_arg(L, ARG_RANK);
    check_table_arg(L, ARG_ARRAY_KEYS);
    if (!lua_isnoneornil(L, ARG_MARKER))
        luaL_checktype(L, ARG_MARKER, LUA_TTABLE);
    lua_settop(L, ARG_MARKER);
    enc e;
    e.L = L;
    e.buf = e.local;
    e.len = 0;
    e.cap = sizeof e.local;
    e.pending = 0;
    e.marker_ok = marker_is_plain(L);
    lua_pushnil(L);                                    /* value rank keys marker out */
    if (encode_value(&e, ARG_VALUE, 0, 0, 0) != DONE)
        return lua_pushnil(L), 1;
    lua_pushlstring(L, e.buf, e.len);
    return 1;
}
