import Foundation
import Logging
import OrchestratorApp
import PostgresClient
import Synchronization

/// `ChangeFeed` over PostgreSQL LISTEN/NOTIFY.
///
/// The store's transactions NOTIFY `orchestrator_tasks_ready` when tasks became ready and
/// `orchestrator_events` (payload: last sequence) when events were appended; notifications are
/// transactional, so they arrive after the commit and never for rolled-back work. One listener
/// connection serves every subscriber. After the listener reconnects (notifications sent meanwhile
/// are lost), every subscriber gets both signals, with `upTo: 0` meaning "unknown": re-read.
///
/// Threading: `subscribers` is guarded by its mutex; the pump task is the only reader of the
/// listener's events.
public final class PostgresChangeFeed: ChangeFeed {
    private let listener: PostgresListener
    private let configuration: StoreConfiguration
    private let subscribers = Mutex<[UInt64: AsyncStream<ChangeSignal>.Continuation]>([:])
    private let nextID = Atomic<UInt64>(0)
    private let pump = Mutex<Task<Void, Never>?>(nil)

    /// Connects the listener (in the background); call `start()` before relying on signals.
    public init(conninfo: String, configuration: StoreConfiguration = StoreConfiguration(), logger: Logger = Logger(label: "store.changefeed")) throws {
        self.configuration = configuration
        listener = try PostgresListener(conninfo: conninfo, logger: logger)
    }

    deinit { close() }

    /// Listens on both channels; returns once the server confirmed.
    public func start() async throws {
        try await listener.listen(configuration.tasksReadyChannel)
        try await listener.listen(configuration.eventsChannel)
        pump.withLock { task in
            guard task == nil else { return }
            let events = listener.events
            let configuration = configuration
            task = Task { [weak self] in
                for await event in events {
                    guard let self else { return }
                    switch event {
                    case .notification(let notification):
                        if notification.channel == configuration.tasksReadyChannel {
                            self.broadcast(.tasksReady)
                        } else if notification.channel == configuration.eventsChannel {
                            self.broadcast(.eventsAppended(upTo: Int64(notification.payload) ?? 0))
                        }
                    case .reconnected:
                        self.broadcast(.tasksReady)
                        self.broadcast(.eventsAppended(upTo: 0))
                    }
                }
            }
        }
    }

    public func subscribe() -> AsyncStream<ChangeSignal> {
        let id = nextID.add(1, ordering: .relaxed).newValue
        let (stream, continuation) = AsyncStream.makeStream(of: ChangeSignal.self, bufferingPolicy: .bufferingNewest(1024))
        continuation.onTermination = { [weak self] _ in
            _ = self?.subscribers.withLock { $0.removeValue(forKey: id) }
        }
        subscribers.withLock { $0[id] = continuation }
        return stream
    }

    /// Stops listening and ends every subscriber's stream.
    public func close() {
        listener.close()
        pump.withLock { $0?.cancel() }
        let continuations = subscribers.withLock { subscribers in
            defer { subscribers.removeAll() }
            return Array(subscribers.values)
        }
        for continuation in continuations { continuation.finish() }
    }

    private func broadcast(_ signal: ChangeSignal) {
        let continuations = subscribers.withLock { Array($0.values) }
        for continuation in continuations { continuation.yield(signal) }
    }
}
