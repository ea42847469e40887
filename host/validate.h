/* validate — checks canonical plan steps against the registry, a tier's tools, the snapshot
 * and the policy's limits.
 *
 * Input steps are what planparse emits (registry spelling of `act`, lowercase enums, numbers
 * as numbers, parameters in registry order), or cached plans that were once such steps.
 * Validation re-checks what it relies on rather than trusting it. A step is valid when:
 *   - `act` names a registry tool exactly, and that tool is among the tier's tools;
 *   - every required parameter is present (an optional one may be absent or null: Heal
 *     without target_id heals the agent itself); keys the tool does not have are ignored;
 *   - values have their registry type: int/uint are integers within 32 bits (uint >= 0),
 *     floats are numbers, strings are non-empty, enums are one of the registry's values as
 *     written there (lowercase), positions are {"x":int,"y":int}, positions are lists of
 *     them with at least min_items entries;
 *   - an entity names something the snapshot has, as the parameter's `of` mask allows:
 *     enemy = an alive enemy's id; player = "player" or the player's id, when a player is
 *     present; self = "self" or the agent's id; ally = an ally's id; any = any of those or a
 *     POI's id (ids compare canonically: 3 and "3" are one id);
 *   - coordinates are inside the bounds: int parameters named x / y, and the x and y of every
 *     position and waypoint;
 *   - floats named duration, radius, distance are > 0 and at most their caps;
 *   - no destination is an obstacle cell. Destinations are the x, y of a movement-group tool
 *     (MoveTo), every `position` parameter (TakeCover, SetAmbush, Regroup) and every waypoint.
 *     Targets of throws and area attacks (ThrowSmoke, AoEAttack, ...) may be obstacle cells.
 * Reasons name the tool first: "Attack: target_id 7 is not an enemy in the snapshot".
 * No Lua, no network. Depends on jsonstream, buf, error, registry and snapview. */
#ifndef PH_VALIDATE_H
#define PH_VALIDATE_H

#include <stddef.h>

#include "buf.h"
#include "error.h"
#include "registry.h"
#include "snapview.h"

/* What a policy may tighten or loosen; ph_validate_limits_default gives the defaults. */
typedef struct ph_validate_limits {
    int min_x, min_y, max_x, max_y;  /* inclusive bounds of every coordinate; -1000..1000 */
    double max_duration;             /* seconds; 30 */
    double max_radius;               /* cells; 50 */
    double max_distance;             /* cells; 100 */
    int max_steps;                   /* steps kept per plan; 8 */
} ph_validate_limits;

/* A buffer this size holds any reason the validator writes (longer ones are cut). */
#define PH_VALIDATE_REASON 256
/* Positions read per step (waypoints past this make the step invalid). */
#define PH_VALIDATE_MAX_POINTS 64

ph_validate_limits ph_validate_limits_default(void);

/* Checks one step object `step_json[0..len)` (read during the call only). `tools[0..ntools)`
 * are the registry indexes the tier may use (NULL: every tool). `lim` NULL means the
 * defaults. Returns 0 when the step is valid; -1 with the reason written to `reason`
 * (NUL-terminated, cut to reason_size; reason may be NULL) when it is not, malformed JSON
 * included. Every pointer is borrowed for the call. */
int ph_validate_step(const ph_registry *r, const int *tools, int ntools, const ph_snapview *s,
                     const ph_validate_limits *lim, const char *step_json, size_t len,
                     char *reason, size_t reason_size);

/* Called once per dropped step, in order: `index` is the step's position in the array given
 * to ph_validate_plan (from 0), `reason` is valid during the call only. */
typedef void (*ph_validate_drop_fn)(void *ud, int index, const char *reason);

/* Validates the steps array `steps_json[0..len)` (a JSON array of step objects), one
 * tokenizer pass over it. Appends the kept steps to `kept` as a JSON array ("[...]", each
 * step byte for byte as given, "[]" when none) and calls `on_drop` (may be NULL) for each
 * dropped step: invalid ones, elements that are not objects, and valid steps past
 * lim->max_steps ("plan: over the cap of 8 steps"). Returns the number of steps kept (0: no
 * valid step, which the caller treats as an invalid plan), or -1 with `err` filled and
 * `kept` as it was: PH_ERR_JSON when the text is not a JSON array (the message names the
 * byte offset), PH_ERR_LIMIT when `kept` reached its cap, PH_ERR_MEMORY. */
int ph_validate_plan(const ph_registry *r, const int *tools, int ntools, const ph_snapview *s,
                     const ph_validate_limits *lim, const char *steps_json, size_t len,
                     ph_buf *kept, ph_validate_drop_fn on_drop, void *ud, ph_error *err);

#endif
