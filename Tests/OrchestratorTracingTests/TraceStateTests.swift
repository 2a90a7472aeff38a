import Testing

import OrchestratorTracing

/// What the server keeps of a caller's `tracestate` (W3C Trace Context §3.3) to pass on to executors.
@Suite("W3C tracestate kept with a workflow")
struct TraceStateTests {
    @Test func validHeadersPassAsTheyAreWithoutBlankMembers() {
        #expect(TraceState.propagated("congo=t61rcWkgMzE") == "congo=t61rcWkgMzE")
        #expect(TraceState.propagated("rojo=00f067aa0ba902b7,congo=t61rcWkgMzE") == "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE")
        #expect(TraceState.propagated(" rojo=1 ,\t, congo=2,") == "rojo=1,congo=2")
        #expect(TraceState.propagated("tenant@vendor=x y z") == "tenant@vendor=x y z")
        #expect(TraceState.propagated("a-b_c*d/e=v") == "a-b_c*d/e=v")
        #expect(TraceState.propagated("k=spaced out ") == "k=spaced out")  // blanks around a member are not its value
    }

    @Test func nothingOrNothingValidIsNil() {
        #expect(TraceState.propagated(nil) == nil)
        #expect(TraceState.propagated("") == nil)
        #expect(TraceState.propagated(" , ,") == nil)
    }

    @Test func oneMalformedMemberDropsTheWholeHeader() {
        for header in [
            "Upper=1", "novalue", "=v", "k=", "k=a=b", "a@b@c=1", "k@=1", "_k=1", "k=caf\u{e9}", "ok=1,bad key=2",
            "k=\u{1}",
        ] {
            #expect(TraceState.propagated(header) == nil, "\(header)")
        }
        #expect(TraceState.propagated(String(repeating: "k", count: 257) + "=v") == nil)
        #expect(TraceState.propagated("k=" + String(repeating: "v", count: 257)) == nil)
    }

    @Test func moreThan32MembersIsDropped() {
        let members = (0..<33).map { "k\($0)=v" }
        #expect(TraceState.propagated(members.joined(separator: ",")) == nil)
        #expect(TraceState.propagated(members.dropLast().joined(separator: ",")) == members.dropLast().joined(separator: ","))
    }

    @Test func longHeadersLoseMembersOver128CharactersFirstThenFromTheEnd() throws {
        let big = "big=" + String(repeating: "b", count: 200)
        let small = (0..<20).map { "s\($0)=" + String(repeating: "x", count: 20) }
        // 20 × 23 + 19 commas = 479 characters without the big member: dropping it is enough.
        let kept = try #require(TraceState.propagated(([big] + small).joined(separator: ",")))
        #expect(kept == small.joined(separator: ","))
        // Without any member over 128 characters, members go from the end until it fits.
        let many = (0..<30).map { "m\($0)=" + String(repeating: "y", count: 20) }
        let cut = try #require(TraceState.propagated(many.joined(separator: ",")))
        #expect(cut.utf8.count <= TraceState.maxLength)
        #expect(cut == many.prefix(cut.split(separator: ",").count).joined(separator: ","))
        // m0…m9 take 23 characters, m10… 24: 20 members and 19 commas are 489; 21 would be 514.
        #expect(cut.split(separator: ",").count == 20)
    }
}
