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

    /// Whether two hosts on one port collide: the same host, a wildcard beside anything, or two
    /// loopback spellings (`localhost` listens on 127.0.0.1 and ::1).
    static func overlaps(_ one: String, _ other: String) -> Bool {
        let wildcards: Set<String> = ["", "0.0.0.0", "::", "*"]
        let loopback: Set<String> = ["localhost", "127.0.0.1", "::1"]
        let a = one.lowercased()
        let b = other.lowercased()
        return a == b || wildcards.contains(a) || wildcards.contains(b) || (loopback.contains(a) && loopback.contains(b))
    }
}
