/* error.c - static status texts and per-handle messages. */
#include "internal.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

const char *fan_strerror(fan_status s)
{
    switch (s) {
    case FAN_OK: return "success";
    case FAN_E_NULL: return "a required pointer argument is NULL";
    case FAN_E_INVALID: return "an argument is out of its valid range";
    case FAN_E_SHAPE: return "a length or size does not match";
    case FAN_E_NOMEM: return "out of memory";
    case FAN_E_NUMERIC: return "a computation overflowed to NaN or infinity; nothing was changed";
    case FAN_E_IO: return "file input/output failed";
    case FAN_E_FORMAT: return "malformed data";
    case FAN_E_VERSION: return "unsupported format version";
    case FAN_E_LIMIT: return "size exceeds a limit or overflows";
    case FAN_E_STATE: return "call not valid in the current state";
    case FAN_E_LAPACK: return "LAPACK failure (SVD did not converge)";
    case FAN_E_CHECKSUM: return "checksum mismatch";
    case FAN_E_NONFINITE: return "input contains NaN or infinity";
    case FAN_E_LABEL: return "class label out of range";
    case FAN_E_UNSUPPORTED: return "unsupported combination of settings";
    case FAN_DONE: return "end of epoch";
    case FAN_STOPPED: return "stopped by the progress callback";
    case FAN_EARLY_STOPPED: return "stopped early: validation loss stopped improving";
    }
    return "unknown status";
}

char *fan__msg_init(fan__msg *m)
{
    atomic_flag_clear(&m->busy);
    m->text[0] = '\0';
    return m->text;
}

fan_status fan__fail(char *err, fan_status status, const char *fmt, ...)
{
    if (err != NULL) {
        char text[FAN__ERRMSG_CAP];
        va_list ap;
        va_start(ap, fmt);
        /* A message longer than the buffer is truncated, which is harmless. Formatting first
           keeps the turn short, and lets a message quote the buffer's own earlier text. */
        (void)vsnprintf(text, sizeof text, fmt, ap);
        va_end(ap);
        fan__msg *m = (fan__msg *)(void *)(err - offsetof(fan__msg, text));
        while (atomic_flag_test_and_set_explicit(&m->busy, memory_order_acquire)) {
        }
        memcpy(m->text, text, sizeof text);
        atomic_flag_clear_explicit(&m->busy, memory_order_release);
    }
    return status;
}
