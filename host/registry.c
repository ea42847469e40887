/* registry — lookups over the compiled tool vocabulary. See registry.h. */
#include "registry.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *const type_names[PH_T_COUNT] = {
    "int", "uint", "float", "string", "entity", "position", "positions", "enum",
};

const char *ph_ptype_name(ph_ptype t)
{
    return (unsigned)t < PH_T_COUNT ? type_names[t] : NULL;
}

int ph_ptype_parse(const char *name)
{
    for (int i = 0; i < PH_T_COUNT; i++)
        if (strcmp(type_names[i], name) == 0)
            return i;
    return -1;
}

int ph_registry_find(const ph_registry *r, const char *name)
{
    for (int i = 0; i < r->ntools; i++)
        if (strcmp(r->tools[i].name, name) == 0)
            return i;
    return -1;
}

int ph_registry_find_nocase(const ph_registry *r, const char *name, size_t len)
{
    for (int i = 0; i < r->ntools; i++)
        if (strlen(r->tools[i].name) == len && strncasecmp(r->tools[i].name, name, len) == 0)
            return i;
    return -1;
}

const ph_subset *ph_registry_subset(const ph_registry *r, const char *name)
{
    for (int i = 0; i < r->nsubsets; i++)
        if (strcmp(r->subsets[i].name, name) == 0)
            return &r->subsets[i];
    return NULL;
}

static void free_tool(ph_tool *t)
{
    for (int p = 0; p < t->nparams; p++) {
        ph_param *pa = &t->params[p];
        for (int v = 0; v < pa->nvalues; v++)
            free(pa->values[v]);
        free(pa->values);
        free(pa->name);
    }
    free(t->params);
    free(t->name);
    free(t->group);
    free(t->desc);
}

void ph_registry_free(ph_registry *r)
{
    if (!r)
        return;
    for (int i = 0; i < r->ntools; i++)
        free_tool(&r->tools[i]);
    free(r->tools);
    for (int i = 0; i < r->nsubsets; i++) {
        free(r->subsets[i].name);
        free(r->subsets[i].tools);
    }
    free(r->subsets);
    free(r);
}
