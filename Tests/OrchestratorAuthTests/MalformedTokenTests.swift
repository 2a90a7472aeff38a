import Testing

@testable import OrchestratorAuth

@Suite struct MalformedTokenTests {
    static let good = #"{"sub":"a","role":"viewer","tenant":"t","exp":1900000000}"#

    @Test(arguments: ["", "abc", "a.b", "a.b.c.d", "..", "a..c"])
    func refusesWrongShape(_ token: String) throws {
        #expect(Fixture.rejection(try Fixture.verifier([try Fixture.hmacKey()]), token)?.code == .malformedToken)
    }

    @Test func refusesPaddedOrStandardBase64() throws {
        let token = Fixture.handMade(header: #"{"alg":"HS256"}"#, claims: Self.good)
        let parts = token.split(separator: ".").map(String.init)
        let padded: String = parts[0] + "=." + parts[1] + "." + parts[2]
        let paddedSignature: String = token + "=="
        let standardAlphabet: String = parts[0] + "." + parts[1] + "+/." + parts[2]
        for variant in [padded, paddedSignature, standardAlphabet] {
            #expect(Fixture.rejection(try Fixture.verifier([try Fixture.hmacKey()]), variant)?.code == .malformedToken, "\(variant)")
        }
    }

    @Test(arguments: [
        #"{"alg":"HS256","alg":"none"}"#, #"{"alg":"HS256","crit":["b64"]}"#, #"{"alg":"HS256","typ":"JWE"}"#,
        #"{"alg":"HS256","kid":5}"#, #"{"alg":5}"#, #"{}"#, #"[]"#, #"{"alg":"HS256"} x"#, #"{"alg":"HS256",}"#,
    ])
    func refusesBadHeaders(_ header: String) throws {
        let error = Fixture.rejection(try Fixture.verifier([try Fixture.hmacKey()]), Fixture.handMade(header: header, claims: Self.good))
        #expect(error?.code == .malformedToken || error?.code == .unsupportedAlgorithm)
    }

    @Test(arguments: [
        #"{"sub":"a","sub":"root","role":"viewer","tenant":"t","exp":1900000000}"#,
        #"{"sub":"a","role":"viewer","tenant":"t","exp":01900000000}"#,
        #"{"sub":"a\u0000","role":"viewer","tenant":"t","exp":1900000000"#,
        #"{"sub":"\ud800","role":"viewer","tenant":"t","exp":1900000000}"#,
        #""just a string""#,
    ])
    func refusesBadClaimsJSON(_ claims: String) throws {
        let error = Fixture.rejection(
            try Fixture.verifier([try Fixture.hmacKey()]), Fixture.handMade(header: #"{"alg":"HS256"}"#, claims: claims))
        #expect(error?.code == .malformedToken)
    }

    @Test func refusesDuplicateClaimsWithAMessage() throws {
        let claims = #"{"role":"viewer","role":"admin","sub":"a","tenant":"t","exp":1900000000}"#
        let error = Fixture.rejection(
            try Fixture.verifier([try Fixture.hmacKey()]), Fixture.handMade(header: #"{"alg":"HS256"}"#, claims: claims))
        #expect(error?.message.contains("duplicate member \"role\"") == true)
    }

    @Test func refusesOversizedTokens() throws {
        let padding = String(repeating: "x", count: 9000)
        let token = Fixture.handMade(
            header: #"{"alg":"HS256"}"#, claims: #"{"sub":"a","role":"viewer","tenant":"t","exp":1900000000,"pad":"\#(padding)"}"#)
        let error = Fixture.rejection(try Fixture.verifier([try Fixture.hmacKey()]), token)
        #expect(error?.code == .malformedToken)
        #expect(error?.message.contains("more than the 8192 accepted") == true)
    }

    @Test func refusesDeepNesting() {
        let deep = String(repeating: "[", count: 40) + String(repeating: "]", count: 40)
        #expect(throws: StrictJSONParser.Failure.self) { try StrictJSONParser.parse(Array(deep.utf8)) }
    }

    @Test func parsesEscapesAndNumbers() throws {
        let value = try StrictJSONParser.parse(Array(#"{"a":"\u00e9\ud83d\ude00\n","b":-1.5e2,"c":[true,false,null]}"#.utf8))
        #expect(value == .object(["a": .string("é😀\n"), "b": .number(-150), "c": .array([.bool(true), .bool(false), .null])]))
    }
}
