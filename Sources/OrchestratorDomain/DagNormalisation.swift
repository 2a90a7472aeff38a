extension Dag {
    /// The graph with repeated identical edges removed (first occurrence kept, order preserved).
    /// Listing a dependency twice is harmless to the author but would double-count it in the readiness
    /// counters, so planners drop the repeats instead of rejecting the graph.
    public func removingDuplicateEdges() -> (dag: Dag, removed: Int) {
        var seen = Set<Edge>(minimumCapacity: edges.count)
        var kept: [Edge] = []
        kept.reserveCapacity(edges.count)
        for edge in edges where seen.insert(edge).inserted { kept.append(edge) }
        return (Dag(tasks: tasks, edges: kept), edges.count - kept.count)
    }
}
