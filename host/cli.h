/* cli.h — what the command's files share: parsed options and small helpers. */
#ifndef PH_CLI_H
#define PH_CLI_H

#include "planhost.h"

typedef struct opts {
    const char *root, *tmpl, *api, *model, *url, *file;
    const char *timeout, *record, *chunk, *snapshot, *cache_file;
    const char *headers[PH_MAX_HEADERS + 1];   /* every --header, NULL-terminated */
    int nheaders;
    int body, watch, pretty, metrics, no_cache;
    const char *files[256];      /* every non-option argument; file is the first */
    int nfiles;
} opts;

/* Parses the options every command shares; a non-option argument becomes o->file. Prints
 * the problem and returns -1 on a bad option. */
int ph_cli_parse_opts(int argc, char **argv, opts *o);
void ph_cli_print_error(const ph_error *err);
/* Parses option `name`'s value v as a whole number from lo to hi into *out: 0, or -1 after
 * printing "CMD: NAME wants a number from LO to HI, not 'V'". */
int ph_cli_number(const char *cmd, const char *name, const char *v, long lo, long hi, long *out);
/* Adds one --header line; prints the problem and returns -1 past PH_MAX_HEADERS. */
int ph_cli_add_header(opts *o, const char *line);
/* Opens a host on o->root with o's server settings (and "Authorization: Bearer $PLANHOST_API_KEY"
 * when that variable is set); prints the error and returns NULL. */
ph_host *ph_cli_open_host(const opts *o, int watch);

int ph_cli_plan(opts *o);                /* cli_plan.c */
int ph_cli_parse(opts *o);               /* cli_plan.c */
int ph_cli_batch(opts *o);               /* cli_plan.c */
int ph_cli_lua(int argc, char **argv);   /* cli_lua.c */
int ph_sim_main(int argc, char **argv);  /* sim.c: the simulated model server */

#endif
