// zlib, for the gzip grpc-encoding.
// No _GNU_SOURCE here: SwiftGlibc is built without it, and a module header that defines it
// gets a different fd_set, which breaks every Swift file importing both (see docs/ARCHITECTURE.md).
#include <zlib.h>
