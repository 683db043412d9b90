/* version.c - the version of the library actually linked. */
#include "internal.h"

unsigned fan_version_number(void) { return FANOISE_VERSION_NUMBER; }

const char *fan_version_string(void) { return FANOISE_VERSION_STRING; }
