// zlib, for the gzip grpc-encoding.
#define _GNU_SOURCE 1
#include <zlib.h>
