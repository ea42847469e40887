/* script — the Lua adapter: script generations, the sandbox, budgets, templates.
 *
 * A generation is one fresh lua_State that has loaded lua/, policies/ and prompts/ from an
 * in-memory ph_tree. Scripts run in an allow-listed, frozen environment with an instruction
 * budget per call and a memory cap per generation (policies/sandbox.lua). Every call into
 * Lua goes through one protected helper that turns failure into a ph_error with file:line and
 * a traceback. Hooks and templates are resolved once at load and every value coming back is
 * checked. Generations are reference-counted: a request holds the one it started on while a
 * reload swaps in the next. This is the only unit besides the bindings that includes lua.h.
 * Not thread-safe: one thread uses a generation at a time. */
#ifndef PH_SCRIPT_H
#define PH_SCRIPT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "error.h"
#include "registry.h"
#include "tree.h"
#include "validate.h"

typedef struct ph_gen ph_gen;

/* Sandbox budgets (policies/sandbox.lua may change them; these are the defaults). */
#define PH_DEFAULT_INSTRUCTIONS 5000000L      /* VM instructions per call into Lua */
#define PH_DEFAULT_MEMORY (64u << 20)         /* bytes per generation */
#define PH_MAX_SCRIPT_FILE (1u << 20)         /* bytes per script file */
#define PH_MAX_PROMPT (256u << 10)            /* bytes per rendered prompt part */

/* Generation options a template may set for the model; a field the template leaves out is
 * "unset" (NaN for doubles, -1 for integers, nstop 0). */
typedef struct ph_model_options {
    double temperature, top_p;
    long top_k, seed, num_predict, num_ctx;
    char **stop;
    int nstop;
} ph_model_options;

/* Every field unset (a zeroed struct would mean temperature 0). */
static inline ph_model_options ph_model_options_unset(void)
{
    ph_model_options o = {0};
    o.temperature = o.top_p = __builtin_nan("");
    o.top_k = o.seed = o.num_predict = o.num_ctx = -1;
    return o;
}

typedef struct ph_template {
    char *name;          /* "compact" */
    char *file;          /* "prompts/compact.lua" */
    char *system;        /* the static part, rendered once at load */
    size_t system_len;
    int *tools;          /* registry indexes of its tool subset, in template order */
    int ntools;
    bool schema;         /* ask the server for structured output */
    bool batch;          /* user() takes an array of snapshots */
    ph_model_options options;
    int user_ref;        /* Lua registry refs, private to the adapter */
    int ctx_ref;
} ph_template;

typedef enum ph_tier_kind { PH_TIER_LLM, PH_TIER_HEURISTIC, PH_TIER_EMERGENCY } ph_tier_kind;

/* One tier of policies/tiers.lua, checked at load. */
typedef struct ph_tier {
    char *name;
    ph_tier_kind kind;
    int tmpl;                /* LLM tiers: index into the generation's templates */
    long first_byte_ms;      /* 0: none */
    long total_ms;           /* 0: only the request's budget */
    int accept_partial;      /* a partial plan from this tier is delivered */
    int min_partial_steps;   /* ... when it has at least this many valid steps */
    char *model;             /* NULL: the endpoint's model */
    char *endpoint;          /* endpoint group; NULL: "default" */
    long max_tokens;         /* -1: the template's num_predict */
    int schema;              /* -1: the template's choice; 0 off; 1 on */
    ph_model_options options;    /* set fields override the template's (temperature, ...) */
} ph_tier;

/* A tier with every setting at its default (no template, whole partial plans accepted from
 * one step, the template's tokens, schema and options); `name` is borrowed as given. */
static inline ph_tier ph_tier_default(char *name, ph_tier_kind kind, int tmpl)
{
    ph_tier t = {.name = name, .kind = kind, .tmpl = tmpl, .accept_partial = 1, .min_partial_steps = 1,
                 .max_tokens = -1, .schema = -1, .options = ph_model_options_unset()};
    return t;
}

typedef struct ph_circuit_policy {
    int window, min_requests, close_after;
    double open_ratio;
    long cooldown_ms;
    int health_check;       /* after the cool-down a GET to the server's health path, not a
                               real request, decides whether it is half open */
} ph_circuit_policy;

/* policies/tiers.lua compiled; defaults when the file is absent. */
typedef struct ph_policy {
    ph_tier *tiers;
    int ntiers;
    int budget_ms;
    int latency_window;
    int connect_retries;
    ph_circuit_policy circuit;
    ph_validate_limits limits;       /* policies/validate.lua */
    int chain_ref, on_failure_ref;   /* Lua refs, private to the adapter (LUA_NOREF: none) */
    int provisional;                 /* provisional = true: a heuristic plan at once */
    int provisional_ref;             /* provisional = function(ctx) (LUA_NOREF: none) */
    int validate_ref;                /* policies/validate.lua's validate(step, snapshot) */
} ph_policy;

/* What chain() and on_failure() see besides the snapshot. */
typedef struct ph_chain_ctx {
    const char *snapshot;            /* JSON text */
    size_t snapshot_len;
    const char *game;                /* JSON object the game passed along, or NULL */
    long budget_ms;                  /* time left */
    const double *median, *p95;      /* per tier of the policy, NAN when no data */
    const int *samples;
    const char *const *circuit_names;   /* endpoint URLs */
    const char *const *circuit_states;  /* "closed", "open" or "half_open" */
    int ncircuits;
} ph_chain_ctx;

typedef struct ph_limits {
    long instructions;
    size_t memory;
} ph_limits;

/* policies/cache.lua compiled. Without the file, or with enabled = false, the cache is off
 * (rules NULL). */
struct ph_hash_rules;
typedef struct ph_cache_policy {
    int enabled;                 /* the file exists and does not say enabled = false */
    int store_llm;               /* keep plans from LLM tiers (default yes) */
    int store_heuristic;         /* keep plans from the heuristic tier (default no) */
    int coalesce;                /* identical requests in flight share one answer */
    struct ph_hash_rules *rules; /* owned by the generation; NULL when the cache is off */
} ph_cache_policy;

/* policies/batch.lua compiled. */
#define PH_MAX_BATCH 32
typedef struct ph_batch_policy {
    int max_wait_ms;             /* the longest a request waits for others to join */
    int max_size;                /* 1..PH_MAX_BATCH */
    int size_ref;                /* batch_size(queue, stats); a Lua ref, private to the adapter */
} ph_batch_policy;

/* policies/ab.lua compiled: a live experiment. */
#define PH_AB_MAX_ARMS 8
typedef struct ph_ab_arm {
    char name[64];
    int tier;                    /* the LLM tier the arm puts first */
    double share;
} ph_ab_arm;
typedef struct ph_ab_policy {
    int enabled;
    char name[128];
    ph_ab_arm arms[PH_AB_MAX_ARMS];  /* in name order */
    int narms;
    int arm_ref;                 /* arm(agent_id), a Lua ref private to the adapter */
} ph_ab_policy;

/* Loads a generation from `tree`, which moves into the generation (on return *tree is
 * empty, success or not). Returns a generation with one reference, or NULL with `err`
 * filled: syntax errors and runtime errors carry file:line. */
ph_gen *ph_gen_load(ph_tree *tree, unsigned id, ph_error *err);

void ph_gen_retain(ph_gen *g);
/* Drops a reference; the last one closes the lua_State and frees everything. NULL is fine. */
void ph_gen_release(ph_gen *g);

unsigned ph_gen_id(const ph_gen *g);
uint64_t ph_gen_hash(const ph_gen *g);          /* content hash of the script tree */
const ph_limits *ph_gen_limits(const ph_gen *g);
size_t ph_gen_memory(const ph_gen *g);          /* bytes the lua_State holds now */
const ph_registry *ph_gen_registry(const ph_gen *g);
const ph_tree *ph_gen_tree(const ph_gen *g);    /* the files it was built from */
int ph_gen_ntemplates(const ph_gen *g);
const ph_template *ph_gen_template(const ph_gen *g, int i);
const ph_template *ph_gen_find_template(const ph_gen *g, const char *name);

/* Renders the user part of `t` for `n` snapshots (JSON texts; n must be 1 unless the
 * template is a batch template), appending to `out`. Returns 0, or -1 with `err` filled
 * (PH_ERR_JSON for a malformed snapshot, script errors with file:line). */
int ph_gen_render_user(ph_gen *g, const ph_template *t, const char *const *snapshots,
                       const size_t *lens, int n, ph_buf *out, ph_error *err);

/* The tier policy of this generation. */
const ph_policy *ph_gen_policy(const ph_gen *g);
int ph_gen_find_tier(const ph_gen *g, const char *name);

/* Calls chain(ctx): fills out[0..max) with tier indexes and returns how many (>= 1), or -1
 * with `err` filled (a script error, or a result that is not a list of known tier names). */
int ph_gen_chain(ph_gen *g, const ph_chain_ctx *ctx, int *out, int max, ph_error *err);

/* Calls on_failure(ctx, reason). Returns -1 (go on), -2 ("stop") or a tier index to jump
 * to; -3 with `err` filled on a script error or an unknown answer. */
int ph_gen_on_failure(ph_gen *g, const ph_chain_ctx *ctx, const char *reason, ph_error *err);

/* Does the policy want a provisional plan for this request (the heuristic planner's, handed
 * out at once while the model thinks)? policies/tiers.lua `provisional`: true, false (the
 * default) or function(ctx) -> boolean. Returns 1 or 0, or -1 with err when the function
 * failed or answered something else. */
int ph_gen_provisional(ph_gen *g, const ph_chain_ctx *ctx, ph_error *err);
/* 0 when the policy never wants one (provisional = false and no function): no ctx needed. */
int ph_gen_may_provisional(const ph_gen *g);

/* The heuristic tier: runs lua/heuristic.lua's plan(snapshot, {tools = ...}) for the tools
 * of `t` (NULL: all) and appends the plan as JSON to `out`. Returns 0, or -1 with `err`. */
int ph_gen_heuristic(ph_gen *g, const char *snapshot, size_t len, const ph_template *t,
                     ph_buf *out, ph_error *err);

/* The cache policy, and its snapshot-hash rules (NULL when the cache is off). The rules
 * belong to the generation and keep a scratch hasher: use them on the generation's thread. */
const ph_cache_policy *ph_gen_cache_policy(const ph_gen *g);
struct ph_hash_rules *ph_gen_hash_rules(ph_gen *g);

/* The batch policy, and its batch_size(queue, stats) hook: returns how many queued requests
 * make a batch now (1..max_size; max_size without a hook), or -1 with `err` filled when the
 * hook failed or answered out of range. NaN median/p95 mean no data. */
const ph_batch_policy *ph_gen_batch_policy(const ph_gen *g);
int ph_gen_batch_size(ph_gen *g, int length, double oldest_ms, double median_ms, double p95_ms, int samples,
                      ph_error *err);

/* The experiment, and the arm of `agent`: an index into its arms, -1 for none (no experiment
 * or arm() said nil), -2 with `err` filled when arm() failed. */
const ph_ab_policy *ph_gen_ab_policy(const ph_gen *g);
int ph_gen_ab_arm(ph_gen *g, const char *agent, ph_error *err);

/* Does the policy have a validate(step, snapshot) hook for game rules? */
int ph_gen_has_validate_hook(const ph_gen *g);

/* Calls validate(step, snapshot) for one canonical step (JSON). Returns 1 when the step
 * stands, 0 when the hook refused it (`reason` says why, from the hook or "refused by
 * policies/validate.lua"), -1 with `err` filled on a script error or a bad answer. */
int ph_gen_validate_hook(ph_gen *g, const char *step, size_t step_len, const char *snapshot,
                         size_t snapshot_len, char *reason, size_t reason_size, ph_error *err);

/* Runs `src` (Lua text) as a chunk named `name` inside the sandbox, with the budgets, and
 * appends tostring() of its first result to `out`. For tests and tools; the code is treated
 * as untrusted. Returns 0, or -1 with `err` filled. */
int ph_gen_exec(ph_gen *g, const char *src, const char *name, ph_buf *out, ph_error *err);

#endif
