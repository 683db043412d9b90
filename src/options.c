/* options.c - reading fan_create_options under the struct_size rule (see fanoise.h). */
#include "options.h"

#include <string.h>

/* A struct_size beyond this is a caller's bug (an uninitialised field), not a newer header:
   the unknown tail is scanned byte by byte and must not run off into unrelated memory. */
#define OPTIONS_MAX_STRUCT_SIZE 4096u

/* 1 if a caller's struct of n bytes holds all of member m. */
#define COVERS(n, m)                                                                            \
    ((n) >= offsetof(fan_create_options, m) + sizeof(((fan_create_options *)0)->m))

fan_status fan__opts_read(fan__opts *o, const fan_create_options *user)
{
    memset(o, 0, sizeof *o);
    o->err = fan__msg_init(&o->msg);
    o->max_load_bytes = FAN_DEFAULT_MAX_LOAD_BYTES;
    fan__alloc_init(&o->alloc, NULL);
    if (user == NULL) return FAN_OK;
    const size_t n = user->struct_size;
    /* The message buffer first, so that even a bad struct_size can be explained. */
    if (n <= OPTIONS_MAX_STRUCT_SIZE && COVERS(n, errmsg) && COVERS(n, errmsg_cap) &&
        user->errmsg != NULL) {
        o->errmsg = user->errmsg;
        o->errmsg_cap = user->errmsg_cap;
    }
    FAN__FAIL_IF(o->err, n < sizeof(size_t) || n > OPTIONS_MAX_STRUCT_SIZE, FAN_E_INVALID,
                 "options: struct_size %zu is not a size of fan_create_options (set it to "
                 "sizeof(fan_create_options), %zu in this library)",
                 n, sizeof(fan_create_options));
    if (n > sizeof(fan_create_options)) {
        const unsigned char *tail = (const unsigned char *)user;
        for (size_t i = sizeof(fan_create_options); i < n; i++)
            FAN__FAIL_IF(o->err, tail[i] != 0, FAN_E_UNSUPPORTED,
                         "options: byte %zu of the caller's %zu-byte struct is set, but this "
                         "library (%s) knows only the first %zu bytes",
                         i, n, FANOISE_VERSION_STRING, sizeof(fan_create_options));
    }
    if (COVERS(n, alloc) && user->alloc != NULL) {
        o->user_alloc = user->alloc;
        fan__alloc_init(&o->alloc, user->alloc);
    }
    if (COVERS(n, max_load_bytes) && user->max_load_bytes != 0)
        o->max_load_bytes = user->max_load_bytes;
    return FAN_OK;
}

fan_create_options fan__opts_with_alloc(const fan_allocator *alloc)
{
    fan_create_options o;
    memset(&o, 0, sizeof o);
    o.struct_size = sizeof o;
    o.alloc = alloc;
    return o;
}

fan_status fan__opts_finish(fan__opts *o, fan_status st)
{
    if (o->errmsg != NULL && o->errmsg_cap > 0) {
        const char *msg = st == FAN_OK ? "" : o->err[0] != '\0' ? o->err : fan_strerror(st);
        size_t len = strlen(msg);
        if (len >= o->errmsg_cap) len = o->errmsg_cap - 1;
        memcpy(o->errmsg, msg, len);
        o->errmsg[len] = '\0';
    }
    return st;
}

fan_status fan__opts_check_budget(fan__opts *o, uint64_t bytes, const char *what)
{
    FAN__FAIL_IF(o->err, bytes > o->max_load_bytes, FAN_E_LIMIT,
                 "%s needs %llu bytes, above the load budget of %llu (max_load_bytes)", what,
                 (unsigned long long)bytes, (unsigned long long)o->max_load_bytes);
    return FAN_OK;
}
