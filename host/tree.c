/* tree — read and fingerprint a generation's script files. See tree.h. */
#define _DEFAULT_SOURCE
#include "tree.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <xxhash.h>

#include "buf.h"

const char *const ph_tree_dirs[3] = {"lua", "policies", "prompts"};

#define MAX_DEPTH 8

/* Called for each script file found: `rel` is relative to the root. */
typedef int (*visit_fn)(void *ud, const char *abs, const char *rel, const struct stat *st);

static int is_script_name(const char *name)
{
    size_t n = strlen(name);
    if (name[0] == '.' || name[0] == '#' || n < 5 || name[n - 1] == '~')
        return 0;
    return strcmp(name + n - 4, ".lua") == 0;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Lists a directory's entry names, sorted, so walks are deterministic. */
static char **list_dir(const char *abs, int *count)
{
    DIR *d = opendir(abs);
    *count = 0;
    if (!d)
        return NULL;
    char **names = NULL;
    int n = 0, size = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if (n == size) {
            size = size ? size * 2 : 16;
            char **p = realloc(names, (size_t)size * sizeof *p);
            if (!p)
                break;
            names = p;
        }
        names[n++] = strdup(de->d_name);
    }
    closedir(d);
    qsort(names, (size_t)n, sizeof *names, cmp_names);
    *count = n;
    return names;
}

static int walk(const char *root, const char *rel, int recurse, int depth, visit_fn fn, void *ud)
{
    char abs[4096];
    snprintf(abs, sizeof abs, "%s/%s", root, rel);
    int n, rc = 0;
    char **names = list_dir(abs, &n);
    for (int i = 0; i < n; i++) {
        char crel[2048], cabs[4096];
        struct stat st;
        snprintf(crel, sizeof crel, "%s/%s", rel, names[i]);
        snprintf(cabs, sizeof cabs, "%s/%s", root, crel);
        if (rc == 0 && names[i][0] != '.' && stat(cabs, &st) == 0) {
            if (S_ISDIR(st.st_mode) && recurse && depth < MAX_DEPTH)
                rc = walk(root, crel, recurse, depth + 1, fn, ud);
            else if (S_ISREG(st.st_mode) && is_script_name(names[i]))
                rc = fn(ud, cabs, crel, &st);
        }
        free(names[i]);
    }
    free(names);
    return rc;
}

static int walk_tree(const char *root, visit_fn fn, void *ud)
{
    for (int i = 0; i < 3; i++) {
        int rc = walk(root, ph_tree_dirs[i], strcmp(ph_tree_dirs[i], "lua") == 0, 0, fn, ud);
        if (rc)
            return rc;
    }
    return 0;
}

char *ph_read_file(const char *path, size_t max, size_t *len, ph_error *err)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        ph_error_set(err, PH_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    ph_buf b;
    ph_buf_init(&b, max);
    char chunk[65536];
    size_t n;
    int bad = 0;
    while (!bad && (n = fread(chunk, 1, sizeof chunk, f)) > 0)
        bad = ph_buf_add(&b, chunk, n) != 0;
    int rerr = ferror(f);
    fclose(f);
    if (bad || rerr) {
        ph_buf_free(&b);
        if (bad)
            ph_error_set(err, PH_ERR_LIMIT, "%s: file is larger than %zu bytes", path, max);
        else
            ph_error_set(err, PH_ERR_IO, "%s: read error", path);
        return NULL;
    }
    if (len)
        *len = b.len;
    return ph_buf_take(&b);
}

typedef struct reader {
    ph_tree *t;
    size_t max_file;
    ph_error *err;
    int size;
} reader;

static int read_one(void *ud, const char *abs, const char *rel, const struct stat *st)
{
    (void)st;
    reader *r = ud;
    ph_tree *t = r->t;
    if (t->nfiles == r->size) {
        r->size = r->size ? r->size * 2 : 32;
        ph_file *p = realloc(t->files, (size_t)r->size * sizeof *p);
        if (!p)
            return ph_error_set(r->err, PH_ERR_MEMORY, "out of memory reading %s", rel);
        t->files = p;
    }
    ph_file *f = &t->files[t->nfiles];
    f->text = ph_read_file(abs, r->max_file, &f->len, r->err);
    if (!f->text)
        return -1;
    f->path = strdup(rel);
    t->nfiles++;
    return 0;
}

int ph_tree_read(const char *root, size_t max_file, ph_tree *t, ph_error *err)
{
    memset(t, 0, sizeof *t);
    reader r = {t, max_file, err, 0};
    if (walk_tree(root, read_one, &r) != 0) {
        ph_tree_free(t);
        return -1;
    }
    XXH3_state_t *s = XXH3_createState();
    XXH3_64bits_reset(s);
    for (int i = 0; i < t->nfiles; i++) {
        XXH3_64bits_update(s, t->files[i].path, strlen(t->files[i].path) + 1);
        XXH3_64bits_update(s, t->files[i].text, t->files[i].len);
    }
    t->hash = XXH3_64bits_digest(s);
    XXH3_freeState(s);
    return 0;
}

const ph_file *ph_tree_find(const ph_tree *t, const char *path)
{
    for (int i = 0; i < t->nfiles; i++)
        if (strcmp(t->files[i].path, path) == 0)
            return &t->files[i];
    return NULL;
}

void ph_tree_free(ph_tree *t)
{
    for (int i = 0; i < t->nfiles; i++) {
        free(t->files[i].path);
        free(t->files[i].text);
    }
    free(t->files);
    t->files = NULL;
    t->nfiles = 0;
}

static int sign_one(void *ud, const char *abs, const char *rel, const struct stat *st)
{
    (void)abs;
    uint64_t fields[5] = {
        (uint64_t)st->st_size, (uint64_t)st->st_mtim.tv_sec, (uint64_t)st->st_mtim.tv_nsec,
        (uint64_t)st->st_ino, (uint64_t)st->st_dev,
    };
    XXH3_64bits_update(ud, rel, strlen(rel) + 1);
    XXH3_64bits_update(ud, fields, sizeof fields);
    return 0;
}

uint64_t ph_tree_signature(const char *root)
{
    XXH3_state_t *s = XXH3_createState();
    XXH3_64bits_reset(s);
    walk_tree(root, sign_one, s);
    uint64_t h = XXH3_64bits_digest(s);
    XXH3_freeState(s);
    return h;
}
