/* error — the shared error record. See error.h. */
#include "error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void ph_error_clear(ph_error *e)
{
    if (!e)
        return;
    e->code = PH_OK;
    e->message[0] = e->where[0] = e->traceback[0] = '\0';
}

int ph_error_set(ph_error *e, ph_code code, const char *fmt, ...)
{
    if (!e)
        return -1;
    ph_error_clear(e);
    e->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
    return -1;
}

void ph_error_prefix(ph_error *e, const char *fmt, ...)
{
    if (!e)
        return;
    char head[512], old[sizeof e->message];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(head, sizeof head, fmt, ap);
    va_end(ap);
    memcpy(old, e->message, sizeof old);
    size_t n = strlen(head);
    if (n + 2 >= sizeof e->message)
        n = sizeof e->message - 3;
    memcpy(e->message, head, n);
    memcpy(e->message + n, ": ", 2);
    size_t rest = sizeof e->message - n - 3;
    size_t olen = strnlen(old, rest);
    memcpy(e->message + n + 2, old, olen);
    e->message[n + 2 + olen] = '\0';
}

const char *ph_code_name(ph_code code)
{
    static const char *const names[] = {
        "ok", "arg", "io", "json", "syntax", "runtime", "memory", "budget",
        "contract", "notfound", "selfcheck", "limit",
    };
    if ((size_t)code < sizeof names / sizeof names[0])
        return names[code];
    return "unknown";
}
