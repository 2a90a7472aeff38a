// libnghttp2: HTTP/2 framing, HPACK and flow control (Debian libnghttp2-dev).
#define _GNU_SOURCE 1
#include <nghttp2/nghttp2.h>
