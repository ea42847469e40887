/* snapview — what validation needs to know about one world snapshot, compiled once.
 *
 * Built from the snapshot JSON (shared/DESIGN.md, "Formats") in one pass of the jsonstream
 * tokenizer, then read-only: the entity ids (enemies with whether they are alive, allies,
 * POIs that carry an id, the player's and the agent's own), whether a player is present, the
 * agent's position and the obstacle cells. Keys it does not use are skipped, and a section
 * of the wrong shape ("enemies": 5) counts as absent: the snapshot's defaults are the Lua
 * side's business (lua/snapshot.lua), this view only answers "does this exist".
 *
 * Entity ids may be written as integers or strings; they are compared in one canonical text
 * form (ph_entity_canon), so 3, 3.0, "3" and " 3 " are the same id.
 * Depends on jsonstream, buf and error; no Lua. */
#ifndef PH_SNAPVIEW_H
#define PH_SNAPVIEW_H

#include <stdbool.h>
#include <stddef.h>

#include "error.h"
#include "registry.h"

/* What an id names in a snapshot: PH_OF_ENEMY, PH_OF_PLAYER, PH_OF_SELF and PH_OF_ALLY of
 * registry.h, and these two of its own. */
enum {
    PH_SV_POI = 1u << 8,    /* a point of interest's `id` */
    PH_SV_DEAD = 1u << 9,   /* an enemy whose hp is 0 or less (no PH_OF_ENEMY bit then) */
};

/* Caps: a snapshot past them fails with PH_ERR_LIMIT. */
#define PH_SV_MAX_ENTITIES 4096
#define PH_SV_MAX_OBSTACLES 65536
#define PH_SV_MAX_ID 256     /* bytes of one canonical id; longer ids are never found */

typedef struct ph_snapview ph_snapview;

/* Compiles the snapshot `json[0..len)` (read during the call only). Returns a view the caller
 * owns (free with ph_snapview_free), or NULL with `err` filled: PH_ERR_JSON for malformed JSON
 * or a snapshot that is not an object (the message names the byte offset), PH_ERR_LIMIT past
 * a cap, PH_ERR_MEMORY when out of memory. */
ph_snapview *ph_snapview_new(const char *json, size_t len, ph_error *err);

/* Recompiles an existing view from another snapshot, keeping its memory (for a caller that
 * validates many requests). Same errors as ph_snapview_new; on error the view is empty. */
int ph_snapview_load(ph_snapview *s, const char *json, size_t len, ph_error *err);

void ph_snapview_free(ph_snapview *s);   /* NULL is fine */

/* What the id `id[0..len)` names: an OR of PH_OF_ENEMY (an alive enemy), PH_SV_DEAD (a dead
 * one), PH_OF_PLAYER (the literal "player" or the player's id, when a player is present),
 * PH_OF_SELF (the literal "self", the snapshot's `agent` or `me.id`), PH_OF_ALLY, PH_SV_POI;
 * 0 when nothing. `id` is canonicalised first, so any spelling ph_entity_canon accepts works. */
unsigned ph_snapview_lookup(const ph_snapview *s, const char *id, size_t len);

bool ph_snapview_has_player(const ph_snapview *s);

/* The agent's own id (canonical, NUL-terminated, owned by the view), or NULL when absent. */
const char *ph_snapview_agent(const ph_snapview *s);

/* The agent's position (me.pos): true and *x, *y set when the snapshot has one. */
bool ph_snapview_position(const ph_snapview *s, long long *x, long long *y);

/* Whether (x, y) is an obstacle cell. */
bool ph_snapview_obstacle(const ph_snapview *s, long long x, long long y);

/* How many ids the view holds of `kind` (one of PH_OF_ENEMY, PH_SV_DEAD, PH_OF_ALLY,
 * PH_SV_POI), and how many obstacle cells. For tests and reports. */
int ph_snapview_count(const ph_snapview *s, unsigned kind);
int ph_snapview_obstacles(const ph_snapview *s);

/* The value of the decimal number s[0..n): JSON's grammar, plus a leading '+' and spaces
 * around it (as ids and numbers in strings are written). Returns 0 with *out set, or -1
 * when it is no number or not finite. Plain integers are read without strtod. */
int ph_sv_number(const char *s, size_t n, double *out);

/* Writes the canonical form of an entity id to out (NUL-terminated) and returns its length:
 * surrounding ASCII spaces dropped; a number that is an integer of at most 2^53 (written as
 * JSON does, or with a leading '+') becomes its plain decimal digits ("3.0", "+3", "3e0" are
 * "3"); anything else stays as written. Returns -1 when the result is empty or does not fit
 * in `size` bytes. */
int ph_entity_canon(const char *id, size_t len, char *out, size_t size);

#endif
