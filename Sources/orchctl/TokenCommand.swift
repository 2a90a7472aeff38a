import ArgumentParser
import Foundation
import OrchestratorAuth

/// `orchctl token`: mints a JWT for development and prints only the token, so that
/// `export ORCHESTRATOR_TOKEN=$(orchctl token …)` works.
struct TokenCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "token",
        abstract: "Mint a JWT for development (prints only the token).",
        discussion: """
            --key-file is an HS256 secret file (the same file the server's --jwt-key-file reads) or a PEM \
            private key (RSA: RS256, EC P-256: ES256; give the server the public key). Example: \
            export ORCHESTRATOR_TOKEN=$(orchctl token --key-file secret --role submitter --tenant acme)
            """)

    @Option(name: .long, help: "HS256 secret file or PEM private key.") var keyFile: String
    @Option(name: .long, help: "submitter, executor, viewer or admin.") var role: String
    @Option(name: .long, help: "Tenant; \"*\" (admins only) means every tenant.") var tenant: String?
    @Option(name: .long, help: "Extra tenants an executor serves, comma-separated (claim `tenants`).") var tenants: String?
    // `.unconditional`: `--ttl -5` is a value to refuse by range, not "Missing value" (found by black-box testing).
    @Option(name: .long, parsing: .unconditional, help: "Lifetime: seconds, or a number with s, m, h or d (default 1h).") var ttl: String = "1h"
    @Option(name: .long, help: "Subject (claim `sub`; default: $USER or \"dev\").") var subject: String?
    @Option(name: .long, help: "Issuer (claim `iss`).") var issuer: String?
    @Option(name: .long, help: "Audience (claim `aud`).") var audience: String?
    @Option(name: .long, help: "Key id (header `kid`), to pick a key from the server's JWKS.") var kid: String?

    func run() throws {
        guard let role = Role(rawValue: role) else {
            throw ValidationError("--role must be one of \(Role.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        let extraTenants = tenants.map { $0.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) } } ?? []
        guard tenant != nil || !extraTenants.isEmpty else { throw ValidationError("--tenant is required") }
        guard let lifetime = Self.seconds(ttl) else {
            throw ValidationError("--ttl \"\(ttl)\" is not a duration (e.g. 3600, 90s, 15m, 1h, 7d)")
        }
        guard lifetime > 0, lifetime < 100 * 365 * 86400 else {
            throw ValidationError("--ttl \"\(ttl)\" must be more than 0 and less than 100 years")
        }
        let subject = self.subject ?? ProcessEnvironment.value("USER") ?? "dev"
        do {
            let minter = TokenMinter(key: try SigningKey.file(keyFile), keyID: kid)
            let token = try minter.mintChecked(
                TokenClaims(
                    subject: subject, role: role, tenant: tenant, tenants: extraTenants, issuer: issuer, audience: audience,
                    lifetime: lifetime))
            Output.line(token)
        } catch where error.code == .invalidClaims {
            // A token the server would refuse is a command-line mistake (exit 64), named.
            throw ValidationError(error.message)
        } catch {
            throw CLIError(error.message)
        }
    }

    /// `3600`, `90s`, `15m`, `1h`, `7d` → seconds.
    static func seconds(_ text: String) -> Double? {
        let units: [Character: Double] = ["s": 1, "m": 60, "h": 3600, "d": 86400]
        if let last = text.last, let unit = units[last], let value = Double(text.dropLast()) { return value * unit }
        return Double(text)
    }
}
