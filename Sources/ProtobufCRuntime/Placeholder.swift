// Owns: protobuf-c bridging for generated wrappers.
