/* cli_lua — `planhost lua SCRIPT [ARGS]`: a plain Lua 5.4 interpreter with the planhost
 * module built in (package.preload), so a sanitizer build of planhost can run the whole
 * busted suite in one instrumented process (busted --lua="build/asan/planhost lua").
 * Sets `arg` as lua.c does; errors print a traceback and exit 1. */
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <stdio.h>

int luaopen_planhost(lua_State *L);

static int traceback(lua_State *L)
{
    luaL_traceback(L, L, luaL_tolstring(L, 1, NULL), 1);
    return 1;
}

static int run(lua_State *L, int argc, char **argv)
{
    luaL_openlibs(L);
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
    lua_pushcfunction(L, luaopen_planhost);
    lua_setfield(L, -2, "planhost");
    lua_pop(L, 1);
    lua_createtable(L, argc, 1);
    for (int i = 0; i < argc; i++) {
        lua_pushstring(L, argv[i]);
        lua_rawseti(L, -2, i);
    }
    lua_setglobal(L, "arg");
    lua_pushcfunction(L, traceback);
    if (luaL_loadfile(L, argv[0]) != LUA_OK) {
        fprintf(stderr, "planhost lua: %s\n", lua_tostring(L, -1));
        return 1;
    }
    for (int i = 1; i < argc; i++)
        lua_pushstring(L, argv[i]);
    if (lua_pcall(L, argc - 1, 0, 1) != LUA_OK) {
        fprintf(stderr, "planhost lua: %s\n", lua_tostring(L, -1));
        return 1;
    }
    return 0;
}

int ph_cli_lua(int argc, char **argv)
{
    if (argc < 1) {
        fputs("usage: planhost lua SCRIPT [ARGS...]\n", stderr);
        return 2;
    }
    lua_State *L = luaL_newstate();
    if (!L)
        return 1;
    int rc = run(L, argc, argv);
    lua_close(L);
    return rc;
}
