/* net_access.c - the two members of the net that modules outside the net's own files need besides
   the public API (npy_net.c): its allocator, and its message buffer, written by failing calls
   even on a const net (see fan__fail). They belong with the net's struct, wherever it lives. */
#include "internal.h"

const fan_allocator *fan__net_allocator(const fan_net *net) { return &net->alloc; }

char *fan__net_errbuf(const fan_net *net) { return net->err; }
