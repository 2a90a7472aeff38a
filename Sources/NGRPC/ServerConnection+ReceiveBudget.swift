internal import CNGHTTP2

/// Memory for partly received request messages. A message whose body does not arrive in one read
/// is buffered until it is whole (up to `maxReceiveMessageSize`), so without a budget every stream
/// of every connection could hold one: 100 streams × 4 MiB per connection, from a client that
/// never finishes them.
///
/// On a connection, a stream reserves the declared length of such a message when a read leaves it
/// partial, and gives it back when the message completes or the call ends. A message that does
/// not fit waits: its stream's window is not returned, so the client stops sending on it (what it
/// may still send is bounded by the initial window) until earlier messages complete. Waiters are
/// served oldest first, and an empty budget always holds the largest message, so a client that
/// completes its messages always makes progress.
///
/// Across the server, what counts is the bytes actually buffered in partial messages, not their
/// declared lengths: declared lengths cost an attacker 5 bytes each (64 connections sending
/// nothing but length prefixes filled a 1 GiB budget with 13 KB). A read that would take the
/// total past the limit ends its call RESOURCE_EXHAUSTED instead of waiting, which would let one
/// connection's stalled client hold up every other connection's calls.
///
/// All on the connection's loop thread; only the server-wide total is shared (an atomic).
extension ServerConnection {
    enum ReceiveBudgetDecision {
        /// Return the stream's window as usual.
        case proceed
        /// Keep the window: the stream waits for budget.
        case hold
        /// The message was refused and the call aborted: return the window, ignore the bytes.
        case refused
    }

    /// After the deframer took a read of `stream`: charge the server for what its partial message
    /// now buffers, and reserve, keep or give back the connection's share. Cheap when nothing
    /// changed (a message that arrived whole).
    func settleReceiveBudget(_ stream: ServerStream) -> ReceiveBudgetDecision {
        let buffered = stream.deframer.partialBodyBytes
        if buffered != stream.serverCharge, !charge(stream, buffered) { return .refused }
        let needed = stream.deframer.partialMessageLength
        if stream.awaitingReceiveBudget {
            // Its message completed within the window it still had: nothing left to wait for.
            guard needed == 0 else { return .hold }
            stopWaiting(stream)
            serveStreamsAwaitingReceiveBudget()
            return .proceed
        }
        guard needed != stream.receiveReservation else { return .proceed }
        let released = releaseReservation(of: stream)
        var decision = ReceiveBudgetDecision.proceed
        if needed > 0 {
            if streamsAwaitingReceiveBudget.isEmpty && partialRequestBytes + needed <= core.connectionReceiveBudget {
                partialRequestBytes += needed
                stream.receiveReservation = needed
            } else {
                stream.awaitingReceiveBudget = true
                streamsAwaitingReceiveBudget.append(stream)
                decision = .hold
            }
        }
        if released { serveStreamsAwaitingReceiveBudget() }
        return decision
    }

    /// The call ended (aborted, finished or closed): its charge, reservation and place in line go,
    /// and so does its partial message.
    func receiveBudgetStreamEnded(_ stream: ServerStream) {
        stream.deframer.discard()
        stream.undeframed = []
        if stream.serverCharge > 0 {
            core.partialRequestBytes.wrappingSubtract(stream.serverCharge, ordering: .relaxed)
            stream.serverCharge = 0
        }
        let wasWaiting = stream.awaitingReceiveBudget
        if wasWaiting {
            stream.awaitingReceiveBudget = false
            streamsAwaitingReceiveBudget.removeAll { $0 === stream }
        }
        // A waiter leaving frees nothing, but those behind it may fit where it did not.
        if releaseReservation(of: stream) || wasWaiting { serveStreamsAwaitingReceiveBudget() }
    }

    private func releaseReservation(of stream: ServerStream) -> Bool {
        let reserved = stream.receiveReservation
        guard reserved > 0 else { return false }
        stream.receiveReservation = 0
        partialRequestBytes -= reserved
        return true
    }

    /// Sets the stream's server-wide charge to `buffered` bytes, or refuses its message
    /// (RESOURCE_EXHAUSTED, the call aborted) when that would pass the server's budget.
    private func charge(_ stream: ServerStream, _ buffered: Int) -> Bool {
        let delta = buffered - stream.serverCharge
        let total = core.partialRequestBytes.wrappingAdd(delta, ordering: .relaxed).newValue
        guard delta <= 0 || total <= core.serverReceiveBudget else {
            core.partialRequestBytes.wrappingSubtract(delta, ordering: .relaxed)
            core.partialRequestsRefused.wrappingAdd(1, ordering: .relaxed)
            logger.info(
                "request message refused: server receive buffer full",
                metadata: ["peer": "\(peer)", "buffered_bytes": "\(total - delta)", "limit": "\(core.serverReceiveBudget)"])
            stream.abort(
                RPCStatus(
                    .resourceExhausted,
                    "the server already holds \(total - delta) bytes of partly received request messages, its limit is "
                        + "\(core.serverReceiveBudget) bytes: this message was refused; retry later"))
            return false
        }
        stream.serverCharge = buffered
        return true
    }

    /// Grants waiting streams, oldest first, while their messages fit.
    private func serveStreamsAwaitingReceiveBudget() {
        guard !isClosed else { return }
        while let first = streamsAwaitingReceiveBudget.first {
            let needed = first.deframer.partialMessageLength
            if needed > 0 && partialRequestBytes + needed > core.connectionReceiveBudget { return }
            streamsAwaitingReceiveBudget.removeFirst()
            first.awaitingReceiveBudget = false
            if needed > 0 {
                partialRequestBytes += needed
                first.receiveReservation = needed
            }
            returnHeldWindow(of: first)
        }
    }

    private func stopWaiting(_ stream: ServerStream) {
        stream.awaitingReceiveBudget = false
        streamsAwaitingReceiveBudget.removeAll { $0 === stream }
        returnHeldWindow(of: stream)
    }

    /// The window held while the stream waited goes back, unless its handler is behind too or
    /// bytes it sent are still held raw (then `runOnLoop` returns it once both are through).
    private func returnHeldWindow(of stream: ServerStream) {
        guard stream.heldWindow > 0, let session else { return }
        if let inbound = stream.inbound, !inbound.isWithinLimit || !stream.undeframed.isEmpty {
            inbound.requestDrainNotification()
            return
        }
        nghttp2_session_consume_stream(session, stream.id, stream.heldWindow)
        stream.heldWindow = 0
        requestFlush()
    }
}
