/* script — script generations: the state, its allocator, the protected call, loading and
 * rendering. See script.h for the contract; sandbox.c builds the environment, script_tmpl.c
 * reads templates and policies, script_registry.c compiles the tool registry. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonstream.h"
#include "script_internal.h"

/* ---- memory -------------------------------------------------------------------------- */

/* lua_Alloc that accounts every byte and refuses to grow past the generation's cap. Frees
 * and shrinks always succeed, as Lua requires. */
static void *gen_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    ph_gen *g = ud;
    size_t old = ptr ? osize : 0;
    if (nsize == 0) {
        free(ptr);
        g->mem_used -= old;
        return NULL;
    }
    if (nsize > old && g->mem_used - old + nsize > g->limits.memory)
        return NULL;
    void *p = realloc(ptr, nsize);
    if (p)
        g->mem_used = g->mem_used - old + nsize;
    return p;
}

/* ---- the protected path -------------------------------------------------------------- */

/* Message handler: keeps the message, stores a traceback beside it. */
static int msgh(lua_State *L)
{
    ph_gen *g = ph_sb_gen(L);
    if (!lua_isstring(L, 1))
        lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1)), lua_replace(L, 1);
    luaL_traceback(L, L, NULL, 1);
    snprintf(g->traceback, sizeof g->traceback, "%s", lua_tostring(L, -1));
    lua_pop(L, 1);
    return 1;
}

/* Copies the "file:line" that starts `msg` into `where`, if it starts with one. */
static void parse_where(const char *msg, char *where, size_t size)
{
    const char *colon = strchr(msg, ':');
    where[0] = '\0';
    if (!colon || colon == msg || memchr(msg, ' ', (size_t)(colon - msg)))
        return;
    const char *p = colon + 1;
    while (*p >= '0' && *p <= '9')
        p++;
    if (p == colon + 1 || *p != ':')
        return;
    snprintf(where, size, "%.*s", (int)(p - msg), msg);
}

static void fill_call_error(ph_gen *g, int status, const char *what, ph_error *err)
{
    const char *msg = lua_tostring(g->L, -1);
    if (status == LUA_ERRMEM) {
        ph_error_set(err, PH_ERR_MEMORY, "%s: script memory cap of %zu KiB exceeded", what,
                     g->limits.memory >> 10);
        snprintf(err->where, sizeof err->where, "%s", what);
        return;
    }
    ph_error_set(err, g->killed ? PH_ERR_BUDGET : PH_ERR_RUNTIME, "%s", msg ? msg : "?");
    parse_where(err->message, err->where, sizeof err->where);
    if (!err->where[0]) {
        ph_error_prefix(err, "%s", what);
        snprintf(err->where, sizeof err->where, "%s", what);
    }
    snprintf(err->traceback, sizeof err->traceback, "%s", g->traceback);
}

int ph_sb_call(ph_gen *g, int nargs, int nresults, const char *what, ph_error *err)
{
    lua_State *L = g->L;
    int base = lua_gettop(L) - nargs;        /* index of the function */
    if (g->depth == 0) {
        g->budget_left = g->limits.instructions;
        g->killed = 0;
        g->traceback[0] = '\0';
    }
    lua_pushcfunction(L, msgh);
    lua_insert(L, base);                     /* msgh f args... */
    g->depth++;
    int status = lua_pcall(L, nargs, nresults, base);
    g->depth--;
    if (status == LUA_OK) {
        lua_remove(L, base);                 /* results... */
        return 0;
    }
    fill_call_error(g, status, what, err);
    lua_settop(L, base - 1);
    if (g->depth == 0)
        g->killed = 0;
    return -1;
}

/* ---- loading ------------------------------------------------------------------------- */

static int starts_with(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* Compiles every lua/ module once so a syntax error is reported at reload even in a module
 * nothing requires yet. */
static int check_modules(ph_gen *g, ph_error *err)
{
    for (int i = 0; i < g->tree.nfiles; i++) {
        const ph_file *f = &g->tree.files[i];
        if (!starts_with(f->path, "lua/"))
            continue;
        if (ph_sb_load(g, f->text, f->len, f->path, err) != 0)
            return -1;
        lua_pop(g->L, 1);
    }
    return 0;
}

static int registry_trampoline(lua_State *L)
{
    ph_registry_compile(L, 1, lua_touserdata(L, 2));
    return 0;
}

static int load_registry(ph_gen *g, ph_error *err)
{
    lua_State *L = g->L;
    if (!ph_tree_find(&g->tree, "lua/tools.lua"))
        return ph_error_set(err, PH_ERR_NOTFOUND, "lua/tools.lua: the tool registry is missing");
    if (ph_sb_require(g, "tools", err) != 0)
        return -1;
    g->registry = calloc(1, sizeof *g->registry);
    if (!g->registry)
        return ph_error_set(err, PH_ERR_MEMORY, "out of memory");
    lua_pushcfunction(L, registry_trampoline);
    lua_pushvalue(L, -2);
    lua_pushlightuserdata(L, g->registry);
    if (ph_sb_call(g, 2, 0, "lua/tools.lua", err) != 0) {
        lua_pop(L, 1);
        return -1;
    }
    g->tools_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    return 0;
}

static ph_gen *gen_new(ph_tree *tree, unsigned id, ph_error *err)
{
    ph_gen *g = calloc(1, sizeof *g);
    if (!g) {
        ph_error_set(err, PH_ERR_MEMORY, "out of memory");
        return NULL;
    }
    g->id = id;
    g->refs = 1;
    g->tree = *tree;
    memset(tree, 0, sizeof *tree);
    g->limits.instructions = PH_DEFAULT_INSTRUCTIONS;
    g->limits.memory = PH_DEFAULT_MEMORY;
    g->base_ref = g->tools_ref = g->policies_ref = g->snap_ref = LUA_NOREF;
    g->L = lua_newstate(gen_alloc, g);
    if (!g->L) {
        ph_error_set(err, PH_ERR_MEMORY, "cannot create a Lua state");
        ph_tree_free(&g->tree);
        free(g);
        return NULL;
    }
    *(ph_gen **)lua_getextraspace(g->L) = g;
    return g;
}

ph_gen *ph_gen_load(ph_tree *tree, unsigned id, ph_error *err)
{
    ph_gen *g = gen_new(tree, id, err);
    if (!g)
        return NULL;
    if (ph_sb_open(g, err) != 0 || check_modules(g, err) != 0 || ph_policies_load(g, err) != 0 ||
        load_registry(g, err) != 0 || ph_templates_load(g, err) != 0 || ph_tier_policy_load(g, err) != 0 ||
        ph_cache_policy_load(g, err) != 0 || ph_batch_policy_load(g, err) != 0 ||
        ph_ab_policy_load(g, err) != 0) {
        ph_gen_release(g);
        return NULL;
    }
    return g;
}

/* ---- lifetime and accessors ---------------------------------------------------------- */

void ph_gen_retain(ph_gen *g)
{
    g->refs++;
}

void ph_gen_release(ph_gen *g)
{
    if (!g || --g->refs > 0)
        return;
    free(g->snap_text);            /* its registry ref goes with the state */
    lua_close(g->L);
    ph_json_free(g->json);
    ph_tier_policy_free(g);
    ph_cache_policy_free(g);
    ph_templates_free(g);
    ph_registry_free(g->registry);
    ph_tree_free(&g->tree);
    free(g);
}

unsigned ph_gen_id(const ph_gen *g) { return g->id; }
uint64_t ph_gen_hash(const ph_gen *g) { return g->tree.hash; }
const ph_limits *ph_gen_limits(const ph_gen *g) { return &g->limits; }
size_t ph_gen_memory(const ph_gen *g) { return g->mem_used; }
const ph_registry *ph_gen_registry(const ph_gen *g) { return g->registry; }
const ph_tree *ph_gen_tree(const ph_gen *g) { return &g->tree; }
int ph_gen_ntemplates(const ph_gen *g) { return g->ntemplates; }

const ph_template *ph_gen_template(const ph_gen *g, int i)
{
    return i >= 0 && i < g->ntemplates ? &g->templates[i] : NULL;
}

const ph_template *ph_gen_find_template(const ph_gen *g, const char *name)
{
    for (int i = 0; i < g->ntemplates; i++)
        if (strcmp(g->templates[i].name, name) == 0)
            return &g->templates[i];
    return NULL;
}

/* ---- rendering ----------------------------------------------------------------------- */

typedef struct render_args {
    const ph_template *t;
    const char *const *texts;
    const size_t *lens;
    int n;
    int which;         /* the snapshot being decoded */
    char json_error[256]; /* set when a snapshot is malformed */
} render_args;

/* Runs inside the protected call: decodes the snapshots, then calls user(snapshot, ctx). */
static int render_trampoline(lua_State *L)
{
    render_args *a = lua_touserdata(L, 1);
    ph_gen *g = ph_sb_gen(L);
    lua_rawgeti(L, LUA_REGISTRYINDEX, a->t->user_ref);
    if (a->t->batch)
        lua_createtable(L, a->n, 0);
    for (a->which = 0; a->which < a->n; a->which++) {
        if (ph_sb_push_json(L, &g->json, a->texts[a->which], a->lens[a->which], a->json_error,
                            sizeof a->json_error) != 0)
            return luaL_error(L, "%s", a->json_error);
        if (!lua_istable(L, -1)) {
            snprintf(a->json_error, sizeof a->json_error, "a snapshot must be a JSON object, not %s",
                     luaL_typename(L, -1));
            return luaL_error(L, "%s", a->json_error);
        }
        if (a->t->batch)
            lua_rawseti(L, -2, a->which + 1);
    }
    lua_rawgeti(L, LUA_REGISTRYINDEX, a->t->ctx_ref);
    lua_call(L, 2, 1);
    return 1;
}

static int check_prompt_string(lua_State *L, const char *file, const char *part, ph_error *err)
{
    if (lua_type(L, -1) != LUA_TSTRING)
        return ph_error_set(err, PH_ERR_CONTRACT, "%s: %s() must return a string, not %s", file,
                            part, luaL_typename(L, -1));
    if (lua_rawlen(L, -1) > PH_MAX_PROMPT)
        return ph_error_set(err, PH_ERR_LIMIT, "%s: %s() returned %zu bytes (limit %u)", file, part,
                            (size_t)lua_rawlen(L, -1), PH_MAX_PROMPT);
    return 0;
}

int ph_gen_render_user(ph_gen *g, const ph_template *t, const char *const *snapshots,
                       const size_t *lens, int n, ph_buf *out, ph_error *err)
{
    if (n < 1 || (n > 1 && !t->batch))
        return ph_error_set(err, PH_ERR_ARG, "%s: takes %s snapshot", t->file, t->batch ? "at least one" : "exactly one");
    lua_State *L = g->L;
    render_args a = {t, snapshots, lens, n, 0, ""};
    lua_pushcfunction(L, render_trampoline);
    lua_pushlightuserdata(L, &a);
    if (ph_sb_call(g, 1, 1, t->file, err) != 0) {
        if (a.json_error[0] && n == 1)
            ph_error_set(err, PH_ERR_JSON, "%s", a.json_error);
        else if (a.json_error[0])
            ph_error_set(err, PH_ERR_JSON, "snapshot %d: %s", a.which + 1, a.json_error);
        return -1;
    }
    int rc = check_prompt_string(L, t->file, "user", err);
    if (rc == 0) {
        size_t len;
        const char *s = lua_tolstring(L, -1, &len);
        if (ph_buf_add(out, s, len) != 0)
            rc = ph_error_set(err, PH_ERR_LIMIT, "%s: prompt too large", t->file);
    }
    lua_pop(L, 1);
    return rc;
}

/* Runs inside the protected call: the chunk, then tostring() of its first result. */
static int exec_trampoline(lua_State *L)
{
    lua_call(L, 0, 1);
    luaL_tolstring(L, -1, NULL);
    return 1;
}

int ph_gen_exec(ph_gen *g, const char *src, const char *name, ph_buf *out, ph_error *err)
{
    lua_State *L = g->L;
    lua_pushcfunction(L, exec_trampoline);
    if (ph_sb_load(g, src, strlen(src), name, err) != 0) {
        lua_pop(L, 1);
        return -1;
    }
    if (ph_sb_call(g, 1, 1, name, err) != 0)
        return -1;
    size_t len;
    const char *s = lua_tolstring(L, -1, &len);
    int rc = ph_buf_add(out, s, len);
    lua_pop(L, 1);
    return rc == 0 ? 0 : ph_error_set(err, PH_ERR_LIMIT, "%s: result too large", name);
}
