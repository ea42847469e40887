/* tree — the script files of one generation, read from disk in one go.
 *
 * A generation is built from lua/ (recursively), prompts/ and policies/ under a root. tree
 * reads them all into memory at once, sorted by path, so a generation never touches the disk
 * after it loads and its content hash names exactly what it runs. The same walk, with stat
 * instead of read, gives the cheap signature that hot reload polls. Editor leftovers (names
 * starting with '.' or '#', ending in '~', or not ending in ".lua") are skipped.
 * Depends on libc and xxHash. */
#ifndef PH_TREE_H
#define PH_TREE_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

typedef struct ph_file {
    char *path;   /* relative to the root: "prompts/compact.lua" */
    char *text;   /* whole content, NUL-terminated */
    size_t len;
} ph_file;

typedef struct ph_tree {
    ph_file *files;   /* sorted by path */
    int nfiles;
    uint64_t hash;    /* XXH3 over every path and content, in order */
} ph_tree;

/* The folders a generation reads, in load order. */
extern const char *const ph_tree_dirs[3];

/* Reads every script file under `root` into `t` (which the caller frees with ph_tree_free).
 * Files bigger than `max_file` bytes are an error. Returns 0, or -1 with `err` filled. */
int ph_tree_read(const char *root, size_t max_file, ph_tree *t, ph_error *err);

/* The file at `path`, or NULL. */
const ph_file *ph_tree_find(const ph_tree *t, const char *path);

void ph_tree_free(ph_tree *t);

/* A hash of every script file's path, size, modification time and inode: changes when a
 * file is saved, added, removed or replaced by rename. Costs one stat per file. */
uint64_t ph_tree_signature(const char *root);

/* Reads one whole file into a malloc'd NUL-terminated buffer (caller frees); NULL with
 * `err` filled when it cannot be read or is bigger than `max` bytes. */
char *ph_read_file(const char *path, size_t max, size_t *len, ph_error *err);

#endif
