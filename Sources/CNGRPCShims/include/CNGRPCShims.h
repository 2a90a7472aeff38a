// C shims for libevent/OpenSSL/nghttp2 macros and variadic functions that Swift cannot call directly.
#ifndef CNGRPC_SHIMS_H
#define CNGRPC_SHIMS_H
// No _GNU_SOURCE here: SwiftGlibc is built without it, and a module header that defines it
// gets a different fd_set, which breaks every Swift file importing both (see docs/ARCHITECTURE.md).
#include <stddef.h>
#include <stdint.h>
// The POSIX APIs NGRPC uses, reached through this module so NGRPC needs no Glibc import.
#include <pthread.h>
#include <signal.h>
#include <unistd.h>
#include <sched.h>
#include <netdb.h>
#include <errno.h>
#include <string.h>
#include <time.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>


/// SSL_CTX_set_min_proto_version (a macro): 1 on success.
int cngrpc_ssl_ctx_set_min_tls12(void *ctx);
/// SSL_set_tlsext_host_name (a macro): sets SNI. 1 on success.
int cngrpc_ssl_set_sni(void *ssl, const char *host);
/// SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS) and friends (macros).
void cngrpc_ssl_ctx_set_release_buffers(void *ctx);
/// The verified peer certificate of `ssl`: RFC 2253 subject, subject alternative names (one
/// `DNS:`/`IP:`/`URI:`/`email:` entry per line) and the serial number in hex, each NUL-terminated
/// and truncated to its capacity. 1 when a verified certificate was read, 0 when the peer sent
/// none, -1 when its verification failed.
int cngrpc_ssl_peer_certificate(void *ssl, char *subject, size_t subjectCapacity, char *names,
                                size_t namesCapacity, char *serial, size_t serialCapacity);
/// Trusts the CAs in the PEM file `path` for client certificates and names them in the
/// CertificateRequest. 1 on success.
int cngrpc_ssl_ctx_load_client_ca(void *ctx, const char *path);

/// signal(sig, SIG_IGN): SIG_IGN is a cast macro Swift cannot import.
void cngrpc_ignore_signal(int sig);
/// signal(sig, SIG_DFL).
void cngrpc_default_signal(int sig);
/// errno (a macro over a thread-local).
int cngrpc_errno(void);
/// The local port a socket is bound to, or 0 (getsockname takes a transparent union in glibc).
int cngrpc_local_port(int fd);

/// Names the calling thread (pthread_setname_np is a GNU extension, declared only with _GNU_SOURCE).
int cngrpc_set_current_thread_name(const char *name);

#endif
