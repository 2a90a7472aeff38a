import Testing
@testable import OrchestratorDomain

@Suite("Graph analysis")
struct GraphAnalysisTests {
    /// branchesAndJoins: a(1) → b(5), c(2) → d(1) → e(1), f(3) → g(1).
    @Test func branchesAndJoins() throws {
        let analysis = GraphAnalysis(try Graphs.validate(CanonicalShape.branchesAndJoins.dag))
        #expect(analysis.topologicalOrder == ["a", "b", "c", "d", "e", "f", "g"])
        #expect(analysis.levels == [["a"], ["b", "c"], ["d"], ["e", "f"], ["g"]])
        #expect(analysis.criticalPath.keys == ["a", "b", "d", "f", "g"])
        #expect(analysis.criticalPath.length == 11)
        #expect(analysis.rank(of: "a") == 11)
        #expect(analysis.rank(of: "c") == 7)
        #expect(analysis.rank(of: "e") == 2)
        #expect(analysis.rank(of: "g") == 1)
        #expect(analysis.rank(of: "zzz") == nil)
        #expect(analysis.level(of: "f") == 3)
        let stats = analysis.statistics
        #expect(stats.taskCount == 7 && stats.edgeCount == 8)
        #expect(stats.sourceCount == 1 && stats.sinkCount == 1)
        #expect(stats.maxFanOut == 2 && stats.maxFanOutTask == "a")
        #expect(stats.maxFanIn == 2 && stats.maxFanInTask == "d")
        #expect(stats.isolatedTasks.isEmpty)
    }

    @Test func linear() throws {
        let analysis = GraphAnalysis(try Graphs.validate(CanonicalShape.linear.dag))
        #expect(analysis.topologicalOrder == ["a", "b", "c"])
        #expect(analysis.levels == [["a"], ["b"], ["c"]])
        #expect(analysis.criticalPath.keys == ["a", "b", "c"])
        #expect(analysis.criticalPath.length == 3)
    }

    @Test func fanOutAndFanIn() throws {
        let out = GraphAnalysis(try Graphs.validate(CanonicalShape.fanOut10k.dag))
        #expect(out.levels.map(\.count) == [1, 10_000])
        #expect(out.statistics.maxFanOut == 10_000)
        #expect(out.criticalPath.keys == ["root", "leaf-0"])
        #expect(out.statistics.fanOutHistogram == [10_000, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1])
        let into = GraphAnalysis(try Graphs.validate(CanonicalShape.fanIn10k.dag))
        #expect(into.levels.map(\.count) == [10_000, 1])
        #expect(into.statistics.maxFanIn == 10_000 && into.statistics.maxFanInTask == "sink")
        #expect(into.topologicalOrder.last == "sink")
        #expect(into.criticalPath.keys == ["source-0", "sink"])
    }

    @Test func isolatedTasks() throws {
        let analysis = GraphAnalysis(try Graphs.validate(CanonicalShape.isolated.dag))
        #expect(analysis.statistics.isolatedTasks == ["lonely", "alone"])
        #expect(analysis.levels == [["lonely", "alone", "x"], ["y"]])
        #expect(analysis.criticalPath.keys == ["x", "y"])
    }

    @Test func dotExportQuotesAndHighlightsTheCriticalPath() throws {
        var dag = Graphs.dag(["a", "b", "c"], edges: [("a", "b"), ("a", "c")], costs: ["b": 2])
        dag.tasks[0].name = "say \"hi\""
        let graph = try Graphs.validate(dag)
        let dot = DotExport.render(graph, criticalPath: CriticalPathAnalysis.criticalPath(graph))
        #expect(dot == """
            digraph "workflow" {
              rankdir=LR;
              node [shape=box, style=rounded];
              "a" [label="a\\nsay \\"hi\\"\\ncost 1", color=red, penwidth=2];
              "b" [label="b\\ncost 2", color=red, penwidth=2];
              "c" [label="c\\ncost 1"];
              "a" -> "b" [color=red, penwidth=2];
              "a" -> "c";
            }

            """)
    }

    @Test func mermaidExportUsesSafeIds() throws {
        var dag = Graphs.dag(["a", "b"], edges: [("a", "b")])
        dag.tasks[1].name = "<b>\"x\""
        let graph = try Graphs.validate(dag)
        let mermaid = MermaidExport.render(graph, criticalPath: CriticalPathAnalysis.criticalPath(graph))
        #expect(mermaid == """
            flowchart LR
              t0["a"]
              t1["b<br/>#lt;b#gt;#quot;x#quot;"]
              t0 --> t1
              classDef critical stroke:#d33,stroke-width:3px
              class t0,t1 critical

            """)
    }

    /// Found by black-box testing: a task name with an escape sequence, CR or TAB reached the
    /// terminal raw through `orchctl dag --format dot|mermaid`, and a literal `#quot;` (or
    /// `&amp;`) in a Mermaid label rendered as a quote (an ampersand).
    @Test func exportsEscapeControlCharactersAndMermaidEntities() throws {
        var dag = Graphs.dag(["a"], edges: [])
        dag.tasks[0].name = "x\u{1B}[31m\r\t#quot;\u{202E}&amp;"
        let graph = try Graphs.validate(dag)
        let dot = DotExport.render(graph)
        #expect(dot.contains(#"x\\u{1B}[31m\\u{D}\\u{9}#quot;\\u{202E}"#), "\(dot)")
        let mermaid = MermaidExport.render(graph)
        #expect(mermaid.contains("x#27;[31m#13;#9;#35;quot;#8238;#amp;amp;"), "\(mermaid)")
        for output in [dot, mermaid] {
            #expect(!output.unicodeScalars.contains { $0.isInvisibleInText && $0 != "\n" })
        }
    }
}
