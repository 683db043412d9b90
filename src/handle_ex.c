/* handle_ex.c - fan_net_create_ex and fan_net_clone_ex: the net's constructors with
   fan_create_options, over the net's internal constructors, which say why they failed. */
#include "options.h"

#include <string.h>

fan_status fan_net_create_ex(fan_net **out, const size_t *sizes, size_t n_sizes,
                             const fan_create_options *opts)
{
    if (out != NULL) *out = NULL;
    fan__opts o;
    fan_status st = fan__opts_read(&o, opts);
    if (st == FAN_OK && out == NULL) st = fan__fail(o.err, FAN_E_NULL, "out is NULL");
    if (st == FAN_OK) st = fan__net_create(out, sizes, n_sizes, &o.alloc, o.err);
    return fan__opts_finish(&o, st);
}

fan_status fan_net_clone_ex(fan_net **out, const fan_net *src, const fan_create_options *opts)
{
    if (out != NULL) *out = NULL;
    fan__opts o;
    fan_status st = fan__opts_read(&o, opts);
    if (st == FAN_OK && out == NULL) st = fan__fail(o.err, FAN_E_NULL, "out is NULL");
    if (st == FAN_OK && src == NULL) st = fan__fail(o.err, FAN_E_NULL, "src is NULL");
    /* Without an allocator of its own the clone takes its source's, as fan_net_clone does. */
    if (st == FAN_OK)
        st = fan__net_clone(out, src, o.user_alloc != NULL ? &o.alloc : fan__net_allocator(src),
                            o.err);
    return fan__opts_finish(&o, st);
}
