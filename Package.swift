// swift-tools-version:6.0
// Orchestrator: a workflow orchestrator speaking gRPC over nghttp2 + libevent + OpenSSL,
// storing its state in PostgreSQL through libpq. See docs/ARCHITECTURE.md for the layers.
import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny")
]

let package = Package(
    name: "Orchestrator",
    products: [
        .executable(name: "orchestratord", targets: ["orchestratord"]),
        .executable(name: "orchctl", targets: ["orchctl"]),
        .library(name: "NGRPC", targets: ["NGRPC"]),
        .library(name: "OrchestratorDomain", targets: ["OrchestratorDomain"]),
        // Used by tools/bench-peer, whose grpc-swift-2 server runs our planning code for PlanWorkflow.
        .library(name: "OrchestratorAPI", targets: ["OrchestratorAPI"]),
        .library(name: "OrchestratorGRPC", targets: ["OrchestratorGRPC"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
    ],
    targets: [
        // C libraries: one module map and one shim header each, nothing else.
        .systemLibrary(name: "CNGHTTP2", providers: [.apt(["libnghttp2-dev"])]),
        .systemLibrary(name: "CLibevent", providers: [.apt(["libevent-dev", "libssl-dev"])]),
        .systemLibrary(name: "CLibPQ", providers: [.apt(["libpq-dev"])]),
        .systemLibrary(name: "CProtobufC", providers: [.apt(["libprotobuf-c-dev"])]),
        .systemLibrary(name: "CZlib", providers: [.apt(["zlib1g-dev"])]),
        // Tiny C functions wrapping macros and variadic C APIs that Swift cannot call.
        .target(name: "CNGRPCShims", dependencies: ["CLibevent", "CNGHTTP2"]),

        // protoc-c output and the Swift wrappers generated from protos/ by tools/gen. Never edited by hand.
        .target(
            name: "CGeneratedProtos",
            dependencies: ["CProtobufC"],
            path: "generated/c",
            // No Swift file imports CProtobufC, so its module map's `link` never autolinks.
            linkerSettings: [.linkedLibrary("protobuf-c")]
        ),
        .target(
            name: "OrchestratorAPI",
            dependencies: ["CGeneratedProtos", "ProtobufCRuntime", "NGRPC"],
            path: "generated/swift",
            swiftSettings: swiftSettings
        ),
        // Runtime support shared by every generated wrapper (arenas, string/bytes bridging, pack/unpack).
        .target(name: "ProtobufCRuntime", dependencies: ["CProtobufC"], swiftSettings: swiftSettings),

        // The gRPC-compatible RPC layer: knows streams, messages, metadata, deadlines and status codes,
        // nothing about workflows.
        .target(
            name: "NGRPC",
            dependencies: [
                "CNGHTTP2", "CLibevent", "CZlib", "CNGRPCShims",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // grpc.health.v1.Health and server reflection, on top of NGRPC and the generated messages.
        .target(name: "GRPCStandardServices", dependencies: ["NGRPC", "OrchestratorAPI"], swiftSettings: swiftSettings),

        // PostgreSQL through libpq: connections, pool, typed binding, transactions, LISTEN/NOTIFY,
        // pipelining, migrations runner, and the embedded development cluster. Knows no workflows.
        .target(
            name: "PostgresClient",
            dependencies: ["CLibPQ", .product(name: "Logging", package: "swift-log")],
            swiftSettings: swiftSettings
        ),
        // Repositories: the storage protocols the application needs, implemented in SQL.
        .target(
            name: "OrchestratorStore",
            dependencies: ["PostgresClient", "OrchestratorApp", "OrchestratorDomain", .product(name: "Logging", package: "swift-log")],
            // The SQL files are compiled into the binary (PackageResources), so a shipped orchestratord
            // needs no resource bundle beside it.
            resources: [.embedInCode("Migrations")],
            swiftSettings: swiftSettings
        ),

        // The application: submission, planning, dispatch and leases, watch fan-out, written against
        // the storage protocols it declares (implemented by OrchestratorStore, faked in memory for tests).
        .target(
            name: "OrchestratorApp",
            dependencies: ["OrchestratorDomain", "OrchestratorTracing", "OrchestratorMetrics", .product(name: "Logging", package: "swift-log")],
            swiftSettings: swiftSettings
        ),
        // The gRPC edge: generated service providers implemented on OrchestratorApp; maps messages to
        // domain values and typed errors to gRPC status codes.
        .target(
            name: "OrchestratorGRPC",
            dependencies: ["OrchestratorTracing", "OrchestratorApp", "OrchestratorDomain", "OrchestratorAPI", "NGRPC", "OrchestratorAuth",
                           .product(name: "Logging", package: "swift-log")],
            swiftSettings: swiftSettings
        ),

        // Spans, W3C trace context, sampling, and OTLP/HTTP (JSON) export on a thread of its own.
        // Knows no RPC layer, database or workflow: the application and the server feed it.
        .target(name: "OrchestratorTracing", dependencies: [], swiftSettings: swiftSettings),

        // Counters, gauges and histograms with labels, and the Prometheus text format. No
        // dependencies, so any layer can record into it.
        .target(name: "OrchestratorMetrics", swiftSettings: swiftSettings),
        // JSON logs with a runtime-changeable level, the admin HTTP server (evhttp) with health,
        // readiness and metrics endpoints, and the RPC metrics interceptor.
        .target(
            name: "OrchestratorObservability",
            dependencies: ["OrchestratorMetrics", "NGRPC", "CLibevent", .product(name: "Logging", package: "swift-log")],
            swiftSettings: swiftSettings
        ),

        // JSON Web Tokens: compact JWS, HS256/RS256/ES256 with OpenSSL (headers from CLibevent),
        // key files and JWKS, claims, minting. Knows no gRPC and no workflows.
        .target(name: "OrchestratorAuth", dependencies: ["CLibevent"], swiftSettings: swiftSettings),

        // The workflow domain: pure Swift, no C, no I/O.
        .target(name: "OrchestratorDomain", swiftSettings: swiftSettings),

        .executableTarget(
            name: "orchestratord",
            dependencies: [
                "OrchestratorTracing",
                "NGRPC", "OrchestratorAPI", "GRPCStandardServices", "OrchestratorDomain",
                "OrchestratorApp", "OrchestratorGRPC", "OrchestratorStore", "PostgresClient", "OrchestratorAuth",
                "OrchestratorMetrics", "OrchestratorObservability",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "orchctl",
            dependencies: [
                "OrchestratorTracing",
                "NGRPC", "OrchestratorAPI", "OrchestratorDomain", "OrchestratorGRPC", "OrchestratorAuth",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: swiftSettings
        ),
        // Test support: an echo/streaming gRPC server used by the interop tests and tools/bench rpc.
        .executableTarget(
            name: "InteropTestServer",
            dependencies: [
                "NGRPC", "OrchestratorAPI", "GRPCStandardServices",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),

        // Benchmark driver for `tools/bench domain` (graph analysis on a generated DAG).
        .executableTarget(name: "DomainBench", dependencies: ["OrchestratorDomain"], swiftSettings: swiftSettings),
        // Benchmark driver for `tools/bench store` (repositories on PostgreSQL; pgbench comparison in the script).
        .executableTarget(
            name: "StoreBench", dependencies: ["OrchestratorStore", "OrchestratorApp", "OrchestratorDomain", "PostgresClient"],
            swiftSettings: swiftSettings),
        // Load generator for `tools/bench dispatch|latency|workflow100k` (a real orchestratord over gRPC).
        .executableTarget(
            name: "DispatchBench", dependencies: ["NGRPC", "OrchestratorAPI", "PostgresClient"], swiftSettings: swiftSettings),
        // Fuzz targets (docs/FUZZING.md, tools/fuzz): their logic in one library, shared by the four
        // executables (libFuzzer entry point, or a replay main in a normal build) and the regression test.
        .target(
            name: "FuzzTargets",
            dependencies: [
                "NGRPC", "OrchestratorAPI", "OrchestratorApp", "OrchestratorDomain", "OrchestratorGRPC", "OrchestratorAuth",
                "CLibevent", .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings),
        .executableTarget(name: "FuzzFraming", dependencies: ["FuzzTargets"], swiftSettings: swiftSettings),
        .executableTarget(name: "FuzzRequestDecoding", dependencies: ["FuzzTargets"], swiftSettings: swiftSettings),
        .executableTarget(name: "FuzzDagValidation", dependencies: ["FuzzTargets"], swiftSettings: swiftSettings),
        .executableTarget(name: "FuzzJWT", dependencies: ["FuzzTargets"], swiftSettings: swiftSettings),

        .testTarget(name: "FuzzRegressionTests", dependencies: ["FuzzTargets"], swiftSettings: swiftSettings),
        .target(name: "TestSupport", path: "Tests/TestSupport", swiftSettings: swiftSettings),
        .testTarget(name: "NGRPCTests", dependencies: ["NGRPC", "TestSupport"], swiftSettings: swiftSettings),
        .testTarget(name: "OrchestratorTracingTests", dependencies: ["OrchestratorTracing"], swiftSettings: swiftSettings),
        .testTarget(name: "PostgresClientTests", dependencies: ["PostgresClient", "TestSupport"], swiftSettings: swiftSettings),
        .testTarget(
            name: "OrchestratorStoreTests", dependencies: ["OrchestratorStore", "PostgresClient", "OrchestratorDomain", "TestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(name: "OrchestratorAppTests", dependencies: ["OrchestratorApp", "OrchestratorDomain", "OrchestratorMetrics", "OrchestratorTracing"], swiftSettings: swiftSettings),
        .testTarget(
            name: "OrchestratorObservabilityTests",
            dependencies: ["OrchestratorObservability", "OrchestratorMetrics", "NGRPC", .product(name: "Logging", package: "swift-log")],
            swiftSettings: swiftSettings
        ),
        .testTarget(name: "OrchestratorAuthTests", dependencies: ["OrchestratorAuth"], swiftSettings: swiftSettings),
        .testTarget(name: "OrchestratorDomainTests", dependencies: ["OrchestratorDomain"], swiftSettings: swiftSettings),
        .testTarget(name: "OrchestratorGRPCTests", dependencies: ["OrchestratorGRPC", "OrchestratorAPI", "OrchestratorDomain", "OrchestratorApp", "NGRPC", "OrchestratorAuth"], swiftSettings: swiftSettings),
        .testTarget(
            name: "OrchestratorAPITests",
            dependencies: ["OrchestratorAPI", "GRPCStandardServices", "NGRPC"],
            swiftSettings: swiftSettings
        ),
    ],
    swiftLanguageModes: [.v6]
)
