/* selfcheck — every template against every example snapshot. See selfcheck.h. */
#define _DEFAULT_SOURCE
#include "selfcheck.h"

#include <ctype.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tree.h"

#define MAX_SNAPSHOT (4u << 20)

static int cmp_files(const void *a, const void *b)
{
    return strcmp(((const ph_snapshot_file *)a)->name, ((const ph_snapshot_file *)b)->name);
}

static int add_snapshot(ph_snapshot_set *set, const char *dir, const char *fname, ph_error *err)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, fname);
    ph_snapshot_file *p = realloc(set->files, (size_t)(set->n + 1) * sizeof *p);
    if (!p)
        return ph_error_set(err, PH_ERR_MEMORY, "out of memory");
    set->files = p;
    ph_snapshot_file *f = &set->files[set->n];
    f->text = ph_read_file(path, MAX_SNAPSHOT, &f->len, err);
    if (!f->text)
        return -1;
    f->path = strdup(path);
    f->name = strndup(fname, strlen(fname) - 5);
    set->n++;
    return 0;
}

int ph_snapshots_read(const char *dir, ph_snapshot_set *set, ph_error *err)
{
    set->files = NULL;
    set->n = 0;
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    struct dirent *de;
    int rc = 0;
    while (rc == 0 && (de = readdir(d)) != NULL) {
        size_t n = strlen(de->d_name);
        if (de->d_name[0] != '.' && n > 5 && strcmp(de->d_name + n - 5, ".json") == 0)
            rc = add_snapshot(set, dir, de->d_name, err);
    }
    closedir(d);
    if (rc != 0) {
        ph_snapshots_free(set);
        return -1;
    }
    qsort(set->files, (size_t)set->n, sizeof *set->files, cmp_files);
    return 0;
}

void ph_snapshots_free(ph_snapshot_set *set)
{
    for (int i = 0; i < set->n; i++) {
        free(set->files[i].path);
        free(set->files[i].name);
        free(set->files[i].text);
    }
    free(set->files);
    set->files = NULL;
    set->n = 0;
}

size_t ph_utf8_chars(const char *s, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        n += ((unsigned char)s[i] & 0xC0) != 0x80;
    return n;
}

size_t ph_estimate_tokens(size_t chars)
{
    return (chars + 3) / 4;
}

static int word_char(char c)
{
    return isalnum((unsigned char)c) || c == '_';
}

int ph_names_word(const char *text, const char *word)
{
    size_t n = strlen(word);
    for (const char *p = strstr(text, word); p; p = strstr(p + 1, word))
        if ((p == text || !word_char(p[-1])) && !word_char(p[n]))
            return 1;
    return 0;
}

static int shows_shape(const char *text, int batch)
{
    return strstr(text, "\"plan_id\"") && strstr(text, "\"steps\"") && strstr(text, "\"act\"") &&
           (!batch || strstr(text, "\"agent_id\""));
}

/* Renders one row and checks it; returns 0 when it passes. */
static int check_row(ph_gen *g, const ph_template *t, const char *const *texts, const size_t *lens,
                     int n, const char *label, ph_check_fn fn, void *ud, ph_error *first, int *failed)
{
    ph_buf user;
    ph_buf_init(&user, PH_MAX_PROMPT);
    ph_error err;
    ph_error_clear(&err);
    ph_check_row row = {t, label, 0, 0, 0, t->ntools, 0, NULL};
    if (ph_gen_render_user(g, t, texts, lens, n, &user, &err) == 0) {
        const ph_registry *r = ph_gen_registry(g);
        const char *u = ph_buf_str(&user);
        row.chars = ph_utf8_chars(t->system, t->system_len) + ph_utf8_chars(u, user.len);
        row.tokens = ph_estimate_tokens(row.chars);
        const char *missing = NULL;
        for (int i = 0; i < t->ntools; i++) {
            const char *name = r->tools[t->tools[i]].name;
            if (ph_names_word(t->system, name) || ph_names_word(u, name))
                row.tools_named++;
            else if (!missing)
                missing = name;
        }
        row.shape_ok = shows_shape(t->system, t->batch) || shows_shape(u, t->batch);
        if (missing)
            ph_error_set(&err, PH_ERR_SELFCHECK, "%s: the prompt does not name tool '%s'", t->file, missing);
        else if (!row.shape_ok)
            ph_error_set(&err, PH_ERR_SELFCHECK, "%s: the prompt does not show the output shape", t->file);
    }
    ph_buf_free(&user);
    if (err.code != PH_OK) {
        row.error = &err;
        if (first && (*failed)++ == 0) {
            *first = err;
            ph_error_prefix(first, "self-check, %s against %s", t->name, label);
        }
    }
    if (fn)
        fn(ud, &row);
    return err.code != PH_OK;
}

int ph_check_generation(ph_gen *g, const ph_snapshot_set *set, ph_check_fn fn, void *ud, ph_error *first)
{
    int failed = 0, count = 0;
    const char **texts = calloc((size_t)(set->n ? set->n : 1), sizeof *texts);
    size_t *lens = calloc((size_t)(set->n ? set->n : 1), sizeof *lens);
    for (int i = 0; i < set->n; i++)
        texts[i] = set->files[i].text, lens[i] = set->files[i].len;
    for (int k = 0; k < ph_gen_ntemplates(g); k++) {
        const ph_template *t = ph_gen_template(g, k);
        if (t->batch && set->n > 0) {
            char label[64];
            snprintf(label, sizeof label, "(all %d)", set->n);
            count += check_row(g, t, texts, lens, set->n, label, fn, ud, first, &failed);
        }
        for (int i = 0; i < set->n; i++)
            count += check_row(g, t, &texts[i], &lens[i], 1, set->files[i].name, fn, ud, first, &failed);
    }
    free(texts);
    free(lens);
    return count;
}
