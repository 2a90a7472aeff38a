// C shims for libevent/OpenSSL/nghttp2 macros and variadic functions that Swift cannot call directly.
#ifndef CNGRPC_SHIMS_H
#define CNGRPC_SHIMS_H
#define _GNU_SOURCE 1
#include <stddef.h>
#include <stdint.h>

#endif
