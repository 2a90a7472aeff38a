// libpq: the PostgreSQL client library (Debian libpq-dev).
#define _GNU_SOURCE 1
#include <postgresql/libpq-fe.h>
