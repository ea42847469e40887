/* lua_bind — what the Lua bindings share: the test-facing tables lua_planhost.c registers
 * under the planhost module, and the option-table check they all use. Includes lua.h; only
 * the lua_*.c bindings include it. */
#ifndef PH_LUA_BIND_H
#define PH_LUA_BIND_H

#include <lua.h>

int ph_lua_json_open(lua_State *L);     /* lua_json.c: the tokenizer's test-facing table */
int ph_lua_framing_open(lua_State *L);  /* lua_framing.c: the stream decoder's */
int ph_lua_cache_open(lua_State *L);    /* lua_cache.c: the plan cache's */
int ph_lua_snaphash_open(lua_State *L); /* lua_snaphash.c: the snapshot hash's */
int ph_lua_metrics_open(lua_State *L);  /* lua_metrics.c: the metrics unit's */

/* Raises "FN: unknown option 'K'" unless every key of the option table at `idx` (an absolute
 * index) is a string listed in `known` (NULL ended). lua_planhost.c. */
void ph_lua_check_keys(lua_State *L, int idx, const char *const *known, const char *fn);

#endif
