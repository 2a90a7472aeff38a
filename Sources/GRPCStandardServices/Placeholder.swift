// Owns: grpc.health.v1 and server reflection.
