// protobuf-c runtime (Debian libprotobuf-c-dev); generated code lives in generated/c.
#define _GNU_SOURCE 1
#include <protobuf-c/protobuf-c.h>
