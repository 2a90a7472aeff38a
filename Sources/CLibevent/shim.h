// libevent 2.1 (event loop, bufferevents, evhttp, pthreads) together with OpenSSL 3,
// because TLS bufferevents need both in one module.
// No _GNU_SOURCE here: SwiftGlibc is built without it, and a module header that defines it
// gets a different fd_set, which breaks every Swift file importing both (see docs/ARCHITECTURE.md).
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/listener.h>
#include <event2/http.h>
#include <event2/util.h>
#include <openssl/ssl.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
