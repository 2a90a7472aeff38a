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

#include <openssl/x509v3.h>
#include <openssl/bio.h>

/// Appends `text` (length `length`) to `out` at `*used`, truncating at `capacity - 1` and keeping a NUL.
static void cngrpc_append(char *out, size_t capacity, size_t *used, const char *text, size_t length) {
    if (capacity == 0) return;
    size_t room = capacity - 1 - *used;
    if (length > room) length = room;
    memcpy(out + *used, text, length);
    *used += length;
    out[*used] = 0;
}

int cngrpc_ssl_peer_certificate(void *sslPointer, char *subject, size_t subjectCapacity, char *names,
                                size_t namesCapacity, char *serial, size_t serialCapacity) {
    SSL *ssl = (SSL *)sslPointer;
    if (subjectCapacity) subject[0] = 0;
    if (namesCapacity) names[0] = 0;
    if (serialCapacity) serial[0] = 0;
    X509 *certificate = SSL_get0_peer_certificate(ssl);
    if (certificate == NULL) return 0;
    if (SSL_get_verify_result(ssl) != X509_V_OK) return -1;

    BIO *bio = BIO_new(BIO_s_mem());
    if (bio != NULL) {
        X509_NAME_print_ex(bio, X509_get_subject_name(certificate), 0, XN_FLAG_RFC2253);
        char *data = NULL;
        long length = BIO_get_mem_data(bio, &data);
        size_t used = 0;
        if (length > 0) cngrpc_append(subject, subjectCapacity, &used, data, (size_t)length);
        BIO_free(bio);
    }

    size_t used = 0;
    GENERAL_NAMES *alternatives = X509_get_ext_d2i(certificate, NID_subject_alt_name, NULL, NULL);
    if (alternatives != NULL) {
        int count = sk_GENERAL_NAME_num(alternatives);
        for (int i = 0; i < count; i++) {
            const GENERAL_NAME *name = sk_GENERAL_NAME_value(alternatives, i);
            const char *prefix = NULL;
            char buffer[64];
            const char *text = NULL;
            size_t length = 0;
            switch (name->type) {
            case GEN_DNS: prefix = "DNS:"; text = (const char *)ASN1_STRING_get0_data(name->d.dNSName);
                length = (size_t)ASN1_STRING_length(name->d.dNSName); break;
            case GEN_URI: prefix = "URI:"; text = (const char *)ASN1_STRING_get0_data(name->d.uniformResourceIdentifier);
                length = (size_t)ASN1_STRING_length(name->d.uniformResourceIdentifier); break;
            case GEN_EMAIL: prefix = "email:"; text = (const char *)ASN1_STRING_get0_data(name->d.rfc822Name);
                length = (size_t)ASN1_STRING_length(name->d.rfc822Name); break;
            case GEN_IPADD: {
                int bytes = ASN1_STRING_length(name->d.iPAddress);
                const unsigned char *address = ASN1_STRING_get0_data(name->d.iPAddress);
                if (bytes == 4 && inet_ntop(AF_INET, address, buffer, sizeof buffer)) {
                    prefix = "IP:"; text = buffer; length = strlen(buffer);
                } else if (bytes == 16 && inet_ntop(AF_INET6, address, buffer, sizeof buffer)) {
                    prefix = "IP:"; text = buffer; length = strlen(buffer);
                }
                break;
            }
            default: break;
            }
            if (prefix == NULL || text == NULL) continue;
            if (used > 0) cngrpc_append(names, namesCapacity, &used, "\n", 1);
            cngrpc_append(names, namesCapacity, &used, prefix, strlen(prefix));
            cngrpc_append(names, namesCapacity, &used, text, length);
        }
        GENERAL_NAMES_free(alternatives);
    }

    BIGNUM *number = ASN1_INTEGER_to_BN(X509_get0_serialNumber(certificate), NULL);
    if (number != NULL) {
        char *hex = BN_bn2hex(number);
        if (hex != NULL) {
            size_t serialUsed = 0;
            cngrpc_append(serial, serialCapacity, &serialUsed, hex, strlen(hex));
            OPENSSL_free(hex);
        }
        BN_free(number);
    }
    return 1;
}

int cngrpc_ssl_ctx_load_client_ca(void *contextPointer, const char *path) {
    SSL_CTX *context = (SSL_CTX *)contextPointer;
    STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(path);
    if (names == NULL) return 0;
    if (SSL_CTX_load_verify_locations(context, path, NULL) != 1) {
        sk_X509_NAME_pop_free(names, X509_NAME_free);
        return 0;
    }
    SSL_CTX_set_client_CA_list(context, names);
    return 1;
}
