#define _GNU_SOURCE 1 // for pthread_setname_np; only in this .c file, never in a module header
#include "CNGRPCShims.h"
#include <openssl/ssl.h>

int cngrpc_ssl_ctx_set_min_tls12(void *ctx) {
    return (int)SSL_CTX_set_min_proto_version((SSL_CTX *)ctx, TLS1_2_VERSION);
}

int cngrpc_ssl_set_sni(void *ssl, const char *host) {
    return (int)SSL_set_tlsext_host_name((SSL *)ssl, host);
}

void cngrpc_ssl_ctx_set_release_buffers(void *ctx) {
    SSL_CTX_set_mode((SSL_CTX *)ctx, SSL_MODE_RELEASE_BUFFERS);
}

void cngrpc_ignore_signal(int sig) {
    signal(sig, SIG_IGN);
}

void cngrpc_default_signal(int sig) {
    signal(sig, SIG_DFL);
}

int cngrpc_errno(void) {
    return errno;
}

int cngrpc_local_port(int fd) {
    struct sockaddr_storage storage;
    socklen_t length = sizeof(storage);
    if (getsockname(fd, (struct sockaddr *)&storage, &length) != 0) return 0;
    if (storage.ss_family == AF_INET) return ntohs(((struct sockaddr_in *)&storage)->sin_port);
    if (storage.ss_family == AF_INET6) return ntohs(((struct sockaddr_in6 *)&storage)->sin6_port);
    return 0;
}

int cngrpc_set_current_thread_name(const char *name) {
    return pthread_setname_np(pthread_self(), name);
}
