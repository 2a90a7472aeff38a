/// A step the catalog planner may use: it consumes named artifacts and produces others, at a cost, on an
/// executor advertising `executorCapability`.
public struct CatalogCapability: Hashable, Sendable, Codable {
    /// Unique in the catalog; becomes the task key, so it follows the task-key charset.
    public var name: String
    public var description: String
    public var consumes: [String]
    public var produces: [String]
    public var cost: Double
    /// What an executor must advertise to run the step (`llm-small`, `http-fetch`).
    public var executorCapability: String
    public var complexity: Complexity
    public var timeoutSeconds: Int?
    public var maxAttempts: Int?

    public init(
        name: String, description: String = "", consumes: [String], produces: [String], cost: Double,
        executorCapability: String, complexity: Complexity = .medium, timeoutSeconds: Int? = nil,
        maxAttempts: Int? = nil
    ) {
        self.name = name
        self.description = description
        self.consumes = consumes
        self.produces = produces
        self.cost = cost
        self.executorCapability = executorCapability
        self.complexity = complexity
        self.timeoutSeconds = timeoutSeconds
        self.maxAttempts = maxAttempts
    }

    enum CodingKeys: String, CodingKey {
        case name, description, consumes, produces, cost, executorCapability, complexity, timeoutSeconds, maxAttempts
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        name = try c.decode(String.self, forKey: .name)
        description = try c.decodeIfPresent(String.self, forKey: .description) ?? ""
        consumes = try c.decodeIfPresent([String].self, forKey: .consumes) ?? []
        produces = try c.decode([String].self, forKey: .produces)
        cost = try c.decode(Double.self, forKey: .cost)
        executorCapability = try c.decode(String.self, forKey: .executorCapability)
        complexity = try c.decodeIfPresent(Complexity.self, forKey: .complexity) ?? .medium
        timeoutSeconds = try c.decodeIfPresent(Int.self, forKey: .timeoutSeconds)
        maxAttempts = try c.decodeIfPresent(Int.self, forKey: .maxAttempts)
    }
}

/// Maps free text to goal artifacts: the rule matches when any of its phrases occurs in the query text
/// as whole words (case-insensitive).
public struct IntentRule: Hashable, Sendable, Codable {
    public var name: String
    public var phrases: [String]
    public var goals: [String]

    public init(name: String, phrases: [String], goals: [String]) {
        self.name = name
        self.phrases = phrases
        self.goals = goals
    }
}

/// The catalog planner's configuration: capabilities, intent rules, and the artifacts every query has.
/// The initialiser checks it and reports every problem at once.
public struct CapabilityCatalog: Hashable, Sendable {
    public let name: String
    /// Artifacts available to every query; their value is the query's text (`question`).
    public let implicitInputs: [String]
    /// Optional human descriptions of artifacts, for docs and rationale.
    public let artifactDescriptions: [String: String]
    public let capabilities: [CatalogCapability]
    public let intents: [IntentRule]

    public init(
        name: String, implicitInputs: [String] = [], artifactDescriptions: [String: String] = [:],
        capabilities: [CatalogCapability], intents: [IntentRule] = [], keyCharset: KeyCharset = .default
    ) throws(CatalogError) {
        var problems: [String] = []
        var names = Set<String>()
        var produced = Set<String>()
        for (i, capability) in capabilities.enumerated() {
            let label = capability.name.isEmpty ? "capability #\(i)" : "capability `\(capability.name)`"
            if capability.name.isEmpty { problems.append("capability #\(i) has no name") }
            if let bad = capability.name.utf8.first(where: { !keyCharset.allows($0) }) {
                problems.append("\(label): name has '\(Character(Unicode.Scalar(bad)))', but names become task keys and may contain only \(keyCharset.description)")
            }
            if !names.insert(capability.name).inserted { problems.append("\(label) is defined more than once") }
            if capability.produces.isEmpty { problems.append("\(label) produces nothing") }
            if !capability.cost.isFinite || capability.cost < 0 {
                problems.append("\(label) has cost \(capability.cost); costs must be finite and ≥ 0")
            }
            if capability.executorCapability.isEmpty { problems.append("\(label) names no executorCapability") }
            let loop = Set(capability.consumes).intersection(capability.produces)
            if !loop.isEmpty {
                problems.append("\(label) both consumes and produces \(loop.sorted().map { "`\($0)`" }.joined(separator: ", "))")
            }
            produced.formUnion(capability.produces)
        }
        let inputs = Set(implicitInputs)
        for rule in intents {
            if rule.phrases.isEmpty || rule.phrases.contains(where: { IntentMatcher.words($0).isEmpty }) {
                problems.append("intent `\(rule.name)` has an empty phrase")
            }
            if rule.goals.isEmpty { problems.append("intent `\(rule.name)` has no goals") }
            for goal in rule.goals where !produced.contains(goal) && !inputs.contains(goal) {
                problems.append("intent `\(rule.name)` wants `\(goal)`, which no capability produces")
            }
        }
        guard problems.isEmpty else { throw CatalogError(problems: problems) }
        self.name = name
        self.implicitInputs = implicitInputs
        self.artifactDescriptions = artifactDescriptions
        self.capabilities = capabilities
        self.intents = intents
    }
}

/// A catalog that cannot be used, with every problem found.
public struct CatalogError: Error, Hashable, Sendable, CustomStringConvertible {
    public var problems: [String]

    public var description: String {
        "invalid capability catalog:\n" + problems.map { "  - \($0)" }.joined(separator: "\n")
    }
}
