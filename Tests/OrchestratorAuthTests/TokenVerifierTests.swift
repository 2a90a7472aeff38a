import Testing

@testable import OrchestratorAuth

@Suite struct TokenVerifierTests {
    // MARK: Happy paths

    @Test func hs256RoundTrip() throws {
        let token = try Fixture.hmacMinter().mint(Fixture.claims())
        let identity = try Fixture.verifier([try Fixture.hmacKey()]).verify(token)
        #expect(
            identity
                == VerifiedIdentity(
                    subject: "alice", role: .submitter, tenant: "acme", grant: .only(["acme"]), expiresAt: Fixture.now + 600))
    }

    @Test func rs256RoundTrip() throws {
        let token = try Fixture.minter(TestKeys.rsaPrivate).mint(Fixture.claims(role: .viewer))
        #expect(token.hasPrefix(Base64URL.encode(Array(#"{"alg":"RS256","#.utf8)).dropLast(2)))
        let identity = try Fixture.verifier([try Fixture.rsaKey()]).verify(token)
        #expect(identity.role == .viewer)
        #expect(identity.tenant == "acme")
    }

    @Test func es256RoundTripUsesRawSignature() throws {
        let token = try Fixture.minter(TestKeys.ecPrivate).mint(Fixture.claims(role: .executor))
        let signature = Base64URL.decode(String(token.split(separator: ".")[2]))
        #expect(signature?.count == 64)
        let identity = try Fixture.verifier([try Fixture.ecKey()]).verify(token)
        #expect(identity.role == .executor)
    }

    @Test func es256RefusesDERSignature() throws {
        let minter = try Fixture.minter(TestKeys.ecPrivate)
        let token = try minter.mint(Fixture.claims())
        let parts = token.split(separator: ".")
        let raw = Base64URL.decode(String(parts[2]))!
        let der = DER.ecdsaSignature(raw: raw)!
        let forged = parts[0] + "." + parts[1] + "." + Base64URL.encode(der)
        #expect(Fixture.rejection(try Fixture.verifier([try Fixture.ecKey()]), String(forged))?.code == .badSignature)
    }

    // MARK: Algorithms and key confusion

    @Test(arguments: ["none", "None", "NONE"])
    func refusesAlgNone(_ alg: String) throws {
        let claims = #"{"sub":"alice","role":"admin","tenant":"*","exp":1900000000}"#
        let input = Base64URL.encode(Array(#"{"alg":"\#(alg)"}"#.utf8)) + "." + Base64URL.encode(Array(claims.utf8))
        let verifier = try Fixture.verifier([try Fixture.hmacKey()])
        for token in [input + ".", input + "." + Base64URL.encode([0])] {
            let error = Fixture.rejection(verifier, token)
            #expect(error?.code == .unsupportedAlgorithm, "\(token)")
            #expect(error?.message.contains("unsigned tokens are never accepted") == true)
        }
    }

    @Test(arguments: ["HS512", "RS512", "PS256", "ES384", "hs256", ""])
    func refusesOtherAlgorithms(_ alg: String) throws {
        let token = Fixture.handMade(header: #"{"alg":"\#(alg)"}"#, claims: #"{"sub":"a","role":"admin","tenant":"t","exp":1900000000}"#)
        #expect(Fixture.rejection(try Fixture.verifier([try Fixture.hmacKey()]), token)?.code == .unsupportedAlgorithm)
    }

    /// The classic attack: sign HS256 with the server's RSA *public key* as the HMAC secret.
    @Test func refusesHMACSignedWithThePublicKey() throws {
        let minter = TokenMinter(key: try .hmac(secret: Array(TestKeys.rsaPublic.utf8)))
        let token = try minter.mint(Fixture.claims(role: .admin, tenant: "*"))
        let error = Fixture.rejection(try Fixture.verifier([try Fixture.rsaKey()]), token)
        #expect(error?.code == .algorithmKeyMismatch)
        #expect(error?.message == "token alg HS256 does not match the configured key type (RS256)")
        // Same with a kid naming the RSA key.
        let named = try TokenMinter(key: try .hmac(secret: Array(TestKeys.rsaPublic.utf8)), keyID: "rsa").mint(Fixture.claims())
        #expect(Fixture.rejection(try Fixture.verifier([try Fixture.rsaKey(kid: "rsa")]), named)?.code == .algorithmKeyMismatch)
    }

    @Test func refusesRSATokenForAnHMACKey() throws {
        let token = try Fixture.minter(TestKeys.rsaPrivate).mint(Fixture.claims())
        #expect(Fixture.rejection(try Fixture.verifier([try Fixture.hmacKey()]), token)?.code == .algorithmKeyMismatch)
    }

    @Test func refusesESTokenForAnRSAKey() throws {
        let token = try Fixture.minter(TestKeys.ecPrivate).mint(Fixture.claims())
        #expect(Fixture.rejection(try Fixture.verifier([try Fixture.rsaKey()]), token)?.code == .algorithmKeyMismatch)
    }

    // MARK: Signatures

    @Test func refusesTamperedPayload() throws {
        for (minter, key) in [
            (try Fixture.hmacMinter(), try Fixture.hmacKey()), (try Fixture.minter(TestKeys.rsaPrivate), try Fixture.rsaKey()),
            (try Fixture.minter(TestKeys.ecPrivate), try Fixture.ecKey()),
        ] {
            let token = try minter.mint(Fixture.claims(role: .viewer))
            let parts = token.split(separator: ".").map(String.init)
            let admin = Base64URL.encode(Array(#"{"exp":1800000600,"role":"admin","sub":"alice","tenant":"*"}"#.utf8))
            let forged = [parts[0], admin, parts[2]].joined(separator: ".")
            #expect(Fixture.rejection(try Fixture.verifier([key]), forged)?.code == .badSignature)
        }
    }

    @Test func refusesTokenOfAnotherKeyOfTheSameType() throws {
        let token = try Fixture.minter(TestKeys.ec2Private).mint(Fixture.claims())
        #expect(Fixture.rejection(try Fixture.verifier([try Fixture.ecKey()]), token)?.code == .badSignature)
        let other = TokenMinter(key: try .hmac(secret: Array("another-secret-of-at-least-32-bytes!!".utf8)))
        #expect(Fixture.rejection(try Fixture.verifier([try Fixture.hmacKey()]), try other.mint(Fixture.claims()))?.code == .badSignature)
    }

    // MARK: Rotation by kid

    @Test func picksTheKeyByKid() throws {
        let verifier = try Fixture.verifier([
            try Fixture.ecKey(kid: "2025"), try .publicKey(pem: Array(TestKeys.ec2Public.utf8), keyID: "2026"),
            try Fixture.hmacKey(kid: "shared"),
        ])
        #expect(try verifier.verify(try Fixture.minter(TestKeys.ecPrivate, kid: "2025").mint(Fixture.claims())).subject == "alice")
        #expect(try verifier.verify(try Fixture.minter(TestKeys.ec2Private, kid: "2026").mint(Fixture.claims())).subject == "alice")
        #expect(try verifier.verify(try Fixture.hmacMinter(kid: "shared").mint(Fixture.claims())).subject == "alice")
        // Signed by the 2026 key but claiming the 2025 kid: that key alone is tried.
        #expect(
            Fixture.rejection(verifier, try Fixture.minter(TestKeys.ec2Private, kid: "2025").mint(Fixture.claims()))?.code == .badSignature)
        let unknown = Fixture.rejection(verifier, try Fixture.minter(TestKeys.ecPrivate, kid: "2024").mint(Fixture.claims()))
        #expect(unknown?.code == .unknownKey)
        #expect(unknown?.message == "no configured key has kid \"2024\"")
        // Without a kid, every key of the token's algorithm is tried.
        #expect(try verifier.verify(try Fixture.minter(TestKeys.ec2Private).mint(Fixture.claims())).subject == "alice")
    }

    @Test func keysWithoutKidAcceptTokensWithAKid() throws {
        let verifier = try Fixture.verifier([try Fixture.rsaKey()])
        #expect(try verifier.verify(try Fixture.minter(TestKeys.rsaPrivate, kid: "issuer-key-7").mint(Fixture.claims())).tenant == "acme")
    }

    @Test func refusesDuplicateKids() throws {
        #expect(throws: AuthError.self) { try KeySet([try Fixture.ecKey(kid: "a"), try Fixture.rsaKey(kid: "a")]) }
    }

    // MARK: Time

    @Test func expiryHonoursClockSkew() throws {
        let token = try Fixture.hmacMinter().mint(Fixture.claims(lifetime: 600))
        let expiry = Fixture.now + 600
        let policy = TokenPolicy(clockSkew: 60)
        #expect(try Fixture.verifier([try Fixture.hmacKey()], policy: policy, now: expiry + 59).verify(token).subject == "alice")
        let late = Fixture.rejection(try Fixture.verifier([try Fixture.hmacKey()], policy: policy, now: expiry + 61), token)
        #expect(late?.code == .expired)
        let strict = Fixture.rejection(try Fixture.verifier([try Fixture.hmacKey()], policy: TokenPolicy(clockSkew: 0), now: expiry), token)
        #expect(strict?.code == .expired)
    }

    @Test func notBeforeHonoursClockSkew() throws {
        let token = try Fixture.hmacMinter().mint(Fixture.claims(at: Fixture.now + 100))
        let policy = TokenPolicy(clockSkew: 60)
        let early = Fixture.rejection(try Fixture.verifier([try Fixture.hmacKey()], policy: policy, now: Fixture.now), token)
        #expect(early?.code == .notYetValid)
        #expect(try Fixture.verifier([try Fixture.hmacKey()], policy: policy, now: Fixture.now + 41).verify(token).subject == "alice")
    }

    @Test func requiresNumericExp() throws {
        let verifier = try Fixture.verifier([try Fixture.hmacKey()])
        let missing = Fixture.handMade(header: #"{"alg":"HS256"}"#, claims: #"{"sub":"a","role":"viewer","tenant":"t"}"#)
        #expect(Fixture.rejection(verifier, missing)?.message == "token has no \"exp\"; tokens must expire")
        let text = Fixture.handMade(header: #"{"alg":"HS256"}"#, claims: #"{"sub":"a","role":"viewer","tenant":"t","exp":"1900000000"}"#)
        #expect(Fixture.rejection(verifier, text)?.code == .invalidClaims)
    }

    @Test(
        arguments: [
            (#""exp":1e300"#, nil), (#""exp":-1e300"#, AuthError.Code.expired), (#""exp":1900000000,"nbf":1e300"#, .notYetValid),
            (#""exp":1900000000,"nbf":-1e300"#, nil), (#""exp":1.5e9"#, .expired),
        ] as [(String, AuthError.Code?)])
    func extremeTimesNeitherTrapNorPass(_ times: String, _ expected: AuthError.Code?) throws {
        let token = Fixture.handMade(header: #"{"alg":"HS256"}"#, claims: #"{"sub":"a","role":"viewer","tenant":"t",\#(times)}"#)
        #expect(Fixture.rejection(try Fixture.verifier([try Fixture.hmacKey()]), token)?.code == expected)
    }

    // MARK: Issuer and audience

    @Test func checksIssuerWhenConfigured() throws {
        var claims = Fixture.claims()
        claims.issuer = "https://issuer.example"
        let token = try Fixture.hmacMinter().mint(claims)
        #expect(
            try Fixture.verifier([try Fixture.hmacKey()], policy: TokenPolicy(issuer: "https://issuer.example")).verify(token).subject
                == "alice")
        #expect(
            Fixture.rejection(try Fixture.verifier([try Fixture.hmacKey()], policy: TokenPolicy(issuer: "other")), token)?.code
                == .wrongIssuer)
        let none = try Fixture.hmacMinter().mint(Fixture.claims())
        #expect(
            Fixture.rejection(try Fixture.verifier([try Fixture.hmacKey()], policy: TokenPolicy(issuer: "other")), none)?.code
                == .wrongIssuer)
        // An array is no issuer (it was reported as a missing "iss").
        let listed = Fixture.handMade(
            header: #"{"alg":"HS256"}"#, claims: #"{"sub":"a","role":"viewer","tenant":"t","exp":1900000000,"iss":["other"]}"#)
        #expect(
            Fixture.rejection(try Fixture.verifier([try Fixture.hmacKey()], policy: TokenPolicy(issuer: "other")), listed)?.message
                == #""iss" must be a string"#)
        // Not configured: any issuer passes.
        #expect(try Fixture.verifier([try Fixture.hmacKey()]).verify(token).subject == "alice")
    }

    @Test(arguments: [
        (#""orchestrator""#, true), (#"["x","orchestrator"]"#, true), (#""x""#, false), (#"["x"]"#, false), (#"7"#, false), ("", false),
        // Not an array of strings (it was accepted for its one string member), a look-alike.
        (#"["orchestrator",5]"#, false), (#"[["orchestrator"]]"#, false), (#""orchestrаtor""#, false),
    ])
    func checksAudienceWhenConfigured(_ aud: String, _ accepted: Bool) throws {
        let audMember = aud.isEmpty ? "" : #","aud":\#(aud)"#
        let token = Fixture.handMade(
            header: #"{"alg":"HS256"}"#, claims: #"{"sub":"a","role":"viewer","tenant":"t","exp":1900000000\#(audMember)}"#)
        let verifier = try Fixture.verifier([try Fixture.hmacKey()], policy: TokenPolicy(audience: "orchestrator"))
        let error = Fixture.rejection(verifier, token)
        #expect(accepted ? error == nil : error?.code == .wrongAudience)
    }

    // MARK: Roles and tenants

    @Test func crossTenantAdmin() throws {
        let token = try Fixture.hmacMinter().mint(Fixture.claims(role: .admin, tenant: "*"))
        let identity = try Fixture.verifier([try Fixture.hmacKey()]).verify(token)
        #expect(identity.grant == .all)
        #expect(identity.tenant == VerifiedIdentity.crossTenantHome)
    }

    @Test(arguments: [Role.submitter, .executor, .viewer])
    func onlyAdminsGetEveryTenant(_ role: Role) throws {
        let token = try Fixture.hmacMinter().mint(Fixture.claims(role: role, tenant: "*"))
        let error = Fixture.rejection(try Fixture.verifier([try Fixture.hmacKey()]), token)
        #expect(error?.message == "tenant \"*\" (every tenant) is only for role admin")
    }

    @Test func executorServesSeveralTenants() throws {
        var claims = Fixture.claims(role: .executor, tenant: nil)
        claims.tenants = ["beta", "alpha"]
        let identity = try Fixture.verifier([try Fixture.hmacKey()]).verify(try Fixture.hmacMinter().mint(claims))
        #expect(identity.grant == .only(["alpha", "beta"]))
        #expect(identity.tenant == "alpha")
        claims.tenant = "gamma"
        let both = try Fixture.verifier([try Fixture.hmacKey()]).verify(try Fixture.hmacMinter().mint(claims))
        #expect(both.grant == .only(["alpha", "beta", "gamma"]))
        #expect(both.tenant == "gamma")
    }

    @Test func onlyExecutorsListTenants() throws {
        var claims = Fixture.claims(role: .viewer)
        claims.tenants = ["other"]
        #expect(
            Fixture.rejection(try Fixture.verifier([try Fixture.hmacKey()]), try Fixture.hmacMinter().mint(claims))?.code == .invalidClaims)
    }

    @Test(arguments: [
        #"{"role":"viewer","tenant":"t","exp":1900000000}"#,
        #"{"sub":"","role":"viewer","tenant":"t","exp":1900000000}"#,
        #"{"sub":"a","tenant":"t","exp":1900000000}"#,
        #"{"sub":"a","role":"root","tenant":"t","exp":1900000000}"#,
        #"{"sub":"a","role":"Admin","tenant":"t","exp":1900000000}"#,
        #"{"sub":"a","role":"viewer","exp":1900000000}"#,
        #"{"sub":"a","role":"viewer","tenant":"","exp":1900000000}"#,
        #"{"sub":"a","role":"viewer","tenant":7,"exp":1900000000}"#,
        #"{"sub":"a","role":"executor","tenants":[],"exp":1900000000}"#,
        #"{"sub":"a","role":"executor","tenants":["*"],"exp":1900000000}"#,
        #"{"sub":"a","role":"admin","tenant":"*","tenants":["x"],"exp":1900000000}"#,
    ])
    func refusesBadClaims(_ claims: String) throws {
        let token = Fixture.handMade(header: #"{"alg":"HS256","typ":"JWT"}"#, claims: claims)
        #expect(Fixture.rejection(try Fixture.verifier([try Fixture.hmacKey()]), token)?.code == .invalidClaims)
    }
}

/// Swift's `==` treats canonically equivalent strings as equal, PostgreSQL compares bytes: a
/// tenant "\u{212A}raft" (KELVIN SIGN) passed Swift checks meant for "Kraft" and read its audit
/// trail, and reported on its leases (found by black-box testing). Identity names must be NFC.
@Suite("Identity names are in Unicode normalization form C")
struct IdentityNormalizationTests {
    @Test(arguments: [
        #"{"sub":"alice","role":"viewer","tenant":"\u212Araft","exp":1900000000}"#,
        #"{"sub":"\u212Aworker","role":"executor","tenant":"acme","exp":1900000000}"#,
        #"{"sub":"alice","role":"viewer","tenant":"cafe\u0301","exp":1900000000}"#,
        #"{"sub":"w","role":"executor","tenants":["acme","\u212Araft"],"exp":1900000000}"#,
    ])
    func refusesDecomposedOrCompatibilityNames(_ claims: String) throws {
        let token = Fixture.handMade(header: #"{"alg":"HS256","typ":"JWT"}"#, claims: claims)
        let rejection = Fixture.rejection(try Fixture.verifier([try Fixture.hmacKey()]), token)
        #expect(rejection?.code == .invalidClaims)
        #expect(rejection?.message.contains("must be in Unicode normalization form C (NFC)") == true)
    }

    @Test func acceptsComposedNonASCIINames() throws {
        let token = Fixture.handMade(
            header: #"{"alg":"HS256","typ":"JWT"}"#, claims: #"{"sub":"zoë","role":"viewer","tenant":"café Ωmega","exp":1900000000}"#)
        let identity = try Fixture.verifier([try Fixture.hmacKey()]).verify(token)
        #expect(identity.subject == "zoë" && identity.tenant == "café Ωmega")
    }

    @Test func grantsCompareTenantsByBytes() {
        let grant = TenantGrant.only(["Kraft", "café"])
        #expect(grant.contains("Kraft") && grant.contains("café"))
        #expect(!grant.contains("\u{212A}raft"))
        #expect(!grant.contains("cafe\u{301}"))
    }
}
