/* handle_ex.c - fan_net_create_ex and fan_net_clone_ex: the net's constructors with
   fan_create_options. They live outside the net's own files and reach it through the public
   functions: fan_net_create records no message, so the sizes are checked here first, with the
   same bounds, to say which value is wrong. */
#include "options.h"

#include <string.h>

/* The checks fan_net_create makes (validate_sizes and layout in net.c), with their messages. */
static fan_status check_sizes(const size_t *sizes, size_t n_sizes, char *err)
{
    FAN__FAIL_IF(err, sizes == NULL, FAN_E_NULL, "sizes is NULL");
    FAN__FAIL_IF(err, n_sizes < 2 || n_sizes > FAN_MAX_LAYERS + 1, FAN_E_INVALID,
                 "n_sizes is %zu; it must be in [2, %d]", n_sizes, FAN_MAX_LAYERS + 1);
    for (size_t i = 0; i < n_sizes; i++) {
        FAN__FAIL_IF(err, sizes[i] == 0, FAN_E_INVALID, "sizes[%zu] is 0", i);
        FAN__FAIL_IF(err, sizes[i] > FAN_MAX_WIDTH, FAN_E_LIMIT,
                     "sizes[%zu] = %zu exceeds FAN_MAX_WIDTH (%u)", i, sizes[i], FAN_MAX_WIDTH);
    }
    for (size_t l = 0; l + 1 < n_sizes; l++) {
        size_t wn;
        FAN__FAIL_IF(err, !fan__mul_ok(sizes[l], sizes[l + 1], &wn) || wn > FAN_MAX_MATRIX,
                     FAN_E_LIMIT, "layer %zu: %zu x %zu weights exceed FAN_MAX_MATRIX (%u)", l,
                     sizes[l + 1], sizes[l], FAN_MAX_MATRIX);
    }
    return FAN_OK;
}

fan_status fan_net_create_ex(fan_net **out, const size_t *sizes, size_t n_sizes,
                             const fan_create_options *opts)
{
    if (out != NULL) *out = NULL;
    fan__opts o;
    fan_status st = fan__opts_read(&o, opts);
    if (st == FAN_OK && out == NULL) st = fan__fail(o.err, FAN_E_NULL, "out is NULL");
    if (st == FAN_OK) st = check_sizes(sizes, n_sizes, o.err);
    if (st == FAN_OK) {
        st = fan_net_create(out, sizes, n_sizes, &o.alloc);
        if (st != FAN_OK) {
            size_t params = 0;
            for (size_t l = 0; l + 1 < n_sizes; l++) params += sizes[l] * sizes[l + 1] + sizes[l + 1];
            (void)fan__fail(o.err, st, "cannot create a net of %zu layers and %zu parameters: %s",
                            n_sizes - 1, params, fan_strerror(st));
        }
    }
    return fan__opts_finish(&o, st);
}

static int same_allocator(const fan_allocator *a, const fan_allocator *b)
{
    return a->alloc == b->alloc && a->free == b->free && a->ud == b->ud;
}

fan_status fan_net_clone_ex(fan_net **out, const fan_net *src, const fan_create_options *opts)
{
    if (out != NULL) *out = NULL;
    fan__opts o;
    fan_status st = fan__opts_read(&o, opts);
    if (st == FAN_OK && out == NULL) st = fan__fail(o.err, FAN_E_NULL, "out is NULL");
    if (st == FAN_OK && src == NULL) st = fan__fail(o.err, FAN_E_NULL, "src is NULL");
    if (st == FAN_OK && o.user_alloc != NULL &&
        !same_allocator(&o.alloc, fan__net_allocator(src)))
        st = fan__fail(o.err, FAN_E_UNSUPPORTED,
                       "a clone uses its source's allocator; to copy a net into another one, "
                       "save it (fan_net_save_mem) and load it (fan_net_load_mem_ex)");
    if (st == FAN_OK) {
        st = fan_net_clone(out, src);
        /* fan_net_clone records its message on the source. */
        if (st != FAN_OK) (void)fan__fail(o.err, st, "%s", fan_net_errmsg(src));
    }
    return fan__opts_finish(&o, st);
}
