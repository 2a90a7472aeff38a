import Foundation
import OrchestratorAPI
import Testing

@Suite("Random messages")
struct RandomRoundTripTests {
    typealias Everything = Orchestrator_Testing_V1_Everything

    @Test(arguments: [1, 2, 3, 4] as [UInt64])
    func roundTripThroughProtobufC(seed: UInt64) throws {
        var random = RandomMessages(seed: seed)
        for _ in 0..<250 {
            let message = random.everything()
            #expect(try Everything(serializedBytes: message.serializedBytes()) == message)
        }
    }

    /// Swift encodes, the official Python runtime (from the project's .venv) parses and
    /// re-encodes, Swift decodes: equality means Python read every field Swift wrote.
    @Test(.enabled(if: PythonRuntime.python != nil, "needs .venv/bin/python (tools/lib/common.sh ensure_venv)"))
    func pythonReadsWhatSwiftWrites() throws {
        let python = try #require(PythonRuntime.python)
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("codegen-\(UInt64.random(in: 0...UInt64.max))")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }

        let descriptor = try #require(GeneratedDescriptors.files.first { $0.name == "orchestrator/testing/v1/codegen_test.proto" })
        try Data(descriptor.serializedBytes).write(to: folder.appendingPathComponent("descriptor.pb"))
        var random = RandomMessages(seed: 42)
        let messages = (0..<100).map { _ in random.everything() }
        for (index, message) in messages.enumerated() {
            try Data(try message.serializedBytes()).write(to: folder.appendingPathComponent("in-\(index).bin"))
        }

        let process = Process()
        process.executableURL = python
        process.arguments = ["-c", PythonRuntime.reencodeScript, folder.path, String(messages.count)]
        try process.run()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)

        for (index, message) in messages.enumerated() {
            let bytes = try Data(contentsOf: folder.appendingPathComponent("out-\(index).bin"))
            #expect(try Everything(serializedBytes: [UInt8](bytes)) == message, "message \(index)")
        }
    }
}

enum PythonRuntime {
    /// The repository's virtualenv Python, found from this file's path.
    static let python: URL? = {
        var folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        for _ in 0..<4 {
            let candidate = folder.appendingPathComponent(".venv/bin/python")
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
            folder.deleteLastPathComponent()
        }
        return nil
    }()

    static let reencodeScript = """
        import sys
        from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
        folder, count = sys.argv[1], int(sys.argv[2])
        pool = descriptor_pool.DescriptorPool()
        pool.Add(descriptor_pb2.FileDescriptorProto.FromString(open(folder + "/descriptor.pb", "rb").read()))
        Everything = message_factory.GetMessageClass(pool.FindMessageTypeByName("orchestrator.testing.v1.Everything"))
        for i in range(count):
            message = Everything.FromString(open(f"{folder}/in-{i}.bin", "rb").read())
            open(f"{folder}/out-{i}.bin", "wb").write(message.SerializeToString(deterministic=True))
        """
}
