/* lua_planhost — the Lua module `planhost` (require "planhost" from stock lua5.4).
 *
 * Bindings over the embedding API (planhost.h), one userdata type for a host. Misuse raises
 * (bad argument types, unknown option keys); expected failures — scripts that do not load,
 * malformed snapshots, unknown templates — return nil, message, code, where. Events come
 * back as tables decoded with the caller's cjson, with the raw JSON kept in field `json`.
 * This file and the script adapter are the only ones that include lua.h. */
#include <lauxlib.h>
#include <lua.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "host.h"
#include "lua_bind.h"
#include "registry.h"

#define HOST_MT "planhost.host"

int ph_lua_validate_push(lua_State *L, const ph_registry *r, const int *tools, int ntools,
                         const char *steps_json, size_t steps_len, const char *snapshot_json,
                         size_t snapshot_len, int limits_idx);   /* lua_validate.c */
int ph_lua_planparse_push(lua_State *L, const ph_registry *r, const int *tools, int ntools,
                          unsigned flags, const char *text, size_t len, size_t piece);

typedef struct lhost {
    ph_host *h;
} lhost;

static ph_host *check_host(lua_State *L)
{
    lhost *u = luaL_checkudata(L, 1, HOST_MT);
    if (!u->h)
        luaL_error(L, "planhost: the host is closed");
    return u->h;
}

/* nil, message, code, where */
static int push_failure(lua_State *L, const ph_error *err)
{
    luaL_pushfail(L);
    lua_pushstring(L, err->message);
    lua_pushstring(L, ph_code_name(err->code));
    lua_pushstring(L, err->where);
    return 4;
}

static const char *const OPEN_KEYS[] = {
    "root", "watch", "interval_ms", "url", "api", "model", "connect_timeout_ms", "first_byte_timeout_ms",
    "budget_ms", "keep_alive", "max_response", "headers", "endpoints", "max_in_flight", "max_pending",
    "max_snapshot", "cache", "cache_entries", "cache_bytes", "cache_ttl_ms", "cache_file", NULL,
};

void ph_lua_check_keys(lua_State *L, int idx, const char *const *known, const char *fn)
{
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pop(L, 1);
        const char *k = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
        const char *const *n = known;
        while (k && *n && strcmp(*n, k) != 0)
            n++;
        if (!k || !*n)
            luaL_error(L, "%s: unknown option '%s'", fn, k ? k : luaL_typename(L, -1));
    }
}

static const char *const ENDPOINT_KEYS[] = {"url", "api", "model", "group", "max_in_flight", "headers", NULL};

/* Reads field "headers" of the table at `idx`, a list of at most PH_MAX_HEADERS strings, into
 * `out` (NULL-terminated). The strings stay alive on the stack. Returns `out`, or NULL when
 * the field is absent; raises an error naming `fn` for anything else. */
static const char *const *read_headers(lua_State *L, int idx, const char *fn, const char **out)
{
    int t = lua_getfield(L, idx, "headers");
    if (t == LUA_TNIL)
        return NULL;
    if (t != LUA_TTABLE)
        luaL_error(L, "%s: headers wants a list of \"Name: value\" strings, not a %s", fn, lua_typename(L, t));
    int list = lua_gettop(L);
    lua_Integer n = (lua_Integer)lua_rawlen(L, list);
    if (n > PH_MAX_HEADERS)
        luaL_error(L, "%s: at most %d headers, not %d", fn, PH_MAX_HEADERS, (int)n);
    luaL_checkstack(L, (int)n, fn);
    for (int i = 0; i < n; i++) {
        if (lua_rawgeti(L, list, i + 1) != LUA_TSTRING)
            luaL_error(L, "%s: header %d is a %s, not a \"Name: value\" string", fn, i + 1, luaL_typename(L, -1));
        out[i] = lua_tostring(L, -1);
    }
    out[n] = NULL;
    return out;
}

/* endpoints = { {url =, api =, model =, group =}, ... }; strings stay on the stack. */
static int read_endpoints(lua_State *L, int idx, ph_endpoint_config *eps,
                          const char *(*headers)[PH_MAX_HEADERS + 1])
{
    int n = (int)lua_rawlen(L, idx);
    if (n > PH_MAX_ENDPOINTS)
        luaL_error(L, "planhost.open: at most %d endpoints", PH_MAX_ENDPOINTS);
    for (int i = 0; i < n; i++) {
        luaL_checkstack(L, 8, "planhost.open endpoints");   /* what one endpoint leaves */
        lua_rawgeti(L, idx, i + 1);
        int e = lua_gettop(L);
        luaL_checktype(L, e, LUA_TTABLE);
        ph_lua_check_keys(L, e, ENDPOINT_KEYS, "planhost.open endpoints");
        lua_getfield(L, e, "url");
        eps[i].url = luaL_checkstring(L, -1);
        lua_getfield(L, e, "api");
        eps[i].api = luaL_optstring(L, -1, NULL);
        lua_getfield(L, e, "model");
        eps[i].model = luaL_optstring(L, -1, NULL);
        lua_getfield(L, e, "group");
        eps[i].group = luaL_optstring(L, -1, NULL);
        lua_getfield(L, e, "max_in_flight");
        eps[i].max_in_flight = (int)luaL_optinteger(L, -1, 0);
        eps[i].headers = read_headers(L, e, "planhost.open endpoints", headers[i]);
    }
    return n;
}

/* planhost.open(root | {root=, watch=, interval_ms=, url=, api=, model=, endpoints=, ...})
 * -> host | nil, msg, code, where */
static int l_open(lua_State *L)
{
    ph_host_config cfg = {0};
    ph_endpoint_config eps[PH_MAX_ENDPOINTS];
    const char *headers[PH_MAX_ENDPOINTS + 1][PH_MAX_HEADERS + 1];  /* the host's is the last */
    if (lua_type(L, 1) == LUA_TSTRING) {
        cfg.root = lua_tostring(L, 1);
    } else {
        luaL_checktype(L, 1, LUA_TTABLE);
        ph_lua_check_keys(L, 1, OPEN_KEYS, "planhost.open");
        lua_getfield(L, 1, "root");
        cfg.root = luaL_checkstring(L, -1);
        lua_getfield(L, 1, "watch");
        cfg.watch = lua_toboolean(L, -1);
        lua_getfield(L, 1, "interval_ms");
        cfg.watch_interval_ms = (int)luaL_optinteger(L, -1, 0);
        lua_getfield(L, 1, "url");
        cfg.url = luaL_optstring(L, -1, NULL);
        lua_getfield(L, 1, "api");
        cfg.api = luaL_optstring(L, -1, NULL);
        lua_getfield(L, 1, "model");
        cfg.model = luaL_optstring(L, -1, NULL);
        lua_getfield(L, 1, "connect_timeout_ms");
        cfg.connect_timeout_ms = (long)luaL_optinteger(L, -1, 0);
        lua_getfield(L, 1, "first_byte_timeout_ms");
        cfg.first_byte_timeout_ms = (long)luaL_optinteger(L, -1, 0);
        lua_getfield(L, 1, "budget_ms");
        cfg.budget_ms = (int)luaL_optinteger(L, -1, 0);
        lua_getfield(L, 1, "keep_alive");
        cfg.keep_alive = luaL_optstring(L, -1, NULL);
        lua_getfield(L, 1, "max_response");
        cfg.max_response = (size_t)luaL_optinteger(L, -1, 0);
        lua_getfield(L, 1, "max_in_flight");
        cfg.max_in_flight = (int)luaL_optinteger(L, -1, 0);
        lua_getfield(L, 1, "max_pending");
        cfg.max_pending = (int)luaL_optinteger(L, -1, 0);
        lua_getfield(L, 1, "max_snapshot");
        cfg.max_snapshot = (size_t)luaL_optinteger(L, -1, 0);
        lua_getfield(L, 1, "cache");
        cfg.cache_off = !lua_isnil(L, -1) && !lua_toboolean(L, -1);
        lua_getfield(L, 1, "cache_entries");
        cfg.cache_entries = (size_t)luaL_optinteger(L, -1, 0);
        lua_getfield(L, 1, "cache_bytes");
        cfg.cache_bytes = (size_t)luaL_optinteger(L, -1, 0);
        lua_getfield(L, 1, "cache_ttl_ms");
        cfg.cache_ttl_ms = (long)luaL_optinteger(L, -1, 0);
        lua_getfield(L, 1, "cache_file");
        cfg.cache_file = luaL_optstring(L, -1, NULL);
        cfg.headers = read_headers(L, 1, "planhost.open", headers[PH_MAX_ENDPOINTS]);
        if (lua_getfield(L, 1, "endpoints") == LUA_TTABLE)
            cfg.nendpoints = read_endpoints(L, lua_gettop(L), eps, headers);
        cfg.endpoints = eps;
    }
    lhost *u = lua_newuserdatauv(L, sizeof *u, 0);
    u->h = NULL;
    luaL_setmetatable(L, HOST_MT);
    ph_error err;
    u->h = ph_host_open(&cfg, &err);
    if (!u->h)
        return push_failure(L, &err);
    return 1;
}

static int l_close(lua_State *L)
{
    lhost *u = luaL_checkudata(L, 1, HOST_MT);
    ph_host_close(u->h);
    u->h = NULL;
    return 0;
}

/* host:render(template, snapshot_json) -> {system, user, chars, tokens} | nil, msg, code, where */
static int l_render(lua_State *L)
{
    ph_host *h = check_host(L);
    const char *name = luaL_checkstring(L, 2);
    size_t len;
    const char *snap = luaL_checklstring(L, 3, &len);
    ph_prompt p;
    ph_error err;
    if (ph_host_render(h, name, snap, len, &p, &err) != 0)
        return push_failure(L, &err);
    lua_createtable(L, 0, 4);
    lua_pushlstring(L, p.system, p.system_len);
    lua_setfield(L, -2, "system");
    lua_pushlstring(L, p.user, p.user_len);
    lua_setfield(L, -2, "user");
    lua_pushinteger(L, (lua_Integer)p.chars);
    lua_setfield(L, -2, "chars");
    lua_pushinteger(L, (lua_Integer)p.tokens);
    lua_setfield(L, -2, "tokens");
    ph_prompt_free(&p);
    return 1;
}

static void push_tool_names(lua_State *L, const ph_registry *r, const int *idx, int n)
{
    lua_createtable(L, n, 0);
    for (int i = 0; i < n; i++) {
        lua_pushstring(L, r->tools[idx[i]].name);
        lua_rawseti(L, -2, i + 1);
    }
}

static const char *const SUBMIT_KEYS[] = {"snapshot", "agent", "template", "budget_ms", "headers", "record", "game", NULL};

/* host:submit{snapshot = JSON, agent =, template =, budget_ms =, headers = {"K: v"}, record = path}
 * -> request id | nil, msg, code, where */
static int l_submit(lua_State *L)
{
    ph_host *h = check_host(L);
    luaL_checktype(L, 2, LUA_TTABLE);
    ph_lua_check_keys(L, 2, SUBMIT_KEYS, "host:submit");
    ph_request_opts o = {0};
    lua_getfield(L, 2, "snapshot");
    o.snapshot = luaL_checklstring(L, -1, &o.len);
    lua_getfield(L, 2, "agent");
    o.agent = luaL_optstring(L, -1, NULL);
    lua_getfield(L, 2, "template");
    o.template = luaL_optstring(L, -1, NULL);
    lua_getfield(L, 2, "budget_ms");
    o.budget_ms = (int)luaL_optinteger(L, -1, 0);
    lua_getfield(L, 2, "record");
    o.record = luaL_optstring(L, -1, NULL);
    lua_getfield(L, 2, "game");
    o.game = luaL_optstring(L, -1, NULL);
    const char *headers[PH_MAX_HEADERS + 1];
    o.headers = read_headers(L, 2, "host:submit", headers);
    ph_error err;
    unsigned long id = ph_host_submit(h, &o, &err);
    if (!id)
        return push_failure(L, &err);
    lua_pushinteger(L, (lua_Integer)id);
    return 1;
}

/* host:cancel(id) -> true | false */
static int l_cancel(lua_State *L)
{
    ph_host *h = check_host(L);
    lua_pushboolean(L, ph_host_cancel(h, (unsigned long)luaL_checkinteger(L, 2)) == 0);
    return 1;
}

/* host:pending() -> requests submitted and not ended */
static int l_pending(lua_State *L)
{
    lua_pushinteger(L, ph_host_pending(check_host(L)));
    return 1;
}

/* host:templates() -> { {name, file, tools = {...}, batch, schema, system_chars}, ... } */
static int l_templates(lua_State *L)
{
    ph_gen *g = ph_host_gen(check_host(L));
    int n = ph_gen_ntemplates(g);
    lua_createtable(L, n, 0);
    for (int i = 0; i < n; i++) {
        const ph_template *t = ph_gen_template(g, i);
        lua_createtable(L, 0, 6);
        lua_pushstring(L, t->name);
        lua_setfield(L, -2, "name");
        lua_pushstring(L, t->file);
        lua_setfield(L, -2, "file");
        push_tool_names(L, ph_gen_registry(g), t->tools, t->ntools);
        lua_setfield(L, -2, "tools");
        lua_pushboolean(L, t->batch);
        lua_setfield(L, -2, "batch");
        lua_pushboolean(L, t->schema);
        lua_setfield(L, -2, "schema");
        lua_pushinteger(L, (lua_Integer)ph_utf8_chars(t->system, t->system_len));
        lua_setfield(L, -2, "system_chars");
        lua_rawseti(L, -2, i + 1);
    }
    return 1;
}

static void push_param(lua_State *L, const ph_param *p)
{
    static const char *const of_names[] = {"enemy", "player", "self", "ally", "any"};
    lua_createtable(L, 0, 6);
    lua_pushstring(L, p->name);
    lua_setfield(L, -2, "name");
    lua_pushstring(L, ph_ptype_name(p->type));
    lua_setfield(L, -2, "type");
    lua_pushboolean(L, p->optional);
    lua_setfield(L, -2, "optional");
    if (p->nvalues) {
        lua_createtable(L, p->nvalues, 0);
        for (int v = 0; v < p->nvalues; v++)
            lua_pushstring(L, p->values[v]), lua_rawseti(L, -2, v + 1);
        lua_setfield(L, -2, "values");
    }
    if (p->min_items)
        lua_pushinteger(L, p->min_items), lua_setfield(L, -2, "min_items");
    if (p->type == PH_T_ENTITY) {
        lua_newtable(L);
        for (int b = 0, k = 1; b < 5; b++)
            if (p->of & (1u << b))
                lua_pushstring(L, of_names[b]), lua_rawseti(L, -2, k++);
        lua_setfield(L, -2, "of");
    }
}

/* host:tools() -> { {name, group, cooldown, desc, params = {...}}, ... }, { subset = {names} } */
static int l_tools(lua_State *L)
{
    const ph_registry *r = ph_gen_registry(ph_host_gen(check_host(L)));
    lua_createtable(L, r->ntools, 0);
    for (int i = 0; i < r->ntools; i++) {
        const ph_tool *t = &r->tools[i];
        lua_createtable(L, 0, 5);
        lua_pushstring(L, t->name);
        lua_setfield(L, -2, "name");
        lua_pushstring(L, t->group);
        lua_setfield(L, -2, "group");
        lua_pushnumber(L, t->cooldown);
        lua_setfield(L, -2, "cooldown");
        lua_pushstring(L, t->desc ? t->desc : "");
        lua_setfield(L, -2, "desc");
        lua_createtable(L, t->nparams, 0);
        for (int p = 0; p < t->nparams; p++)
            push_param(L, &t->params[p]), lua_rawseti(L, -2, p + 1);
        lua_setfield(L, -2, "params");
        lua_rawseti(L, -2, i + 1);
    }
    lua_createtable(L, 0, r->nsubsets);
    for (int s = 0; s < r->nsubsets; s++) {
        push_tool_names(L, r, r->subsets[s].tools, r->subsets[s].ntools);
        lua_setfield(L, -2, r->subsets[s].name);
    }
    return 2;
}

static void check_row_to_lua(void *ud, const ph_check_row *row)
{
    lua_State *L = ud;
    lua_createtable(L, 0, 8);
    lua_pushstring(L, row->tmpl->name);
    lua_setfield(L, -2, "template");
    lua_pushstring(L, row->snapshot);
    lua_setfield(L, -2, "snapshot");
    lua_pushinteger(L, (lua_Integer)row->chars);
    lua_setfield(L, -2, "chars");
    lua_pushinteger(L, (lua_Integer)row->tokens);
    lua_setfield(L, -2, "tokens");
    lua_pushinteger(L, row->tools_named);
    lua_setfield(L, -2, "tools_named");
    lua_pushinteger(L, row->tools_total);
    lua_setfield(L, -2, "tools_total");
    lua_pushboolean(L, row->error == NULL);
    lua_setfield(L, -2, "ok");
    if (row->error)
        lua_pushstring(L, row->error->message), lua_setfield(L, -2, "error");
    lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
}

/* host:check() -> rows, failed */
static int l_check(lua_State *L)
{
    ph_host *h = check_host(L);
    ph_snapshot_set set;
    ph_error err;
    if (ph_host_snapshots(h, &set, &err) != 0)
        return push_failure(L, &err);
    lua_newtable(L);
    int failed = ph_check_generation(ph_host_gen(h), &set, check_row_to_lua, L, NULL);
    ph_snapshots_free(&set);
    lua_pushinteger(L, failed);
    return 2;
}

/* Pushes an event as a table: the caller's cjson decodes it; `json` keeps the text. */
static void push_event(lua_State *L, const ph_event *ev)
{
    lua_getglobal(L, "require");
    lua_pushliteral(L, "cjson");
    lua_call(L, 1, 1);
    lua_getfield(L, -1, "decode");
    lua_remove(L, -2);
    lua_pushlstring(L, ev->json, ev->len);
    lua_call(L, 1, 1);
    lua_pushlstring(L, ev->json, ev->len);
    lua_setfield(L, -2, "json");
}

static int push_events(lua_State *L, ph_host *h)
{
    lua_newtable(L);
    ph_event ev;
    for (int i = 1; ph_host_next_event(h, &ev); i++) {
        push_event(L, &ev);
        lua_rawseti(L, -2, i);
    }
    return 1;
}

/* host:poll([timeout_ms]) -> { event, ... } */
static int l_poll(lua_State *L)
{
    ph_host *h = check_host(L);
    ph_host_poll(h, (int)luaL_optinteger(L, 2, 0));
    return push_events(L, h);
}

/* host:reload() -> ok, { event, ... } */
static int l_reload(lua_State *L)
{
    ph_host *h = check_host(L);
    int rc = ph_host_reload(h, NULL);
    lua_pushboolean(L, rc == 0);
    push_events(L, h);
    return 2;
}

/* host:generation() -> number, content hash (hex) */
static int l_generation(lua_State *L)
{
    ph_host *h = check_host(L);
    char hex[17];
    snprintf(hex, sizeof hex, "%016llx", ph_host_script_hash(h));
    lua_pushinteger(L, ph_host_generation(h));
    lua_pushstring(L, hex);
    return 2;
}

/* host:exec(source [, chunkname]) -> tostring(result) | nil, msg, code, where
 * Runs untrusted text in the serving generation's sandbox, with its budgets. */
static int l_exec(lua_State *L)
{
    ph_host *h = check_host(L);
    const char *src = luaL_checkstring(L, 2);
    const char *name = luaL_optstring(L, 3, "exec");
    ph_buf out;
    ph_buf_init(&out, 1u << 20);
    ph_error err;
    if (ph_gen_exec(ph_host_gen(h), src, name, &out, &err) != 0) {
        ph_buf_free(&out);
        return push_failure(L, &err);
    }
    lua_pushlstring(L, out.data ? out.data : "", out.len);
    ph_buf_free(&out);
    return 1;
}

/* host:memory() -> bytes held by the serving generation's Lua state, and its cap */
static int l_memory(lua_State *L)
{
    ph_gen *g = ph_host_gen(check_host(L));
    lua_pushinteger(L, (lua_Integer)ph_gen_memory(g));
    lua_pushinteger(L, (lua_Integer)ph_gen_limits(g)->memory);
    return 2;
}

static const char *const PARSE_KEYS[] = {"template", "piece", "batch", NULL};

/* host:parse(text [, {template = "compact", piece = N, batch = bool}]) -> { event, ... }
 * Runs model text through the plan parser in N-byte pieces (default: whole) with the
 * template's tool subset (default: every tool), returning what it emitted. */
static int l_parse(lua_State *L)
{
    ph_gen *g = ph_host_gen(check_host(L));
    size_t len;
    const char *text = luaL_checklstring(L, 2, &len);
    const ph_template *t = NULL;
    size_t piece = 0;
    int batch = 0;
    if (!lua_isnoneornil(L, 3)) {
        luaL_checktype(L, 3, LUA_TTABLE);
        ph_lua_check_keys(L, 3, PARSE_KEYS, "host:parse");
        if (lua_getfield(L, 3, "template") != LUA_TNIL) {
            t = ph_gen_find_template(g, luaL_checkstring(L, -1));
            if (!t)
                luaL_error(L, "host:parse: unknown template '%s'", lua_tostring(L, -1));
        }
        lua_getfield(L, 3, "piece");
        piece = (size_t)luaL_optinteger(L, -1, 0);
        lua_getfield(L, 3, "batch");
        batch = lua_toboolean(L, -1);
        lua_settop(L, 3);
    }
    if (t && t->batch)
        batch = 1;
    return ph_lua_planparse_push(L, ph_gen_registry(g), t ? t->tools : NULL, t ? t->ntools : 0,
                                 batch ? 1u : 0u, text, len, piece);
}

static const char *const VALIDATE_KEYS[] = {"template", "limits", NULL};

/* host:validate(steps_json, snapshot_json [, {template = NAME, limits = {...}}])
 *   -> {kept, nkept, dropped = {{index, reason}, ...}} | nil, message */
static int l_validate(lua_State *L)
{
    ph_gen *g = ph_host_gen(check_host(L));
    size_t slen, nlen;
    const char *steps = luaL_checklstring(L, 2, &slen);
    const char *snap = luaL_checklstring(L, 3, &nlen);
    const ph_template *t = NULL;
    int limits = 0;
    if (!lua_isnoneornil(L, 4)) {
        luaL_checktype(L, 4, LUA_TTABLE);
        ph_lua_check_keys(L, 4, VALIDATE_KEYS, "host:validate");
        if (lua_getfield(L, 4, "template") != LUA_TNIL) {
            t = ph_gen_find_template(g, luaL_checkstring(L, -1));
            if (!t)
                luaL_error(L, "host:validate: unknown template '%s'", lua_tostring(L, -1));
        }
        if (lua_getfield(L, 4, "limits") != LUA_TNIL)
            limits = lua_gettop(L);
    }
    return ph_lua_validate_push(L, ph_gen_registry(g), t ? t->tools : NULL, t ? t->ntools : 0,
                                steps, slen, snap, nlen, limits);
}

/* planhost.clock() -> milliseconds on a monotonic clock (for timing in tools and specs) */
static int l_clock(lua_State *L)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    lua_pushnumber(L, (lua_Number)ts.tv_sec * 1e3 + (lua_Number)ts.tv_nsec / 1e6);
    return 1;
}

/* host:metrics() -> the Prometheus text (host/metrics.h lists the families) */
static int l_metrics(lua_State *L)
{
    size_t len;
    char *text = ph_host_metrics(check_host(L), &len);
    if (!text)
        return luaL_error(L, "host:metrics: out of memory");
    lua_pushlstring(L, text, len);
    free(text);
    return 1;
}

/* host:cache_save() -> true | nil, msg, code, where */
static int l_cache_save(lua_State *L)
{
    ph_error err;
    if (ph_host_cache_save(check_host(L), &err) != 0)
        return push_failure(L, &err);
    lua_pushboolean(L, 1);
    return 1;
}

static const luaL_Reg host_methods[] = {
    {"render", l_render}, {"templates", l_templates}, {"tools", l_tools}, {"check", l_check},
    {"poll", l_poll}, {"reload", l_reload}, {"generation", l_generation}, {"exec", l_exec},
    {"memory", l_memory}, {"parse", l_parse}, {"validate", l_validate}, {"submit", l_submit}, {"cancel", l_cancel},
    {"pending", l_pending}, {"cache_save", l_cache_save}, {"metrics", l_metrics}, {"close", l_close}, {NULL, NULL},
};

static const luaL_Reg host_meta[] = {{"__gc", l_close}, {"__close", l_close}, {NULL, NULL}};

int luaopen_planhost(lua_State *L)
{
    luaL_newmetatable(L, HOST_MT);
    luaL_setfuncs(L, host_meta, 0);
    luaL_newlib(L, host_methods);
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);
    static const luaL_Reg funcs[] = {{"open", l_open}, {"clock", l_clock}, {NULL, NULL}};
    luaL_newlib(L, funcs);
    lua_pushliteral(L, PH_VERSION);
    lua_setfield(L, -2, "version");
    lua_pushinteger(L, PH_MAX_HEADERS);
    lua_setfield(L, -2, "MAX_HEADERS");
    lua_pushinteger(L, PH_MAX_ENDPOINTS);
    lua_setfield(L, -2, "MAX_ENDPOINTS");
    ph_lua_json_open(L);
    lua_setfield(L, -2, "json");
    ph_lua_framing_open(L);
    lua_setfield(L, -2, "framing");
    ph_lua_cache_open(L);
    lua_setfield(L, -2, "cache");
    ph_lua_snaphash_open(L);
    lua_setfield(L, -2, "snaphash");
    ph_lua_metrics_open(L);
    lua_setfield(L, -2, "metrics");
    return 1;
}
