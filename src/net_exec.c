/*
 * net_exec.c - how a net runs: the GEMM kernels picked from CPUID when it is created
 * (kernels.c), and FAN_NET_THREADS with the pool of threads that shares its passes (pool.c,
 * net_pass.c). Settings live in the net, never in globals, so two nets in one process may run
 * with different kernels and thread counts.
 */
#include "net_impl.h"

#include <math.h>

size_t fan__net_threads(const fan_net *net) { return net->threads > 1 ? net->threads : 1; }

fan_status fan__net_set_threads(fan_net *net, double value)
{
    FAN__FAIL_IF(net->err, !(value >= 1.0 && value <= FAN_MAX_THREADS) || value != floor(value),
                 FAN_E_INVALID, "threads %g: must be a whole number in [1, %d]", value,
                 FAN_MAX_THREADS);
    const size_t n = (size_t)value;
    if (n != fan__net_threads(net)) {
        /* The pool of the old count stops now; one of the new count starts on first use. */
        fan__pool_free(net->pool, &net->alloc);
        net->pool = NULL;
        net->threads = n;
    }
    return FAN_OK;
}

fan_status fan__net_ensure_pool(fan_net *net)
{
    if (net->pool != NULL || fan__net_threads(net) == 1) return FAN_OK;
    const fan_status st = fan__pool_create(&net->pool, net->threads, &net->alloc);
    FAN__FAIL_IF(net->err, st != FAN_OK, st,
                 "cannot start %zu threads (FAN_NET_THREADS): out of memory or thread resources",
                 net->threads);
    return FAN_OK;
}

void fan__net_parallel(fan_net *net, void (*fn)(void *ctx, size_t phase, size_t item), void *ctx,
                       const size_t *items, size_t n_phases)
{
    fan__pool_run(net->pool, fn, ctx, items, n_phases, NULL, 0);
}

void fan__net_copy_exec(fan_net *dst, const fan_net *src)
{
    dst->kernels = src->kernels;
    dst->threads = src->threads;
}

void fan__net_free_exec(fan_net *net)
{
    fan__pool_free(net->pool, &net->alloc);
    net->pool = NULL;
}

fan__kernels fan__net_kernels(const fan_net *net) { return net->kernels; }

void fan__net_set_kernels(fan_net *net, fan__kernels k)
{
    const fan__kernels top = fan__kernels_supported();
    net->kernels = k < top ? k : top;
}
