// libnghttp2: HTTP/2 framing, HPACK and flow control (Debian libnghttp2-dev).
// No _GNU_SOURCE here: SwiftGlibc is built without it, and a module header that defines it
// gets a different fd_set, which breaks every Swift file importing both (see docs/ARCHITECTURE.md).
#include <nghttp2/nghttp2.h>
