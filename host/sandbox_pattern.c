/* sandbox_pattern — a guard on Lua's pattern matching inside the sandbox.
 *
 * string.find/match/gmatch/gsub run their matcher in C, where the instruction budget cannot
 * stop them, and a pattern with several repetitions backtracks exponentially on a long
 * subject: ("a"):rep(30):find(("a*"):rep(30) .. "b") would hold the host for hours. The
 * guard counts the pattern's repetition items (x*, x+, x-; x? and %b are linear enough) and
 * refuses the call when len^k / k! — roughly the backtracking steps of k repetitions over a
 * len-byte subject — exceeds PATTERN_STEPS. One repetition is always allowed (linear for
 * practical purposes). The originals are replaced in the string library itself, so method
 * calls (s:find(...)) are guarded too. A plain find (4th argument true) is not a pattern.
 * Part of the script adapter. */
#include <math.h>
#include <string.h>

#include "script_internal.h"

#define PATTERN_STEPS 5e7

/* Repetition items of a Lua pattern (lstrlib's grammar: escapes, sets, %b, %f). */
static int repetitions(const char *p, size_t len)
{
    int k = 0;
    size_t i = p[0] == '^';
    while (i < len) {
        size_t start = i;
        if (p[i] == '%' && i + 1 < len) {
            if (p[i + 1] == 'b') {         /* %bxy: no repetition may follow */
                i += 4;
                continue;
            }
            if (p[i + 1] == 'f') {         /* %f[set]: a frontier, then its set */
                i += 2;
                start = i;
            } else {
                i += 2;
            }
        }
        if (start == i && p[i] == '[') {    /* a set: up to its closing bracket */
            i++;
            if (i < len && p[i] == '^')
                i++;
            if (i < len && p[i] == ']')
                i++;
            while (i < len && p[i] != ']')
                i += p[i] == '%' ? 2 : 1;
            i++;
        } else if (start == i) {
            i++;                           /* one character, '.', '(' or ')' */
        }
        if (i < len && (p[i] == '*' || p[i] == '+' || p[i] == '-'))
            k++, i++;
        else if (i < len && p[i] == '?')
            i++;
    }
    return k;
}

static int guarded(lua_State *L)
{
    size_t slen = 0, plen = 0;
    const char *s = lua_type(L, 1) == LUA_TSTRING ? lua_tolstring(L, 1, &slen) : NULL;
    const char *p = lua_type(L, 2) == LUA_TSTRING ? lua_tolstring(L, 2, &plen) : NULL;
    int plain = lua_tointeger(L, lua_upvalueindex(2)) == 1 && lua_toboolean(L, 4);
    if (s && p && !plain) {
        int k = repetitions(p, plen);
        double steps = k >= 2 ? exp((double)k * log((double)slen + 1) - lgamma((double)k + 1)) : 0;
        if (steps > PATTERN_STEPS)
            return ph_sb_raisef(L, "pattern '%.60s' has %d repetitions over a %zu-byte string: it could "
                                   "backtrack for hours (limit: length^reps/reps! <= %.0e); use fewer "
                                   "repetitions, a shorter string, or a plain find",
                                p, k, slen, PATTERN_STEPS);
    }
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
    return lua_gettop(L);
}

void ph_sb_guard_patterns(lua_State *L)
{
    static const char *const names[] = {"find", "match", "gmatch", "gsub", NULL};
    lua_getglobal(L, "string");
    for (int i = 0; names[i]; i++) {
        lua_getfield(L, -1, names[i]);
        lua_pushinteger(L, i == 0);        /* find: its 4th argument may say "plain" */
        lua_pushcclosure(L, guarded, 2);
        lua_setfield(L, -2, names[i]);
    }
    lua_pop(L, 1);
}
