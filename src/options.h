/*
 * options.h - fan_create_options as the library sees it (options.c): read once at the start of
 * an _ex call, with the caller's struct_size honoured, and the call's message delivered to the
 * caller's errmsg buffer at the end. Never installed.
 */
#ifndef FAN_OPTIONS_H
#define FAN_OPTIONS_H

#include "internal.h"

/** The resolved options of one call, plus its working message buffer. */
typedef struct fan__opts {
    const fan_allocator *user_alloc; /* as given: NULL means the call's default */
    fan_allocator alloc;             /* resolved (malloc/free for NULL), for the call's memory */
    char *errmsg;
    size_t errmsg_cap;
    uint64_t max_load_bytes; /* never 0 once read */
    char err[FAN__ERRMSG_CAP];
} fan__opts;

/**
 * Fills o from the caller's options (NULL: defaults). Returns FAN_E_INVALID for a struct_size
 * too small for its first field or implausibly large, FAN_E_UNSUPPORTED when a field beyond
 * this library's struct is set; the message is in o->err either way.
 */
fan_status fan__opts_read(fan__opts *o, const fan_create_options *user);

/** Copies o->err ("" when st is FAN_OK) into the caller's errmsg buffer; returns st. */
fan_status fan__opts_finish(fan__opts *o, fan_status st);

/**
 * Checks a loader's declared decoded size against the budget: FAN_E_LIMIT with a message naming
 * `what` when bytes exceeds o->max_load_bytes.
 */
fan_status fan__opts_check_budget(fan__opts *o, uint64_t bytes, const char *what);

#endif /* FAN_OPTIONS_H */
