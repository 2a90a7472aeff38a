// StoreBench: the store's numbers for `tools/bench store` (see tools/bench.d/store).
//
//   StoreBench --database-url URL [--workers "1 8 32"] [--tasks N] [--seconds S] [--batch B] [--concurrent-batches C] [--sequential-reports] [--skip-dag]
//
// Prints `store-bench-dag …` (storing a 100,000-task DAG) and one `store-bench-claim …` line per
// worker count (claim a batch, complete each task, repeat; on a DAG of independent tasks).
import Foundation
import OrchestratorApp
import OrchestratorDomain
import OrchestratorStore
import PostgresClient

let options = BenchOptions.parse(CommandLine.arguments.dropFirst())
let pool = PostgresPool(configuration: PostgresPoolConfiguration(conninfo: options.databaseURL, maxConnections: options.maxWorkers + 1))
_ = try await Migrator(migrations: OrchestratorMigrations.all).migrate(using: pool)
let store = PostgresDispatchAndWorkflows(
    pool: pool, configuration: StoreConfiguration(concurrentBatches: options.concurrentBatches))

if !options.skipDag {
    let dagMillis = try await StoreScenarios.storeLargeDag(store)
    print("store-bench-dag tasks=100000 edges=198000 store_ms=\(dagMillis)")
}

for workers in options.workers {
    let before = store.dispatch.batchStatistics
    let rate = try await StoreScenarios.claimComplete(
        store, workers: workers, tasks: options.tasks, seconds: options.seconds, batch: options.batch,
        sequentialReports: options.sequentialReports)
    let after = store.dispatch.batchStatistics
    let perCompletionBatch = Double(after.completions.requests - before.completions.requests)
        / Double(max(1, after.completions.batches - before.completions.batches))
    let perClaimBatch = Double(after.claims.requests - before.claims.requests) / Double(max(1, after.claims.batches - before.claims.batches))
    print(
        "store-bench-claim workers=\(workers) claim_complete_per_s=\(Int(rate.rounded())) batch=\(options.batch)"
            + " reports=\(options.sequentialReports ? "sequential" : "concurrent")"
            + " completions_per_txn=\(String(format: "%.1f", perCompletionBatch)) claims_per_txn=\(String(format: "%.1f", perClaimBatch))")
}
pool.close()
