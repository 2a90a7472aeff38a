// OrchestratorAuth: JSON Web Tokens for orchestratord and orchctl.
//
// This target owns compact-JWS parsing (base64url, strict JSON, size cap), signature
// verification and signing with OpenSSL 3 (HS256, RS256, ES256), key loading (an HS256 secret
// file, a PEM public or private key, a JWKS file with several keys by `kid`), the claims the
// orchestrator relies on (`sub`, `role`, `tenant`/`tenants`, `exp`, `nbf`, `iss`, `aud`) and token
// minting for development. It knows nothing about gRPC or workflows: the gRPC edge
// (OrchestratorGRPC's AuthInterceptor) turns a `VerifiedIdentity` into a caller and enforces roles.
//
// Thread-safety: every type here is immutable after construction; OpenSSL key handles are
// read-only once loaded and each verification or signature uses its own EVP_MD_CTX.
