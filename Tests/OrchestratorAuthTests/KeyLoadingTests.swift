import Testing

@testable import OrchestratorAuth

@Suite struct KeyLoadingTests {
    @Test func pemKeysPickTheirAlgorithm() throws {
        #expect(try Fixture.rsaKey().algorithm == .rs256)
        #expect(try Fixture.ecKey().algorithm == .es256)
        #expect(try SigningKey.privateKey(pem: Array(TestKeys.rsaPrivate.utf8)).algorithm == .rs256)
        #expect(try SigningKey.privateKey(pem: Array(TestKeys.ecPrivate.utf8)).algorithm == .es256)
    }

    @Test func refusesWeakOrUnsupportedKeys() throws {
        #expect(throws: AuthError.self) { try VerificationKey.publicKey(pem: Array(TestKeys.rsa1024Public.utf8)) }
        #expect(throws: AuthError.self) { try VerificationKey.publicKey(pem: Array(TestKeys.p384Public.utf8)) }
        #expect(throws: AuthError.self) { try SigningKey.privateKey(pem: Array(TestKeys.p384Private.utf8)) }
        #expect(throws: AuthError.self) { try VerificationKey.hmac(secret: Array("too short".utf8)) }
        // Found by black-box testing: e = 1 was accepted, and a "signature" equal to the padded
        // hash verified, so anyone could mint an admin token.
        for pem in [TestKeys.rsaExponent1Public, TestKeys.rsaExponent3Public, TestKeys.rsaEvenExponentPublic] {
            #expect(throws: AuthError.self) { try VerificationKey.publicKey(pem: Array(pem.utf8)) }
        }
        #expect(throws: AuthError.self) {
            try VerificationKey.publicKey(pem: Array("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n".utf8))
        }
    }

    @Test func jwksBuildsEveryKeyType() throws {
        let jwks = """
            {"keys":[
              {"kty":"RSA","kid":"r1","alg":"RS256","use":"sig","n":"\(TestKeys.rsaN)","e":"\(TestKeys.rsaE)"},
              {"kty":"EC","kid":"e1","crv":"P-256","x":"\(TestKeys.ecX)","y":"\(TestKeys.ecY)"},
              {"kty":"oct","kid":"h1","k":"\(Base64URL.encode(Fixture.secret))"}
            ]}
            """
        let keys = try JWKSet.parse(Array(jwks.utf8), source: "test")
        #expect(keys.map(\.algorithm) == [.rs256, .es256, .hs256])
        let verifier = try Fixture.verifier(keys)
        #expect(try verifier.verify(try Fixture.minter(TestKeys.rsaPrivate, kid: "r1").mint(Fixture.claims())).subject == "alice")
        #expect(try verifier.verify(try Fixture.minter(TestKeys.ecPrivate, kid: "e1").mint(Fixture.claims())).subject == "alice")
        #expect(try verifier.verify(try Fixture.hmacMinter(kid: "h1").mint(Fixture.claims())).subject == "alice")
        // The EC private key signing under the RSA kid: refused as confusion, not tried.
        #expect(
            Fixture.rejection(verifier, try Fixture.minter(TestKeys.ecPrivate, kid: "r1").mint(Fixture.claims()))?.code
                == .algorithmKeyMismatch)
    }

    @Test(arguments: [
        #"{"keys":[]}"#, #"{"kes":[]}"#, #"[]"#,
        #"{"keys":[{"kty":"RSA","alg":"HS256","n":"AQAB","e":"AQAB"}]}"#,
        #"{"keys":[{"kty":"EC","crv":"P-384","x":"AA","y":"AA"}]}"#,
        #"{"keys":[{"kty":"EC","crv":"P-256","x":"AA","y":"AA"}]}"#,
        #"{"keys":[{"kty":"oct","k":"c2hvcnQ"}]}"#,
        #"{"keys":[{"kty":"oct","use":"enc","k":"MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY"}]}"#,
        #"{"keys":[{"kty":"OKP","crv":"Ed25519","x":"AA"}]}"#,
        #"{"keys":[{"kty":"oct","kid":"","k":"MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY"}]}"#,
    ])
    func refusesBadJWKS(_ text: String) {
        #expect(throws: AuthError.self) { try JWKSet.parse(Array(text.utf8), source: "test") }
    }

    @Test func jwksWithPrivateMembersIsRefused() {
        for member in ["d", "p", "qi"] {
            let jwks = #"{"keys":[{"kty":"RSA","kid":"r1","n":"\#(TestKeys.rsaN)","e":"\#(TestKeys.rsaE)","\#(member)":"AQAB"}]}"#
            #expect {
                try JWKSet.parse(Array(jwks.utf8), source: "test")
            } throws: { error in
                "\(error)".contains("carries private key members (\(member))")
            }
        }
        let ec = #"{"keys":[{"kty":"EC","crv":"P-256","x":"\#(TestKeys.ecX)","y":"\#(TestKeys.ecY)","d":"AQAB"}]}"#
        #expect(throws: AuthError.self) { try JWKSet.parse(Array(ec.utf8), source: "test") }
    }

    @Test func secretFilesDropTrailingNewlines() {
        #expect(KeyFiles.secret(Array("abc\r\n\n".utf8)) == Array("abc".utf8))
        #expect(KeyFiles.secret(Array("a\nb".utf8)) == Array("a\nb".utf8))
    }

    @Test func ecdsaSignatureConversionRoundTrips() {
        let raw: [UInt8] = [0x00, 0x80] + [UInt8](repeating: 7, count: 30) + [0xFF] + [UInt8](repeating: 1, count: 31)
        let der = DER.ecdsaSignature(raw: raw)!
        #expect(DER.rawSignature(der: der) == raw)
        #expect(DER.ecdsaSignature(raw: Array(raw.prefix(63))) == nil)
    }
}
