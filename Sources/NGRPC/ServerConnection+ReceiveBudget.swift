internal import CNGHTTP2

/// Memory for partly received request messages. A message whose body does not arrive in one read
/// is buffered until it is whole (up to `maxReceiveMessageSize`), so without a budget every stream
/// of every connection could hold one: 100 streams × 4 MiB per connection, from a client that
/// never finishes them. A stream reserves the declared length of such a message when a read
/// leaves it partial, and gives it back when the message completes or the call ends. Messages
/// that arrive whole within one read (nearly all) reserve nothing.
///
/// On a connection, a message that does not fit waits: its stream's window is not returned, so
/// the client stops sending on it (what it may still send is bounded by the initial window) until
/// earlier messages complete. Waiters are served oldest first, and an empty budget always holds
/// the largest message, so a client that completes its messages always makes progress. Across the
/// server, a message that does not fit is refused RESOURCE_EXHAUSTED instead: waiting there would
/// let one connection's stalled client hold up every other connection's calls.
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

    /// After the deframer took a read of `stream`: reserve, keep or give back what its partial
    /// message needs. Cheap when nothing changed (a message that arrived whole).
    func settleReceiveBudget(_ stream: ServerStream) -> ReceiveBudgetDecision {
        let needed = stream.deframer.partialMessageLength
        if stream.awaitingReceiveBudget {
            // Its message completed within the window it still had: nothing left to wait for.
            guard needed == 0 else { return .hold }
            stopWaiting(stream)
            return .proceed
        }
        guard needed != stream.receiveReservation else { return .proceed }
        let released = releaseReservation(of: stream)
        var decision = ReceiveBudgetDecision.proceed
        if needed > 0 {
            if streamsAwaitingReceiveBudget.isEmpty && partialRequestBytes + needed <= core.connectionReceiveBudget {
                if !reserve(needed, for: stream) { decision = .refused }
            } else {
                stream.awaitingReceiveBudget = true
                streamsAwaitingReceiveBudget.append(stream)
                decision = .hold
            }
        }
        if released { serveStreamsAwaitingReceiveBudget() }
        return decision
    }

    /// The call ended (aborted, finished or closed): its reservation and place in line go, and so
    /// does its partial message.
    func receiveBudgetStreamEnded(_ stream: ServerStream) {
        stream.deframer.discard()
        if stream.awaitingReceiveBudget {
            stream.awaitingReceiveBudget = false
            streamsAwaitingReceiveBudget.removeAll { $0 === stream }
        }
        if releaseReservation(of: stream) { serveStreamsAwaitingReceiveBudget() }
    }

    private func releaseReservation(of stream: ServerStream) -> Bool {
        let reserved = stream.receiveReservation
        guard reserved > 0 else { return false }
        stream.receiveReservation = 0
        partialRequestBytes -= reserved
        core.partialRequestBytes.wrappingSubtract(reserved, ordering: .relaxed)
        return true
    }

    /// Takes `needed` bytes of this connection's and the server's budget, or refuses the message
    /// (RESOURCE_EXHAUSTED, the call aborted) when the server's is spent.
    private func reserve(_ needed: Int, for stream: ServerStream) -> Bool {
        let total = core.partialRequestBytes.wrappingAdd(needed, ordering: .relaxed).newValue
        guard total <= core.serverReceiveBudget else {
            core.partialRequestBytes.wrappingSubtract(needed, ordering: .relaxed)
            core.partialRequestsRefused.wrappingAdd(1, ordering: .relaxed)
            logger.info(
                "request message refused: server receive buffer full",
                metadata: ["peer": "\(peer)", "message_bytes": "\(needed)", "limit": "\(core.serverReceiveBudget)"])
            stream.abort(
                RPCStatus(
                    .resourceExhausted,
                    "the server already holds \(total - needed) bytes of partly received request messages; "
                        + "this \(needed)-byte message would pass its limit of \(core.serverReceiveBudget) bytes; retry later"))
            return false
        }
        partialRequestBytes += needed
        stream.receiveReservation = needed
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
            if needed > 0 && !reserve(needed, for: first) { continue }
            returnHeldWindow(of: first)
        }
    }

    private func stopWaiting(_ stream: ServerStream) {
        stream.awaitingReceiveBudget = false
        streamsAwaitingReceiveBudget.removeAll { $0 === stream }
        returnHeldWindow(of: stream)
    }

    /// The window held while the stream waited goes back, unless its handler is behind too (then
    /// `runOnLoop` returns it once the handler drains its queue).
    private func returnHeldWindow(of stream: ServerStream) {
        guard stream.heldWindow > 0, let session else { return }
        if let inbound = stream.inbound, !inbound.isWithinLimit {
            inbound.requestDrainNotification()
            return
        }
        nghttp2_session_consume_stream(session, stream.id, stream.heldWindow)
        stream.heldWindow = 0
        requestFlush()
    }
}
