/* fuzz_snaphash — libFuzzer target for the perceptual snapshot hash (host/snaphash.h).
 *
 * Input: a 1-byte header, then the snapshot text. Header bit 0 picks the rule set:
 *   0  the set of the hardening brief, after policies/cache.lua: ignore t, agent and
 *      **.last_seen; quantise me.pos by 2 and enemies[].hp by 25; enemies is a set;
 *   1  the whole hash_rules table of policies/cache.lua, plus enemies[].pos relative to the
 *      anchor me.pos (so the anchor pass runs too).
 * What the header promises, and is checked (abort() on a broken promise):
 *   - the hash is the same with and without canonical text (the canonical buffer has no cap
 *     here, so it cannot fail), and so are ok and the error code;
 *   - ph_snaphash on the rules' own warm scratch (kept across inputs) and ph_snaphasher_run
 *     on a fresh hasher over the same rules give the same result ("same contract");
 *   - on failure canonical is left as it was; on success the canonical form is appended
 *     after what the buffer held, and it is compact JSON (a strict parse takes it whole);
 *   - "Canonical form (what is hashed)": with rule set 0 (no relative rules, integer and
 *     power-of-two steps, so cell borders are exact) the canonical text hashed again under
 *     the same rules gives the same hash. Skipped when it holds a number of magnitude 2^53
 *     or more, where floor(v / step) * step no longer lands exactly on its cell;
 *   - the canonical text hashed under empty (exact) rules succeeds, the same with and
 *     without canonical text.
 * Depends on snaphash, jsonstream, buf, error, libxxhash. */
#define FUZZ_NAME "fuzz_snaphash"
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "buf.h"
#include "error.h"
#include "jsonstream.h"
#include "snaphash.h"

#define PREFIX "prefix:"
#define PREFIX_LEN (sizeof PREFIX - 1)

static const ph_hash_rule BRIEF[] = {
    {"t", PH_HASH_IGNORE, 0}, {"agent", PH_HASH_IGNORE, 0}, {"**.last_seen", PH_HASH_IGNORE, 0},
    {"me.pos", PH_HASH_QUANTISE, 2}, {"enemies[].hp", PH_HASH_QUANTISE, 25},
    {"enemies", PH_HASH_SET, 0},
};

static const ph_hash_rule CACHE_LUA[] = {
    {"t", PH_HASH_IGNORE, 0}, {"agent", PH_HASH_IGNORE, 0}, {"**.last_seen", PH_HASH_IGNORE, 0},
    {"me.pos", PH_HASH_QUANTISE, 2}, {"player.pos", PH_HASH_QUANTISE, 4},
    {"enemies[].pos", PH_HASH_QUANTISE, 2}, {"pois[].pos", PH_HASH_QUANTISE, 2},
    {"me.hp", PH_HASH_QUANTISE, 20}, {"player.hp", PH_HASH_QUANTISE, 25},
    {"enemies[].hp", PH_HASH_QUANTISE, 25}, {"me.ammo", PH_HASH_QUANTISE, 10},
    {"me.morale", PH_HASH_QUANTISE, 0.25}, {"me.cooldowns", PH_HASH_QUANTISE, 5},
    {"enemies", PH_HASH_SET, 0}, {"pois", PH_HASH_SET, 0}, {"obstacles", PH_HASH_SET, 0},
    {"enemies[].pos", PH_HASH_RELATIVE, 0},
};

static ph_hash_rules *rules[2], *exact;

typedef struct scan {
    double max_abs;
} scan;

static int on_number(void *ctx, const ph_json_token *t)
{
    scan *s = ctx;
    if (t->kind == PH_JSON_NUMBER) {
        char num[64];
        size_t n = t->len < sizeof num - 1 ? t->len : sizeof num - 1;
        memcpy(num, t->text, n);
        num[n] = '\0';
        double v = fabs(strtod(num, NULL));
        if (t->len >= sizeof num - 1 || v > s->max_abs || isnan(v))
            s->max_abs = INFINITY;
    }
    return 0;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    ph_error err;
    rules[0] = ph_hash_rules_from(BRIEF, sizeof BRIEF / sizeof *BRIEF, NULL, &err);
    rules[1] = ph_hash_rules_from(CACHE_LUA, sizeof CACHE_LUA / sizeof *CACHE_LUA, "me.pos", &err);
    exact = ph_hash_rules_new();
    CHECK(rules[0] && rules[1] && exact);
    return 0;
}

typedef struct result {
    uint64_t hash;
    int ok;
    ph_code code;
} result;

static result hash_on(ph_hash_rules *r, ph_snaphasher *h, const char *s, size_t n, ph_buf *text)
{
    result res;
    ph_error err;
    res.hash = h ? ph_snaphasher_run(h, s, n, text, &err, &res.ok)
                 : ph_snaphash(r, s, n, text, &err, &res.ok);
    res.code = err.code;
    CHECK(res.ok ? res.code == PH_OK : res.code != PH_OK && res.hash == 0);
    return res;
}

static int same(result a, result b)
{
    return a.ok == b.ok && a.hash == b.hash && a.code == b.code;
}

/* The canonical text is one whole strict JSON value; returns the largest magnitude in it. */
static double check_canonical(const char *s, size_t n)
{
    scan sc = {0};
    ph_json *j = ph_json_new(NULL, on_number, &sc);
    CHECK(j != NULL);
    CHECK(ph_json_feed(j, s, n, NULL) == PH_JSON_OK && ph_json_finish(j) == PH_JSON_OK);
    ph_json_free(j);
    return sc.max_abs;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int set = size ? data[0] & 1 : 0;
    const char *json = size > 1 ? (const char *)data + 1 : "";
    size_t len = size > 1 ? size - 1 : 0;
    ph_hash_rules *r = rules[set];

    result plain = hash_on(r, NULL, json, len, NULL);
    ph_buf text;
    ph_buf_init(&text, (size_t)-1 / 2);
    CHECK(ph_buf_adds(&text, PREFIX) == 0);
    result with = hash_on(r, NULL, json, len, &text);
    CHECK(same(plain, with));
    CHECK(text.len >= PREFIX_LEN && memcmp(text.data, PREFIX, PREFIX_LEN) == 0);
    CHECK(with.ok ? text.len > PREFIX_LEN : text.len == PREFIX_LEN);

    ph_snaphasher *fresh = ph_snaphasher_new(r);
    CHECK(fresh != NULL);
    CHECK(same(plain, hash_on(r, fresh, json, len, NULL)));
    ph_snaphasher_free(fresh);

    if (with.ok) {
        const char *canon = text.data + PREFIX_LEN;
        size_t clen = text.len - PREFIX_LEN;
        double max_abs = check_canonical(canon, clen);
        if (set == 0 && max_abs < 9007199254740992.0) {
            result again = hash_on(r, NULL, canon, clen, NULL);
            if (!same(plain, again)) {
                fprintf(stderr, "fuzz_snaphash: the canonical text hashes differently "
                        "(%016llx, ok %d vs %016llx, ok %d)\n  canonical: %.*s\n",
                        (unsigned long long)plain.hash, plain.ok,
                        (unsigned long long)again.hash, again.ok, (int)(clen > 2000 ? 2000 : clen),
                        canon);
                abort();
            }
        }
        ph_buf text2;
        ph_buf_init(&text2, (size_t)-1 / 2);
        result e1 = hash_on(exact, NULL, canon, clen, NULL);
        result e2 = hash_on(exact, NULL, canon, clen, &text2);
        CHECK(e1.ok && same(e1, e2));
        check_canonical(text2.data, text2.len);
        ph_buf_free(&text2);
    }
    ph_buf_free(&text);
    return 0;
}
