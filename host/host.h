/* host.h — what the command line and the Lua bindings use beside the public API.
 * Gives access to the serving generation; the caller must not keep it past the next poll
 * or reload without taking a reference (ph_gen_retain). */
#ifndef PH_HOST_H
#define PH_HOST_H

#include "planhost.h"
#include "script.h"
#include "selfcheck.h"

ph_gen *ph_host_gen(ph_host *h);
const char *ph_host_root(const ph_host *h);

/* Reads the example snapshots the self-check uses (root/examples/snapshots). */
int ph_host_snapshots(const ph_host *h, ph_snapshot_set *set, ph_error *err);

/* Appends "a, b, c" — the names of the serving generation's templates — to `b`. */
void ph_host_template_names(ph_host *h, ph_buf *b);

#endif
