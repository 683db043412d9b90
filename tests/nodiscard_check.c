/* nodiscard_check.c - compiled (not run) by `make nodiscard-check`: under C23/C2x and C++17 a
   status ignored on purpose through a cast to void compiles without a warning, and one ignored
   by mistake (FAN_PROBE_IGNORED) still warns. Under C11 with GCC the cast does not silence
   warn_unused_result; that is why FAN_NODISCARD uses the standard attribute where it can. */
#include "fanoise.h"

#ifdef __cplusplus
extern "C" int fan_nodiscard_probe(fan_net *net);
#else
int fan_nodiscard_probe(fan_net *net);
#endif

int fan_nodiscard_probe(fan_net *net)
{
    (void)fan_net_init(net, 1, 2);
#ifdef FAN_PROBE_IGNORED
    fan_net_init(net, 3, 4);
#endif
    return 0;
}
