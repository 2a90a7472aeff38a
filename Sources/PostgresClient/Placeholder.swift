// PostgresClient: libpq wrapper. Placeholder until written.
