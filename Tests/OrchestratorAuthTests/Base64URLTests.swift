import Testing

@testable import OrchestratorAuth

@Suite struct Base64URLTests {
    @Test func roundTripsEveryLength() {
        for length in 0..<40 {
            let bytes = (0..<length).map { UInt8(truncatingIfNeeded: $0 * 37 + 11) }
            #expect(Base64URL.decode(Base64URL.encode(bytes)) == bytes)
        }
    }

    @Test(arguments: ["YQ==", "YQ=", "Y Q", "Y+Q", "Y/Q", "Y", "YR"])
    func refusesNonCanonicalText(_ text: String) {
        #expect(Base64URL.decode(text) == nil)
    }
}
