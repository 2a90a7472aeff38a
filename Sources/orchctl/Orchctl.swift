import ArgumentParser
import Foundation
import OrchestratorGRPC

/// The entry point: runs `Orchctl` (connection options accepted before the subcommand too:
/// `LeadingOptions`) and, as the process exits, checks that what ArgumentParser itself printed
/// (`--version`, `--help`) reached standard output (`orchctl --version > /dev/full` exited 0).
@main
enum OrchctlMain {
    static func main() async {
        atexit { Output.exitFailingIfStandardOutputFailed() }
        let arguments = Array(CommandLine.arguments.dropFirst())
        let subcommands = Orchctl.configuration.subcommands.map { $0._commandName }
        if let problem = LeadingOptions.problem(arguments, subcommands: subcommands, local: [TokenCommand._commandName]) {
            Orchctl.exit(withError: ValidationError(problem))
        }
        await Orchctl.main(LeadingOptions.reordered(arguments))
    }
}

/// `orchctl`: the command-line client of orchestratord, and the manual test harness.
struct Orchctl: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "orchctl",
        abstract: "Submit, plan, inspect, watch and cancel workflows; run a sample executor.",
        version: OrchestratorRelease.version,
        subcommands: [
            SubmitCommand.self, PlanCommand.self, GetCommand.self, ListCommand.self, WatchCommand.self,
            DagCommand.self, CancelCommand.self, ExecutorCommand.self, EventsCommand.self, TokenCommand.self,
            TraceCommand.self,
        ]
    )
}

/// Options every subcommand shares: where the server is and how to reach it.
struct ConnectionOptions: ParsableArguments {
    @Option(name: .long, help: "orchestratord's gRPC address (env ORCHESTRATOR_ADDRESS).")
    var address: String = ProcessEnvironment.value("ORCHESTRATOR_ADDRESS") ?? "127.0.0.1:50051"

    @Flag(name: .long, help: "Use TLS (ALPN h2).")
    var tls = false

    @Option(name: [.customLong("ca-file"), .customLong("tls-ca-file")], help: "PEM file of the CA that signed the server's certificate (implies --tls).")
    var caFile: String?

    @Option(name: .customLong("tls-cert-file"), help: "PEM client certificate chain for servers that require one (mutual TLS; implies --tls; env ORCHESTRATOR_CLIENT_CERT_FILE).")
    var certFileOption: String?
    var certFile: String? { certFileOption ?? ProcessEnvironment.value("ORCHESTRATOR_CLIENT_CERT_FILE") }

    @Option(name: .customLong("tls-key-file"), help: "PEM private key of --tls-cert-file (env ORCHESTRATOR_CLIENT_KEY_FILE).")
    var keyFileOption: String?
    var keyFile: String? { keyFileOption ?? ProcessEnvironment.value("ORCHESTRATOR_CLIENT_KEY_FILE") }

    @Flag(name: .long, help: "With TLS, skip certificate verification (development only).")
    var insecureSkipVerify = false

    @Option(name: .customLong("token"), help: "Bearer token sent as `authorization` metadata (env ORCHESTRATOR_TOKEN).")
    var tokenOption: String?
    var token: String? { tokenOption ?? ProcessEnvironment.value("ORCHESTRATOR_TOKEN") }

    /// Optional, so that a long-lived watch can tell "not given" (no deadline: it follows until
    /// the workflow finishes) from a deadline the user asked for (found by black-box testing: an
    /// explicit `watch --timeout 3` ran on).
    @Option(
        name: .long, parsing: .unconditional,
        help: ArgumentHelp(
            "Deadline of each call in seconds (default 30; `watch` and `submit --watch` follow without one unless given; "
                + "`executor`'s stream never has one)."))
    var timeout: Double?

    static let defaultTimeout: Double = 30

    func validate() throws {
        if let timeout, !(timeout > 0 && timeout.isFinite) {
            throw ValidationError("--timeout must be a number of seconds above 0, not \(timeout)")
        }
    }
}
