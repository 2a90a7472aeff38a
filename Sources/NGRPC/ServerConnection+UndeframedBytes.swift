/// Request bytes that arrive while a handler's queue is over its limit are kept as they came, not
/// de-framed: a de-framed message costs a heap allocation and a queue slot whatever its size, so
/// a flood of empty or one-byte messages sent within the window we still owed grew ten times its
/// wire size (a connection of 100 such streams took 1.9 GB). Raw, they weigh what they weighed on
/// the wire, at most the stream window we hold back meanwhile. They are de-framed, a slice at a
/// time, as the handler drains its queue (`ServerStream.runOnLoop`), and an end of request that
/// came after them waits for them.
extension ServerConnection {
    /// A slice small enough that the messages it holds cannot amplify far past the queue's limit.
    static let undeframedSlice = 16 * 1024

    /// Feeds held bytes to the de-framer while the handler's queue is within its limit (when
    /// `closing`: up to one stream window past it, so what the client sent before closing is still
    /// read, within reason).
    func deframeUndeframedBytes(of stream: ServerStream, closing: Bool = false) {
        guard let inbound = stream.inbound else { return }
        let allowance = closing ? configuration.inboundBufferLimit + configuration.initialStreamWindowSize : 0
        var offset = 0
        while offset < stream.undeframed.count, inbound.isWithinLimit(plus: allowance), !stream.aborted {
            let end = min(offset + Self.undeframedSlice, stream.undeframed.count)
            var failure: MessageDeframer.Failure?
            stream.undeframed[offset..<end].withUnsafeBytes { bytes in
                do throws(MessageDeframer.Failure) {
                    try stream.deframer.process(bytes) { inbound.push($0) }
                } catch {
                    failure = error
                }
            }
            if let failure {
                stream.abort(Self.status(for: failure, limit: configuration.maxReceiveMessageSize))
                return
            }
            offset = end
            if !closing, settleReceiveBudget(stream) == .refused { return }
        }
        if offset == stream.undeframed.count {
            stream.undeframed = []
        } else {
            stream.undeframed.removeFirst(offset)
            // Over the limit again: run again once the handler drains. (The notification that
            // started this pass is spent, and with the window held no DATA comes to restart it:
            // a Collect sent 20,000 empty messages hung for good.)
            if !closing { inbound.requestDrainNotification() }
        }
        if stream.undeframed.isEmpty && stream.requestEndDeferred && !closing {
            stream.requestEndDeferred = false
            requestEnded(streamID: stream.id)
        }
    }
}
