// protobuf-c runtime (Debian libprotobuf-c-dev); generated code lives in generated/c.
// No _GNU_SOURCE here: SwiftGlibc is built without it, and a module header that defines it
// gets a different fd_set, which breaks every Swift file importing both (see docs/ARCHITECTURE.md).
#include <protobuf-c/protobuf-c.h>
