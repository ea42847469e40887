/* script_internal — what the files of the script adapter share (script.c, sandbox.c,
 * script_registry.c). Includes lua.h; nothing outside the adapter includes this. */
#ifndef PH_SCRIPT_INTERNAL_H
#define PH_SCRIPT_INTERNAL_H

#include <lauxlib.h>
#include <lua.h>

#include "script.h"

struct ph_gen {
    lua_State *L;
    unsigned id;
    int refs;
    ph_tree tree;            /* owned: what require() and the self-check read */
    ph_limits limits;
    size_t mem_used;         /* bytes the allocator has handed out */
    long budget_left;        /* instructions left in the current call */
    int killed;              /* budget exceeded: no pcall in the script may go on */
    char kill_msg[256];      /* the stop's message, re-raised past every pcall */
    int depth;               /* nesting of ph_sb_call, for the budget reset */
    char traceback[2048];    /* filled by the message handler of the failing call */
    ph_registry *registry;
    ph_template *templates;
    int ntemplates;
    int base_ref;            /* the frozen environment every chunk's globals fall back to */
    int tools_ref;           /* the registry module's (frozen) value */
    int policies_ref;        /* table: policy file base name -> its value */
    struct ph_json *json;    /* tokenizer handle for snapshot decoding (script_json.c) */
    ph_policy policy;        /* policies/tiers.lua compiled (script_policy.c) */
    ph_cache_policy cache;   /* policies/cache.lua compiled (script_cache.c) */
    ph_batch_policy batch;   /* policies/batch.lua compiled (script_batch.c) */
    ph_ab_policy ab;         /* policies/ab.lua compiled (script_ab.c) */
    int snap_ref;            /* the last snapshot decoded by ph_sb_push_snapshot, frozen */
    char *snap_text;         /* ... the text it was decoded from (a copy) */
    size_t snap_len;
};

/* The generation that owns `L`. */
ph_gen *ph_sb_gen(lua_State *L);

/* Opens the sandbox in a fresh state: standard libraries, cjson, frozen base environment.
 * Returns 0, or -1 with `err` filled. */
int ph_sb_open(ph_gen *g, ph_error *err);

/* Pushes a fresh globals table for one chunk: empty, falling back to the frozen base. */
void ph_sb_push_env(lua_State *L);

/* Pushes a deep read-only view of the table at `idx` (the same view each time). */
void ph_sb_freeze(lua_State *L, int idx);

/* Compiles `text` as a text chunk named "@path" whose _ENV is a fresh chunk env; pushes the
 * function. Returns 0, or -1 with `err` filled (PH_ERR_SYNTAX with file:line). */
int ph_sb_load(ph_gen *g, const char *text, size_t len, const char *path, ph_error *err);

/* The one protected path into Lua. Stack: function, nargs arguments. Runs it with a fresh
 * instruction budget (unless nested) and a traceback handler. On success leaves `nresults`
 * results and returns 0; on failure leaves nothing, fills `err` (code, file:line message,
 * where, traceback; `what` names the call in messages that have no location) and returns -1. */
int ph_sb_call(ph_gen *g, int nargs, int nresults, const char *what, ph_error *err);

/* Runs require(name) from C, inside a protected call. Pushes the module's frozen value. */
int ph_sb_require(ph_gen *g, const char *name, ph_error *err);

/* Pushes the table behind a read-only view at `idx`, or the value itself if it is none. */
void ph_sb_unwrap(lua_State *L, int idx);

/* Compiles the registry table at `idx` (lua/tools.lua's value) into `r`, which the caller
 * owns and frees even when this fails. Raises a Lua error naming the bad entry, so it runs
 * inside ph_sb_call. Uses raw access only: no script code runs. */
void ph_registry_compile(lua_State *L, int idx, ph_registry *r);

/* luaL_error with the C library's printf (lua_pushfstring has no %g or %.Nf): formats into
 * a buffer, then raises it with the caller's position. Never returns. */
int ph_sb_raisef(lua_State *L, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Replaces string.find/match/gmatch/gsub with guards refusing patterns that could backtrack
 * for hours on their subject (sandbox_pattern.c). Call once, in the fresh state. */
void ph_sb_guard_patterns(lua_State *L);

/* Raises unless every key of the table at `idx` is a string listed in `known` (NULL
 * ended); `what` names the table in the message. */
void ph_sb_check_keys(lua_State *L, int idx, const char *const *known, const char *what);
int ph_sb_json_encode(lua_State *L); /* host.json_encode; contract in script_jsonenc.c */

/* Pushes the Lua value of JSON `text` (objects and arrays as tables, null as a NULL light
 * userdata, integers as integers). Returns 0, or -1 with "invalid JSON at byte N: ..." in
 * `msg` and nothing pushed. `*handle` is the generation's tokenizer slot. May raise a Lua
 * memory error, so it runs inside ph_sb_call. */
int ph_sb_push_json(lua_State *L, struct ph_json **handle, const char *text, size_t len,
                    char *msg, size_t msgsize);

/* Pushes a read-only view of snapshot `text` decoded, shared by consecutive calls with the
 * same text (a request's chain() and its validate hook per step decode it once). The one
 * entry is replaced when the text differs. Same errors as ph_sb_push_json. */
int ph_sb_push_snapshot(lua_State *L, ph_gen *g, const char *text, size_t len, char *msg, size_t msgsize);
void ph_sb_snapshot_free(ph_gen *g);

/* Pushes t[key] of the table at `idx` with any read-only view taken off; returns its type. */
int ph_sb_field(lua_State *L, int idx, const char *key);

/* Runs `trampoline` (inside ph_sb_call, file named `file` in messages) on the table that
 * policies/NAME.lua returned. Returns 1 when it ran, 0 when there is no such file (nothing
 * ran), -1 with `err` filled when it failed. */
int ph_sb_run_policy(ph_gen *g, const char *name, lua_CFunction trampoline, const char *file, ph_error *err);

/* Runs every policies/NAME.lua (each must return a table), keeps them by base name, and applies
 * policies/sandbox.lua's budgets. Returns 0, or -1 with `err` filled. */
int ph_policies_load(ph_gen *g, ph_error *err);

/* Runs every prompts/NAME.lua, checks each template table, renders its static part, and fills
 * g->templates. Returns 0, or -1 with `err` filled. */
int ph_templates_load(ph_gen *g, ph_error *err);
void ph_templates_free(ph_gen *g);

/* Compiles policies/tiers.lua (after the templates), or the defaults without it. */
int ph_tier_policy_load(ph_gen *g, ph_error *err);
void ph_tier_policy_free(ph_gen *g);

/* Reads t.options of the table at `idx` into *o (unset fields: NaN, -1, no stop strings);
 * raises naming `where` on a bad value. script_tmpl.c; templates and tiers use it. */
void ph_read_model_options(lua_State *L, int idx, ph_model_options *o, const char *where);

/* Compiles policies/ab.lua into g->ab (no experiment without it). */
int ph_ab_policy_load(ph_gen *g, ph_error *err);

/* Compiles policies/batch.lua into g->batch (defaults without it). */
int ph_batch_policy_load(ph_gen *g, ph_error *err);

/* Compiles policies/cache.lua into g->cache (the cache stays off without it). */
int ph_cache_policy_load(ph_gen *g, ph_error *err);
void ph_cache_policy_free(ph_gen *g);

#endif
