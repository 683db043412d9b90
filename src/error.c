/* error.c - static status texts and per-handle messages. */
#include "internal.h"

#include <stdio.h>

const char *fan_strerror(fan_status s)
{
    switch (s) {
    case FAN_OK: return "success";
    case FAN_E_NULL: return "a required pointer argument is NULL";
    case FAN_E_INVALID: return "an argument is out of its valid range";
    case FAN_E_SHAPE: return "a length or size does not match";
    case FAN_E_NOMEM: return "out of memory";
    case FAN_E_NUMERIC: return "non-finite loss or gradient; no update applied";
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

fan_status fan__fail(char *err, fan_status status, const char *fmt, ...)
{
    if (err != NULL) {
        va_list ap;
        va_start(ap, fmt);
        /* A message longer than the buffer is truncated, which is harmless. */
        (void)vsnprintf(err, FAN__ERRMSG_CAP, fmt, ap);
        va_end(ap);
    }
    return status;
}
