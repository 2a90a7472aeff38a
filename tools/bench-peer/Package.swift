// swift-tools-version:6.1
// Benchmark-only peer for `tools/bench rpc`: a grpc-swift-2 echo server serving
// /orchestrator.testing.v1.Echo/Get over h2c. It is never a dependency of the product;
// tools/bench.d/rpc builds it with its own scratch path (tools/bench-peer/.build).
import PackageDescription

let package = Package(
    name: "BenchPeer",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(url: "https://github.com/grpc/grpc-swift-2", exact: "2.4.3"),
        .package(url: "https://github.com/grpc/grpc-swift-nio-transport", exact: "2.9.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        // The product itself, for PlanService: the peer runs our planning code behind grpc-swift-2.
        .package(name: "Orchestrator", path: "../.."),
    ],
    targets: [
        .executableTarget(
            name: "EchoPeer",
            dependencies: [
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
                .product(name: "OrchestratorAPI", package: "Orchestrator"),
                .product(name: "OrchestratorGRPC", package: "Orchestrator"),
                .product(name: "Logging", package: "swift-log"),
            ]
        )
    ],
    swiftLanguageModes: [.v6]
)
