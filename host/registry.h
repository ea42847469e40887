/* registry — the tool vocabulary as C tables.
 *
 * Compiled once per script generation from lua/tools.lua (by the script adapter) and then
 * read-only: validation, JSON-schema building and prompt checks use it without touching Lua.
 * Every string is owned by the registry and lives as long as it does. No dependencies. */
#ifndef PH_REGISTRY_H
#define PH_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>

typedef enum ph_ptype {
    PH_T_INT, PH_T_UINT, PH_T_FLOAT, PH_T_STRING,
    PH_T_ENTITY, PH_T_POSITION, PH_T_POSITIONS, PH_T_ENUM,
    PH_T_COUNT
} ph_ptype;

/* Which entities an `entity` parameter may name (bit mask). */
enum {
    PH_OF_ENEMY = 1, PH_OF_PLAYER = 2, PH_OF_SELF = 4, PH_OF_ALLY = 8, PH_OF_ANY = 16,
};

typedef struct ph_param {
    char *name;
    ph_ptype type;
    bool optional;
    char **values;     /* enum values, lowercase; NULL unless type is PH_T_ENUM */
    int nvalues;
    int min_items;     /* for positions; 0 when unset */
    unsigned of;       /* PH_OF_* mask for entity parameters */
} ph_param;

typedef struct ph_tool {
    char *name;        /* PascalCase, as the model must write it */
    char *group;
    double cooldown;   /* seconds; 0 for none */
    char *desc;
    ph_param *params;
    int nparams;
} ph_tool;

typedef struct ph_subset {
    char *name;
    int *tools;        /* indexes into ph_registry.tools */
    int ntools;
} ph_subset;

typedef struct ph_registry {
    ph_tool *tools;
    int ntools;
    ph_subset *subsets;
    int nsubsets;
} ph_registry;

/* The type's name as lua/tools.lua spells it ("int", "enum", ...); NULL when out of range. */
const char *ph_ptype_name(ph_ptype t);

/* Parses a type name; returns -1 when unknown. */
int ph_ptype_parse(const char *name);

/* Index of the tool named exactly `name`, or -1. */
int ph_registry_find(const ph_registry *r, const char *name);

/* Index of the tool whose name matches `name` ignoring ASCII case, or -1. */
int ph_registry_find_nocase(const ph_registry *r, const char *name, size_t len);

/* The subset called `name`, or NULL. */
const ph_subset *ph_registry_subset(const ph_registry *r, const char *name);

/* Frees everything the registry owns, and the registry itself. NULL is fine. */
void ph_registry_free(ph_registry *r);

#endif
