/* snaphash_internal — what snaphash.c (the hashing pass) and snaphash_rules.c (rule paths,
 * the rule set, the path automaton) share. Not part of the public API.
 *
 * Rules compile to segment lists (one per rule, ended by SEG_END naming the rule): together
 * an NFA over the path of a value. Each hasher builds from it, lazily, a DFA whose input
 * symbols are "an array slot", "a key no rule names" and each key some rule names; a DFA state
 * knows which rules reach a value at its path (flags, best quantise rule). Building happens on
 * the first visit of each (state, symbol) pair, so a warm hasher only looks transitions up.
 * Depends on buf, error, libxxhash. */
#ifndef PH_SNAPHASH_INTERNAL_H
#define PH_SNAPHASH_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <xxhash.h>

#include "buf.h"
#include "snaphash.h"

#define SH_SEED_KEY 0x9e3779b97f4a7c15ull   /* key hashes: shared by symbols and hashing */

enum { SEG_KEY, SEG_ANY, SEG_DEEP, SEG_ELEM, SEG_END };
enum { SYM_ELEM = 0, SYM_OTHER = 1, SYM_FIRST_KEY = 2 };
enum { SH_IGNORE = 1u << 0, SH_SET = 1u << 1, SH_REL = 1u << 2, SH_QUANT = 1u << 3 };

typedef struct sh_seg {
    int kind;
    uint32_t sym;             /* SEG_KEY: its symbol; SEG_END: the rule's index */
} sh_seg;

typedef struct sh_rule {
    ph_hash_kind kind;
    double step;
    int spec;                 /* literal parts (keys and "[]") */
    uint32_t first;           /* first segment in segs */
} sh_rule;

typedef struct sh_sym {
    uint32_t off, len;        /* key bytes in names */
    uint64_t hash;            /* sh_hash_bytes(key, len, SH_SEED_KEY) */
} sh_sym;

struct ph_hash_rules {
    sh_rule *rules;
    size_t nrules, rules_size;
    int nrel;
    sh_seg *segs;
    size_t nsegs, segs_size;
    ph_buf names;             /* bytes of the symbols' keys */
    sh_sym *syms;             /* literal keys, symbol SYM_FIRST_KEY + i */
    size_t nsyms, syms_size;
    uint32_t *index;          /* open addressing over syms by hash: symbol, 0 = empty */
    size_t index_size;        /* a power of two, > 2 * nsyms */
    uint32_t anchor_sym[PH_HASH_MAX_SEGS];   /* the anchor's keys, as symbols */
    int nanchor;
    uint64_t sum, anchor_hash;    /* fingerprint parts */
    unsigned version;         /* bumped by every change: hashers rebuild their DFA */
    ph_snaphasher *own;       /* ph_snaphash's scratch, made on first use */
};

/* murmur3's finaliser: a bijection with full avalanche. */
static inline uint64_t sh_fmix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    return x ^ (x >> 33);
}

/* Hash of bytes s[0..n) under a seed: XXH3, except that up to 8 bytes (most keys and many
 * strings in a snapshot) are packed into one word and mixed inline: for one length the
 * packing is one-to-one, so no two such inputs collide, and a call per key is saved. */
static inline uint64_t sh_hash_bytes(const char *s, size_t n, uint64_t seed)
{
    uint32_t lo, hi;
    uint64_t w = 0;
    if (n > 8)
        return XXH3_64bits_withSeed(s, n, seed);
    if (n >= 4) {             /* two loads that overlap cover every byte */
        memcpy(&lo, s, 4);
        memcpy(&hi, s + n - 4, 4);
        w = lo | (uint64_t)hi << 32;
    } else if (n) {
        w = (uint64_t)(unsigned char)s[0] | (uint64_t)(unsigned char)s[n / 2] << 8 |
            (uint64_t)(unsigned char)s[n - 1] << 16;
    }
    return sh_fmix(w ^ sh_fmix(seed + n));
}

/* The symbol of key[0..len) whose sh_hash_bytes(.., SH_SEED_KEY) is `hash`:
 * SYM_FIRST_KEY + i for a key some rule names, else SYM_OTHER. */
uint32_t sh_symbol(const ph_hash_rules *r, const char *key, size_t len, uint64_t hash);

/* ---- the DFA ----------------------------------------------------------------------- */

#define SH_NO_STATE UINT32_MAX
#define SH_MAX_DSTATES 4096

typedef struct sh_dstate {
    uint32_t set_off, set_n;  /* its NFA states, sorted, in sets */
    unsigned flags;           /* SH_* of the rules reaching a value at this path */
    int spec;                 /* SH_QUANT: the best quantise rule's literal parts ... */
    double step;              /* ... and step (more literal parts win, then finer steps) */
} sh_dstate;

typedef struct sh_dfa {
    const ph_hash_rules *r;
    unsigned version;         /* r->version it was built for */
    uint32_t nsym;
    sh_dstate *st;
    size_t n, size;
    uint32_t *sets;
    size_t sets_len, sets_size;
    uint32_t *next;           /* n * nsym transitions, SH_NO_STATE = not built yet */
    size_t next_size;
    uint32_t *mark, *tmp;     /* building one set: seen stamps, members */
    uint32_t stamp;
    size_t mark_size, tmp_size;
} sh_dfa;

/* (Re)starts d for r: drops every state, builds state 0 (the root value's path). 0, or -1
 * when out of memory. d must be zeroed before its first init. */
int sh_dfa_init(sh_dfa *d, const ph_hash_rules *r);
void sh_dfa_free(sh_dfa *d);

/* Builds the transition of `state` on `sym`: the new state's index, or SH_NO_STATE when out of
 * memory or past SH_MAX_DSTATES. */
uint32_t sh_dfa_build(sh_dfa *d, uint32_t state, uint32_t sym);

static inline uint32_t sh_dfa_step(sh_dfa *d, uint32_t state, uint32_t sym)
{
    uint32_t s = d->next[(size_t)state * d->nsym + sym];
    return s != SH_NO_STATE ? s : sh_dfa_build(d, state, sym);
}

#endif
