import OrchestratorObservability

/// Two of the server's own listeners set to one address (`--grpc-address X --grpc-tls-address X`,
/// or the admin address equal to a gRPC one): each address alone can be bound, so the bind check
/// before the database passed, migrations were applied, and the second listener then failed with
/// a bare "Address already in use" and exit 1 (found by black-box testing). Found among the
/// settings instead, before anything starts: exit 64 naming both.
enum ListenerAddressClash {
    /// The first pair of `addresses` (setting name, address) that would take the same port.
    static func first(in addresses: [(setting: String, address: HostPort?)]) -> (String, String, HostPort)? {
        let present = addresses.compactMap { entry in entry.address.map { (entry.setting, $0) } }
        for (index, (setting, address)) in present.enumerated() where address.port != 0 {
            for (other, otherAddress) in present[(index + 1)...] where otherAddress.port == address.port {
                if overlaps(address.host, otherAddress.host) { return (setting, other, address) }
            }
        }
        return nil
    }

    /// Whether two hosts on one port collide: a wildcard beside anything, or an address in
    /// common once both are resolved to numeric form (`127.1`, `2130706433`, `::ffff:127.0.0.1`
    /// and `localhost` all reach 127.0.0.1; spelt differently, they were not caught).
    static func overlaps(_ one: String, _ other: String) -> Bool {
        let a = numericAddresses(of: one)
        let b = numericAddresses(of: other)
        if a.contains(where: isWildcard) || b.contains(where: isWildcard) { return true }
        return !a.isDisjoint(with: b) || one.lowercased() == other.lowercased()
    }

    static func isWildcard(_ address: String) -> Bool { address == "0.0.0.0" || address == "::" }

    /// The numeric addresses `host` listens on (an empty host is the wildcard), IPv4-mapped IPv6
    /// addresses written as IPv4; the name itself when it does not resolve.
    static func numericAddresses(of host: String) -> Set<String> {
        let name = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
        if name.isEmpty || name == "*" { return ["0.0.0.0"] }
        let resolved = AdminHTTPServer.numericHosts(of: name).map { address -> String in
            let text = address.lowercased()
            return text.hasPrefix("::ffff:") && text.contains(".") ? String(text.dropFirst(7)) : text
        }
        return resolved.isEmpty ? [name.lowercased()] : Set(resolved)
    }
}
