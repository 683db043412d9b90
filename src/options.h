/*
 * options.h - fan_create_options as the library sees it (options.c): read once at the start of
 * an _ex call, with the caller's struct_size honoured, and the call's message delivered to the
 * caller's errmsg buffer at the end; and the internal entry points of the loaders and of
 * fan_net_save that take them. Never installed.
 */
#ifndef FAN_OPTIONS_H
#define FAN_OPTIONS_H

#include "fileio.h"

/** The resolved options of one call, plus its working message buffer. */
typedef struct fan__opts {
    const fan_allocator *user_alloc; /* as given: NULL means the call's default */
    fan_allocator alloc;             /* resolved, for scratch memory of the call */
    char *errmsg;
    size_t errmsg_cap;
    uint64_t max_load_bytes; /* never 0 once read */
    const fan__fileio *io;   /* NULL: the system; tests set a fault hook here */
    fan__msg msg; /* the call's message; err points at its text */
    char *err;
} fan__opts;

/**
 * Fills o from the caller's options (NULL: defaults). Returns FAN_E_INVALID for a struct_size
 * too small for its first fields or implausibly large, FAN_E_UNSUPPORTED when a field beyond
 * this library's struct is set; the message is in o->err either way.
 */
fan_status fan__opts_read(fan__opts *o, const fan_create_options *user);

/** Options holding only an allocator (for the old loaders, thin wrappers of the _ex ones). */
fan_create_options fan__opts_with_alloc(const fan_allocator *alloc);

/** Copies o->err ("" when st is FAN_OK) into the caller's errmsg buffer; returns st. */
fan_status fan__opts_finish(fan__opts *o, fan_status st);

/**
 * Checks a loader's declared decoded size against the budget: FAN_E_LIMIT with a message naming
 * `what` when bytes exceeds o->max_load_bytes.
 */
fan_status fan__opts_check_budget(fan__opts *o, uint64_t bytes, const char *what);

/* ---- entry points taking resolved options --------------------------------------------------
   The public loaders and fan_net_save are thin wrappers of these; the fault-injection tests call
   them with o->io (or io) set to a fault hook. Each records its message in o->err. */

/** fan_net_load_ex (path != NULL) or fan_net_load_mem_ex (buf, len). */
fan_status fan__net_load_opts(fan_net **out, const char *path, const void *buf, size_t len,
                              fan__opts *o);
/** fan_net_save through the file layer io (NULL: the system). */
fan_status fan__net_save_io(const fan_net *net, const char *path, const fan__fileio *io);
fan_status fan__dataset_load_idx_opts(fan_dataset **out, const char *images_path,
                                      const char *labels_path, fan__opts *o);
fan_status fan__dataset_load_cifar_opts(fan_dataset **out, const char *const *paths,
                                        size_t n_paths, size_t n_label_bytes, fan__opts *o);
fan_status fan__dataset_load_csv_opts(fan_dataset **out, const char *path, size_t label_column,
                                      int skip_header, fan__opts *o);

/** fan_checkpoint_save through the file layer io (NULL: the system). */
fan_status fan__checkpoint_save_io(const char *path, const fan_net *net,
                                   const fan_optimizer *opt, const fan_iter *it,
                                   const fan__fileio *io);
/** fan_checkpoint_load_ex's work (path not NULL), reading through o->io. */
fan_status fan__checkpoint_load_opts(const char *path, fan_net **net, fan_optimizer **opt,
                                     fan_iter **it, const fan_dataset *data, fan__opts *o);

#endif /* FAN_OPTIONS_H */
