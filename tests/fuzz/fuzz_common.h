/* fuzz_common — what the libFuzzer targets share: the CHECK that aborts with the broken
 * promise, piece sizes read from the input's header, and the whole-versus-split comparison of
 * two runs' logs. Each target defines FUZZ_NAME (its name in messages) before including this.
 * Depends on buf. */
#ifndef PH_FUZZ_COMMON_H
#define PH_FUZZ_COMMON_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"

#define CHECK(c)                                                                              \
    do {                                                                                      \
        if (!(c)) {                                                                           \
            fprintf(stderr, FUZZ_NAME ": %s:%d: %s\n", __FILE__, __LINE__, #c);              \
            abort();                                                                          \
        }                                                                                     \
    } while (0)

/* The next piece size from the header's `n` size bytes, used in turn: mostly 1..32 bytes,
 * sometimes up to 4 KiB. */
static inline size_t fuzz_piece(const uint8_t *sizes, size_t n, size_t *i)
{
    uint8_t v = sizes[(*i)++ % n];
    return v < 192 ? (size_t)(v % 32) + 1 : (size_t)(v - 191) * 64;
}

/* Aborts, naming the first differing byte and both outcomes, unless the whole run and the
 * split run logged the same. */
static inline void fuzz_same_logs(const ph_buf *whole, const ph_buf *split, const char *whole_outcome,
                                  const char *split_outcome)
{
    if (whole->len == split->len && memcmp(whole->data, split->data, whole->len) == 0)
        return;
    size_t at = 0;
    while (at < whole->len && at < split->len && whole->data[at] == split->data[at])
        at++;
    fprintf(stderr, FUZZ_NAME ": whole and split runs differ at log byte %zu\n  whole: %s\n  split: %s\n", at,
            whole_outcome, split_outcome);
    abort();
}

#endif
