/* snaphash — the perceptual snapshot hash: the plan cache's key.
 *
 * A 64-bit hash of a world snapshot (JSON text) that stays the same when the world has not
 * changed in a way that matters and changes when it has. What matters is said by rules, each
 * naming a field path; the lead compiles them from policies/cache.lua (`hash_rules`). The hash
 * is computed in one pass of the jsonstream tokenizer straight over the JSON text (two passes
 * when relative rules exist, the first stopping at the anchor); no tree is built.
 *
 * Canonical form (what is hashed). Every value no rule mentions counts exactly:
 *   - object members are unordered: {"a":1,"b":2} == {"b":2,"a":1};
 *   - numbers are compared as IEEE doubles: 3 == 3.0 == 30e-1, -0 == 0 (integers beyond 2^53
 *     collapse like they do in Lua or JavaScript);
 *   - strings compare after unescaping: "A" == "\u0041";
 *   - arrays are ordered, unless a SET rule names them;
 *   - null, true, false, numbers, strings, objects and arrays never hash equal to each other.
 *
 * Rule paths. A path is parts separated by '.', each part a key, '*' or '**', optionally
 * followed by one or more "[]":
 *     me.pos            member pos of member me of the top-level object
 *     enemies[].hp      member hp of every element of the array enemies
 *     grid[][]          every element of every element of grid
 *     *.last_seen       last_seen one level down (me.last_seen, player.last_seen); '*' is any
 *                       one object key and does not step into arrays
 *     **.last_seen      last_seen at any depth, top level and inside arrays included; '**' is
 *                       zero or more steps of any kind (keys and array elements)
 *     [].x              a leading "[]" addresses the elements of a top-level array
 *     cooldowns.throw\.smoke   '\' escapes one of . [ ] * \ inside a key
 * Errors (ph_hash_rules_add returns -1, PH_ERR_ARG): an empty path or empty key ("a..b",
 * ".a", "a."), "[" not followed by "]", a stray "]", '*' inside a key ("a*"), "***", a
 * dangling or unknown escape, "[]" after a dot ("a.[]"), more than PH_HASH_MAX_SEGS parts.
 *
 * Rule kinds:
 *   QUANTISE step  numbers at the path, and every number inside the value at the path (so
 *                  me.pos quantises x and y), count as floor(v / step): cells [k*step,
 *                  (k+1)*step). Two values in one cell hash equal however close to its border
 *                  they are; values either side of a border differ however close they are
 *                  (2 and 3.99 are one cell with step 2; 3.99 and 4 are not). Step 0 means
 *                  exact (useful to override a coarser rule above). Borders are exact for
 *                  integer and power-of-two steps; for other steps (0.1) a value written on
 *                  a border may fall either side, as floating point divides it. When several
 *                  quantise rules reach a number, the one with more literal parts (keys and
 *                  "[]"; '*' and '**' count 0) wins, then the one matching deeper, then the
 *                  finest step: with "**" = 1 and "me.pos" = 4, me.pos.x uses 4.
 *   IGNORE         the value at the path (and its member key, or its array slot) is left out.
 *                  Ignore wins over every other rule.
 *   SET            the array at the path is a multiset: elements are hashed (with the rules
 *                  inside them applied), the element hashes sorted, then combined, so element
 *                  order does not matter (duplicates still count). No effect on non-arrays.
 *   RELATIVE       the object at the path is a position: its number members x, y, z become
 *                  (v - anchor.v) before quantisation, for each axis the anchor has. The anchor
 *                  (default "me.pos", see ph_hash_rules_anchor) is read first; when it matches
 *                  a relative rule itself it becomes {x:0, y:0}. With no anchor in the snapshot
 *                  relative rules do nothing. Exact (unquantised) relative values stay
 *                  translation-invariant only for integer coordinates; use a step otherwise.
 *
 * The hash also covers the rules themselves (ph_hash_rules_fingerprint): changing the rules
 * changes every hash, so old cache entries miss instead of matching under other rules. Hash
 * values are stable for one build on one platform (byte order), not a persistent format.
 *
 * Threads: a ph_hash_rules is built by one thread, then read-only. ph_snaphash uses a scratch
 * hasher kept inside the rules, so calls on one rules object must not overlap; to hash on
 * several threads give each a ph_snaphasher over the shared rules. Warm calls allocate nothing:
 * scratch is kept, and grows only for a snapshot bigger or of a new shape (a path the hasher's
 * automaton has not stepped through before) than any before.
 * Implemented in snaphash.c (the hashing pass) and snaphash_rules.c (paths, rules, automaton).
 * Depends on jsonstream, buf, error and libxxhash (XXH3_64bits). No Lua. */
#ifndef PH_SNAPHASH_H
#define PH_SNAPHASH_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "error.h"

typedef enum ph_hash_kind {
    PH_HASH_QUANTISE,   /* step >= 0, finite; 0 = exact */
    PH_HASH_IGNORE,     /* step unused */
    PH_HASH_SET,        /* step unused */
    PH_HASH_RELATIVE,   /* step unused */
} ph_hash_kind;

#define PH_HASH_MAX_SEGS 32      /* parts of one path ("[]" counts as one) */
#define PH_HASH_MAX_RULES 1024

/* One rule as plain data, for ph_hash_rules_from. */
typedef struct ph_hash_rule {
    const char *path;
    ph_hash_kind kind;
    double step;
} ph_hash_rule;

typedef struct ph_hash_rules ph_hash_rules;

/* An empty rule set (everything hashed exactly; anchor "me.pos"). NULL when out of memory.
 * The caller owns it and frees it with ph_hash_rules_free. */
ph_hash_rules *ph_hash_rules_new(void);

/* Frees the rules and their scratch hasher. NULL is fine. Hashers made by ph_snaphasher_new
 * must be freed first. */
void ph_hash_rules_free(ph_hash_rules *r);

/* Adds one rule; `path` is copied. Returns 0, or -1 with err filled: PH_ERR_ARG for a bad
 * path (the message quotes it and names the byte), a bad step or kind, PH_ERR_LIMIT past
 * PH_HASH_MAX_RULES, PH_ERR_MEMORY. On -1 the rules are unchanged. */
int ph_hash_rules_add(ph_hash_rules *r, const char *path, ph_hash_kind kind, double step,
                      ph_error *err);

/* Sets the anchor of relative rules: a plain dotted path of keys (no '*', '**' or "[]"),
 * copied. Returns 0, or -1 with PH_ERR_ARG (rules unchanged). */
int ph_hash_rules_anchor(ph_hash_rules *r, const char *path, ph_error *err);

/* Builds rules from n plain rules and an anchor (NULL = "me.pos"). Returns NULL with err
 * filled (the message names the failing rule) when one is rejected. */
ph_hash_rules *ph_hash_rules_from(const ph_hash_rule *list, size_t n, const char *anchor,
                                  ph_error *err);

/* A hash of the rule set, independent of the order rules were added in; mixed into every
 * snapshot hash. */
uint64_t ph_hash_rules_fingerprint(const ph_hash_rules *r);

/* Hashes the snapshot json[0..len) (any JSON value; read during the call only) under r.
 * When canonical is not NULL the canonical form is appended to it: compact JSON with ignored
 * fields left out, quantised numbers written as their cell's lower bound (floor(v/step)*step,
 * so hp 63 with step 10 shows 60), relative positions shifted, object keys in byte order
 * and set elements in hash order (the order they are combined in). Hash and text come from the
 * same pass, and the hash is the same whether or not the text is asked for.
 * Returns the hash with *ok = 1, or 0 with *ok = 0 and err filled: PH_ERR_JSON for malformed
 * JSON ("snapshot: invalid JSON at byte N: ..."), PH_ERR_LIMIT when canonical reached its cap
 * or the snapshot is too big for the scratch caps, PH_ERR_MEMORY. canonical is left as it was
 * on failure. err and ok may be NULL. Uses r's own scratch: see "Threads" above. */
uint64_t ph_snaphash(ph_hash_rules *r, const char *json, size_t len, ph_buf *canonical,
                     ph_error *err, int *ok);

/* A hasher of its own over shared read-only rules, for one thread. r must outlive it. NULL
 * when out of memory. */
typedef struct ph_snaphasher ph_snaphasher;
ph_snaphasher *ph_snaphasher_new(const ph_hash_rules *r);
void ph_snaphasher_free(ph_snaphasher *h);   /* NULL is fine */

/* ph_snaphash on the hasher's own scratch; same contract. */
uint64_t ph_snaphasher_run(ph_snaphasher *h, const char *json, size_t len, ph_buf *canonical,
                           ph_error *err, int *ok);

#endif
