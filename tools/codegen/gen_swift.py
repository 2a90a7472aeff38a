#!/usr/bin/env python3
"""Writes the Swift wrappers for protoc-c output.

Usage: gen_swift.py DESCRIPTOR_SET C_OUT_DIR SWIFT_OUT_DIR

DESCRIPTOR_SET is a FileDescriptorSet from `protoc --include_imports --include_source_info`;
C_OUT_DIR holds the protoc-c headers (include/<path>.pb-c.h), read only to check that every C
name this script derives really exists. Output is deterministic: files are processed in name
order and declarations in descriptor order, so `tools/gen --check` can diff it.

Naming rules are documented in docs/CODEGEN.md.
"""

from __future__ import annotations

import base64
import os
import re
import sys
from dataclasses import dataclass, field

from google.protobuf import descriptor_pb2 as pb

FD = pb.FieldDescriptorProto

SWIFT_KEYWORDS = {
    "associatedtype", "class", "deinit", "enum", "extension", "fileprivate", "func", "import",
    "init", "inout", "internal", "let", "open", "operator", "private", "precedencegroup",
    "protocol", "public", "rethrows", "static", "struct", "subscript", "typealias", "var",
    "break", "case", "catch", "continue", "default", "defer", "do", "else", "fallthrough", "for",
    "guard", "if", "in", "repeat", "return", "throw", "switch", "where", "while", "Any", "as",
    "await", "false", "is", "nil", "self", "Self", "super", "true", "try", "throws", "some",
    "any", "consume", "copy", "borrowing", "consuming", "Type", "Protocol",
}
# Words written all upper-case inside lowerCamel/UpperCamel names, as swift-protobuf does.
UPPER_WORDS = {"id", "url", "http", "https"}
# Generated member names a field must not shadow.
RESERVED_MEMBERS = {"serializedBytes", "cMessage", "cDescriptor", "unrecognized", "rawValue", "hashValue"}
# A nested type with one of these names would shadow the Swift type the generated code means.
SHADOWING_NAMES = {"String", "Bool", "Double", "Float", "Int32", "Int64", "UInt32", "UInt64", "UInt8",
                   "Array", "Dictionary", "Optional", "Self", "Type", "Protocol"}

SCALAR_SWIFT = {
    FD.TYPE_DOUBLE: ("Double", "0"),
    FD.TYPE_FLOAT: ("Float", "0"),
    FD.TYPE_INT64: ("Int64", "0"),
    FD.TYPE_UINT64: ("UInt64", "0"),
    FD.TYPE_INT32: ("Int32", "0"),
    FD.TYPE_FIXED64: ("UInt64", "0"),
    FD.TYPE_FIXED32: ("UInt32", "0"),
    FD.TYPE_BOOL: ("Bool", "false"),
    FD.TYPE_STRING: ("String", '""'),
    FD.TYPE_BYTES: ("[UInt8]", "[]"),
    FD.TYPE_UINT32: ("UInt32", "0"),
    FD.TYPE_SFIXED32: ("Int32", "0"),
    FD.TYPE_SFIXED64: ("Int64", "0"),
    FD.TYPE_SINT32: ("Int32", "0"),
    FD.TYPE_SINT64: ("Int64", "0"),
}


class GenError(Exception):
    pass


# ---------------------------------------------------------------------------------------------
# Names


def split_words(name: str) -> list[str]:
    """Splits snake_case / camelCase / UPPER_SNAKE into lower-case words."""
    words: list[str] = []
    for part in re.split(r"_+", name):
        words += [w.lower() for w in re.findall(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+", part)]
    return words


def upper_word(word: str) -> str:
    return word.upper() if word in UPPER_WORDS else word[:1].upper() + word[1:]


def lower_camel(name: str) -> str:
    words = split_words(name)
    if not words:
        return "_"
    text = words[0] + "".join(upper_word(w) for w in words[1:])
    if text[0].isdigit():
        text = "_" + text
    return text


def upper_camel_piece(name: str) -> str:
    """swift-protobuf style package component: `foo_bar` -> `FooBar`, `v1alpha` -> `V1alpha`."""
    return "".join(p[:1].upper() + p[1:] for p in name.split("_") if p)


def escape(identifier: str) -> str:
    return f"`{identifier}`" if identifier in SWIFT_KEYWORDS else identifier


def swift_member(name: str) -> str:
    ident = lower_camel(name)
    if ident in RESERVED_MEMBERS:
        ident += "_"
    return ident


def c_camel(piece: str) -> str:
    """protoc-c's ToCamel for one dotted component."""
    out, upper_next = [], True
    for ch in piece:
        if ch == "_":
            upper_next = True
            continue
        out.append(ch.upper() if upper_next else ch)
        upper_next = False
    return "".join(out)


def c_lower(piece: str) -> str:
    """protoc-c's CamelToLower for one dotted component."""
    out, was_upper = [], True
    for ch in piece:
        is_upper = ch.isupper()
        if is_upper and not was_upper:
            out.append("_")
        out.append(ch.lower())
        was_upper = is_upper
    return "".join(out)


# ---------------------------------------------------------------------------------------------
# Model


@dataclass
class TypeInfo:
    full: str  # e.g. orchestrator.v1.Task.Spec (no leading dot)
    swift: str  # Swift type reference, e.g. Orchestrator_V1_Task.Spec
    c_struct: str  # protoc-c type, e.g. Orchestrator__V1__Task__Spec
    c_prefix: str  # protoc-c function prefix, e.g. orchestrator__v1__task__spec
    is_enum: bool
    proto: object  # DescriptorProto or EnumDescriptorProto
    file: str
    map_entry: bool = False
    enum_cases: list = field(default_factory=list)  # [(swift case, number)] for enums


def strongly_connected(graph: dict) -> dict:
    """Tarjan's algorithm: vertex -> representative of its strongly connected component.
    `graph` maps each vertex to (neighbour, label) pairs."""
    index, low, stack, on_stack, comp = {}, {}, [], set(), {}
    counter = [0]

    def strong(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w, _ in graph[v]:
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp[w] = v
                if w == v:
                    break

    sys.setrecursionlimit(10000)
    for v in sorted(graph):
        if v not in index:
            strong(v)
    return comp


class Generator:
    def __init__(self, fds: pb.FileDescriptorSet, c_dir: str):
        self.files = sorted(fds.file, key=lambda f: f.name)
        self.by_name = {f.name: f for f in self.files}
        self.c_dir = c_dir
        self.types: dict[str, TypeInfo] = {}
        self.c_members: dict[str, list[str]] = {}
        self.c_headers: dict[str, str] = {}
        for f in self.files:
            if f.syntax != "proto3":
                raise GenError(f"{f.name}: only proto3 files are supported (syntax={f.syntax or 'proto2'})")
            self._index_file(f)
        self.boxed_edges = self._cyclic_edges()
        self.unbounded = self._unbounded_nesting()

    # -- indexing ----------------------------------------------------------------------------

    def _index_file(self, f):
        pkg_parts = [p for p in f.package.split(".") if p]
        swift_prefix = "_".join(upper_camel_piece(p) for p in pkg_parts)
        header = os.path.join(self.c_dir, "include", f.name[: -len(".proto")] + ".pb-c.h")
        try:
            with open(header, encoding="utf-8") as h:
                text = h.read()
        except OSError as e:
            raise GenError(f"{f.name}: protoc-c header missing: {e}")
        self.c_headers[f.name] = text
        for m in re.finditer(r"struct  (\w+)\n\{(.*?)\n\};", text, re.S):
            body = re.sub(r"/\*.*?\*/", "", m.group(2), flags=re.S)
            self.c_members[m.group(1)] = re.findall(r"(\w+)(?:\[\d*\])?;", body)

        def walk(parent_full, parent_swift, parent_c, parent_lower, messages, enums):
            for e in enums:
                full = f"{parent_full}.{e.name}" if parent_full else e.name
                swift = f"{parent_swift}.{e.name}" if parent_c != pkg_c else f"{swift_prefix}_{e.name}" if swift_prefix else e.name
                info = TypeInfo(full, swift, f"{parent_c}__{c_camel(e.name)}" if parent_c else c_camel(e.name),
                                f"{parent_lower}__{c_lower(e.name)}" if parent_lower else c_lower(e.name), True, e, f.name)
                info.enum_cases = self._enum_cases(e)
                self.types[full] = info
            for msg in messages:
                full = f"{parent_full}.{msg.name}" if parent_full else msg.name
                swift = f"{parent_swift}.{msg.name}" if parent_c != pkg_c else f"{swift_prefix}_{msg.name}" if swift_prefix else msg.name
                c_struct = f"{parent_c}__{c_camel(msg.name)}" if parent_c else c_camel(msg.name)
                c_prefix = f"{parent_lower}__{c_lower(msg.name)}" if parent_lower else c_lower(msg.name)
                info = TypeInfo(full, swift, c_struct, c_prefix, False, msg, f.name, msg.options.map_entry)
                for nested in list(msg.nested_type) + list(msg.enum_type):
                    if nested.name in SHADOWING_NAMES or nested.name.startswith("OneOf_"):
                        raise GenError(f"{f.name}: nested type {full}.{nested.name} would shadow a Swift type; rename it")
                self.types[full] = info
                if c_struct not in self.c_members:
                    raise GenError(f"{f.name}: expected C struct {c_struct} for {full} in {header}")
                if f"{c_prefix}__init" not in text:
                    raise GenError(f"{f.name}: expected C function {c_prefix}__init for {full}")
                walk(full, swift, c_struct, c_prefix, msg.nested_type, msg.enum_type)

        pkg_c = "__".join(c_camel(p) for p in pkg_parts)
        pkg_lower = "__".join(c_lower(p) for p in pkg_parts)
        walk(f.package, swift_prefix, pkg_c, pkg_lower, f.message_type, f.enum_type)

    def _enum_cases(self, e) -> list:
        prefix = "".join(w.upper() + "_" for w in split_words(e.name))
        def names(strip: bool):
            out, seen = [], set()
            for v in e.value:
                if v.number in seen:
                    continue
                seen.add(v.number)
                raw = v.name[len(prefix):] if strip and v.name.startswith(prefix) and len(v.name) > len(prefix) else v.name
                out.append((lower_camel(raw), v.number, v.name))
            return out
        cases = names(True)
        idents = [c[0] for c in cases]
        if len(set(idents)) != len(idents) or any(c[0] in ("unrecognized",) or c[0][0] == "_" for c in cases):
            cases = names(False)
        return cases

    def type_of(self, type_name: str) -> TypeInfo:
        return self.types[type_name.lstrip(".")]

    def _cyclic_edges(self) -> set:
        """(message, field number) pairs whose singular message value must be boxed.

        A Swift struct cannot contain itself by value, so singular and oneof message fields
        that close a containment cycle are stored indirectly. Repeated and map fields are arrays
        and dictionaries, already on the heap, and need nothing.
        """
        graph: dict[str, list[tuple[str, int]]] = {}
        for full, info in self.types.items():
            if info.is_enum:
                continue
            edges = []
            for f in info.proto.field:
                if f.type == FD.TYPE_MESSAGE and f.label != FD.LABEL_REPEATED:
                    edges.append((f.type_name.lstrip("."), f.number))
            graph[full] = edges
        comp = strongly_connected(graph)
        return {(v, n) for v, edges in graph.items() for w, n in edges if comp[v] == comp[w]}

    def message_fields(self, info: TypeInfo) -> list[tuple[int, str]]:
        """(field number, type) of every sub-message field, repeated and map entries included."""
        return [(f.number, f.type_name.lstrip(".")) for f in info.proto.field if f.type == FD.TYPE_MESSAGE]

    def _unbounded_nesting(self) -> set:
        """Message types whose encodings can nest without a bound set by the schema: those that
        can reach a cycle through any sub-message field. Their decoders check nesting first."""
        graph = {full: [(t, n) for n, t in self.message_fields(info)]
                 for full, info in self.types.items() if not info.is_enum}
        comp = strongly_connected(graph)
        sizes: dict[str, int] = {}
        for v in graph:
            sizes[comp[v]] = sizes.get(comp[v], 0) + 1
        cyclic = {v for v in graph if sizes[comp[v]] > 1 or any(w == v for w, _ in graph[v])}
        result = set()
        for root in graph:
            seen, pending = {root}, [root]
            while pending:
                v = pending.pop()
                if v in cyclic:
                    result.add(root)
                    break
                for w, _ in graph[v]:
                    if w not in seen:
                        seen.add(w)
                        pending.append(w)
        return result

    def nesting_schema(self, info: TypeInfo) -> list[dict[int, int]]:
        """Types reachable from `info` (index 0 first) as field number → type index tables."""
        order = [info.full]
        index = {info.full: 0}
        tables = []
        i = 0
        while i < len(order):
            table = {}
            for number, t in self.message_fields(self.types[order[i]]):
                if t not in index:
                    index[t] = len(order)
                    order.append(t)
                table[number] = index[t]
            tables.append(table)
            i += 1
        return tables

    def c_member(self, info: TypeInfo, proto_name: str) -> str:
        members = self.c_members[info.c_struct]
        for candidate in (proto_name, proto_name + "_", proto_name.lower(), proto_name.lower() + "_"):
            if candidate in members:
                return candidate
        raise GenError(f"{info.file}: no C member for field {info.full}.{proto_name} in {info.c_struct}")

    # -- output --------------------------------------------------------------------------------

    def generate(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for f in self.files:
            base = f.name[: -len(".proto")].replace("/", "_")
            out[f"{base}.pb.swift"] = FileEmitter(self, f).messages()
            if f.service:
                out[f"{base}.grpc.swift"] = FileEmitter(self, f).services()
        out["GeneratedDescriptors.swift"] = self.registry()
        out["ProtobufIndirect.swift"] = INDIRECT_SOURCE
        out["ProtobufError.swift"] = ERROR_SOURCE
        return out

    def umbrella_header(self) -> str:
        lines = [
            "// DO NOT EDIT. Generated by tools/gen: every protoc-c header under generated/c/include.",
            "#ifndef CGENERATEDPROTOS_H",
            "#define CGENERATEDPROTOS_H",
            "",
            "// No _GNU_SOURCE: SwiftGlibc is built without it; see docs/ARCHITECTURE.md.",
            "#include <protobuf-c/protobuf-c.h>",
            "",
        ]
        lines += [f'#include "{f.name[:-len(".proto")]}.pb-c.h"' for f in self.files]
        lines += ["", "#endif", ""]
        return "\n".join(lines)

    def registry(self) -> str:
        names = [descriptor_var(f.name) for f in self.files]
        body = ",\n".join(f"        {n}" for n in names)
        return f"""// DO NOT EDIT. Generated by tools/gen.

internal import ProtobufCRuntime

/// Every .proto file compiled into this module, in name order, for server reflection.
public enum GeneratedDescriptors {{
    public static let files: [DescriptorFile] = [
{body},
    ]
}}

/// One .proto file as protoc describes it: a serialized `google.protobuf.FileDescriptorProto`
/// (without source info) plus the index reflection needs to find it.
public struct DescriptorFile: Sendable, Hashable {{
    /// The path protoc knows the file by, e.g. `orchestrator/v1/workflows.proto`.
    public let name: String
    /// `package` of the file, e.g. `orchestrator.v1`.
    public let package: String
    /// Names of the files it imports, as written in its `import` lines.
    public let dependencies: [String]
    /// Fully qualified names it defines: messages and enums (nested included), enum values,
    /// fields, services and methods (`package.Service.Method`).
    public let symbols: [String]
    /// The serialized `FileDescriptorProto`.
    public let serializedBytes: [UInt8]

    init(name: String, package: String, dependencies: [String], symbols: [String], base64: String) {{
        self.name = name
        self.package = package
        self.dependencies = dependencies
        self.symbols = symbols
        guard let bytes = Base64.decode(base64) else {{
            preconditionFailure("generated descriptor of \\(name) is not valid base64")
        }}
        self.serializedBytes = bytes
    }}
}}
"""


INDIRECT_SOURCE = """// DO NOT EDIT. Generated by tools/gen.

/// Holds a message that (directly or not) contains its own type, since a Swift struct cannot
/// contain itself by value. Immutable: setters store a new box, so value semantics hold.
final class ProtobufIndirect<Value: Sendable & Hashable>: Sendable, Hashable {
    let value: Value

    init(_ value: Value) { self.value = value }

    static func == (lhs: ProtobufIndirect, rhs: ProtobufIndirect) -> Bool { lhs.value == rhs.value }
    func hash(into hasher: inout Hasher) { hasher.combine(value) }
}
"""


ERROR_SOURCE = """// DO NOT EDIT. Generated by tools/gen.

public import ProtobufCRuntime

/// What `init(serializedBytes:)` and `serializedBytes()` of every generated message throw:
/// malformed bytes, invalid UTF-8 in a string, or a string holding NUL that cannot be encoded.
public typealias ProtobufError = ProtobufCError
"""


def descriptor_var(file_name: str) -> str:
    return "_" + re.sub(r"[^A-Za-z0-9]", "_", file_name)


def swift_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def doc_comment(comment: str | None, indent: str) -> list[str]:
    if not comment:
        return []
    lines = comment.strip("\n").split("\n")
    # Drop the one leading space protoc keeps after `//`.
    lines = [l[1:] if l.startswith(" ") else l for l in lines]
    while lines and not lines[-1].strip():
        lines.pop()
    return [f"{indent}///" + (f" {l}" if l.strip() else "") for l in lines]


class FileEmitter:
    def __init__(self, gen: Generator, f):
        self.gen = gen
        self.f = f
        self.comments = {}
        for loc in f.source_code_info.location:
            if loc.leading_comments:
                self.comments[tuple(loc.path)] = loc.leading_comments
        self.lines: list[str] = []

    def emit(self, line: str = ""):
        self.lines.append(line)

    def header(self, kind: str):
        self.emit(f"// DO NOT EDIT. Generated by tools/gen from {self.f.name} ({kind}).")
        self.emit()

    # -- messages ------------------------------------------------------------------------------

    def messages(self) -> str:
        self.header("messages")
        self.emit("internal import CGeneratedProtos")
        self.emit("public import NGRPC")
        self.emit("internal import ProtobufCRuntime")
        pkg = self.f.package
        for i, e in enumerate(self.f.enum_type):
            self.emit()
            self.enum_decl(self.gen.type_of(f"{pkg}.{e.name}" if pkg else e.name), "", (5, i))
        for i, m in enumerate(self.f.message_type):
            self.emit()
            self.message_decl(self.gen.type_of(f"{pkg}.{m.name}" if pkg else m.name), "", (4, i))
        for info in self.all_messages():
            self.emit()
            self.conversions(info)
        self.emit()
        self.descriptor()
        return "\n".join(self.lines) + "\n"

    def all_messages(self):
        pkg = self.f.package
        result = []

        def walk(prefix, messages):
            for m in messages:
                full = f"{prefix}.{m.name}" if prefix else m.name
                info = self.gen.type_of(full)
                if not info.map_entry:
                    result.append(info)
                walk(full, m.nested_type)

        walk(pkg, self.f.message_type)
        return result

    def enum_decl(self, info: TypeInfo, ind: str, path):
        name = info.swift.rsplit(".", 1)[-1]
        self.lines += doc_comment(self.comments.get(path), ind)
        self.emit(f"{ind}public enum {name}: Sendable, Hashable, RawRepresentable {{")
        values = info.proto.value
        for case, number, proto_name in info.enum_cases:
            vi = next(i for i, v in enumerate(values) if v.name == proto_name)
            self.lines += doc_comment(self.comments.get(path + (2, vi)), ind + "    ")
            self.emit(f"{ind}    case {escape(case)}  // {proto_name} = {number}")
        self.emit(f"{ind}    /// A value this build does not know; kept so it survives a decode and re-encode.")
        self.emit(f"{ind}    case unrecognized(Int32)")
        self.emit()
        # Aliases (allow_alias): extra names for an existing number.
        seen = {n: c for c, n, _ in info.enum_cases}
        for v in values:
            if v.name not in [p for _, _, p in info.enum_cases]:
                alias = lower_camel(v.name)
                self.emit(f"{ind}    public static let {escape(alias)}: Self = .{escape(seen[v.number])}")
        default = next((c for c, n, _ in info.enum_cases if n == 0), None)
        if default is None:
            raise GenError(f"{self.f.name}: enum {info.full} has no zero value (proto3 requires one)")
        self.emit(f"{ind}    public init() {{ self = .{escape(default)} }}")
        self.emit()
        self.emit(f"{ind}    public init(rawValue: Int32) {{")
        self.emit(f"{ind}        switch rawValue {{")
        for case, number, _ in info.enum_cases:
            self.emit(f"{ind}        case {number}: self = .{escape(case)}")
        self.emit(f"{ind}        default: self = .unrecognized(rawValue)")
        self.emit(f"{ind}        }}")
        self.emit(f"{ind}    }}")
        self.emit()
        self.emit(f"{ind}    public var rawValue: Int32 {{")
        self.emit(f"{ind}        switch self {{")
        for case, number, _ in info.enum_cases:
            self.emit(f"{ind}        case .{escape(case)}: {number}")
        self.emit(f"{ind}        case .unrecognized(let value): value")
        self.emit(f"{ind}        }}")
        self.emit(f"{ind}    }}")
        self.emit(f"{ind}}}")

    def field_kind(self, f):
        """('scalar'|'enum'|'message'|'map', swift type, default expression)."""
        if f.label == FD.LABEL_REPEATED:
            if f.type == FD.TYPE_MESSAGE and self.gen.type_of(f.type_name).map_entry:
                entry = self.gen.type_of(f.type_name).proto
                key = self.single_type(entry.field[0])
                value = self.single_type(entry.field[1])
                return "map", f"[{key}: {value}]", "[:]"
            return "repeated", f"[{self.single_type(f)}]", "[]"
        if f.type == FD.TYPE_MESSAGE:
            return "message", self.gen.type_of(f.type_name).swift + "?", "nil"
        if f.type == FD.TYPE_ENUM:
            info = self.gen.type_of(f.type_name)
            default = next(c for c, n, _ in info.enum_cases if n == 0)
            return "enum", info.swift, f".{escape(default)}"
        if f.type in SCALAR_SWIFT:
            t, d = SCALAR_SWIFT[f.type]
            return "scalar", t, d
        raise GenError(f"{self.f.name}: unsupported field type {f.type} for {f.name}")

    def single_type(self, f) -> str:
        if f.type in (FD.TYPE_MESSAGE, FD.TYPE_ENUM):
            return self.gen.type_of(f.type_name).swift
        if f.type == FD.TYPE_GROUP:
            raise GenError(f"{self.f.name}: groups are not supported ({f.name})")
        return SCALAR_SWIFT[f.type][0]

    def oneof_type_name(self, name: str) -> str:
        return "OneOf_" + "".join(upper_word(w) for w in split_words(name))

    def message_decl(self, info: TypeInfo, ind: str, path):
        m = info.proto
        name = info.swift.rsplit(".", 1)[-1]
        self.lines += doc_comment(self.comments.get(path), ind)
        self.emit(f"{ind}public struct {name}: Sendable, Hashable, GRPCMessage {{")
        inner = ind + "    "
        self.emit(f"{inner}public static let grpcMessageName = {swift_string(info.full)}")
        self.emit()
        for i, e in enumerate(m.enum_type):
            self.enum_decl(self.gen.type_of(f"{info.full}.{e.name}"), inner, path + (4, i))
            self.emit()
        for i, n in enumerate(m.nested_type):
            sub = self.gen.type_of(f"{info.full}.{n.name}")
            if sub.map_entry:
                continue
            self.message_decl(sub, inner, path + (3, i))
            self.emit()
        # Oneof enums.
        for oi, o in enumerate(m.oneof_decl):
            members = [f for f in m.field if f.HasField("oneof_index") and f.oneof_index == oi]
            boxed = any((info.full, f.number) in self.gen.boxed_edges for f in members)
            self.lines += doc_comment(self.comments.get(path + (8, oi)), inner)
            self.emit(f"{inner}public {'indirect ' if boxed else ''}enum {self.oneof_type_name(o.name)}: Sendable, Hashable {{")
            for f in members:
                fi = list(m.field).index(f)
                self.lines += doc_comment(self.comments.get(path + (2, fi)), inner + "    ")
                self.emit(f"{inner}    case {escape(swift_member(f.name))}({self.single_type(f)})")
            self.emit(f"{inner}}}")
            self.emit()
        # Stored properties.
        params = []
        for fi, f in enumerate(m.field):
            if f.HasField("oneof_index"):
                continue
            kind, t, default = self.field_kind(f)
            prop = escape(swift_member(f.name))
            self.lines += doc_comment(self.comments.get(path + (2, fi)), inner)
            if (info.full, f.number) in self.gen.boxed_edges:
                storage = "_" + swift_member(f.name)
                base = t[:-1]
                self.emit(f"{inner}public var {prop}: {t} {{")
                self.emit(f"{inner}    get {{ {storage}?.value }}")
                self.emit(f"{inner}    set {{ {storage} = newValue.map {{ ProtobufIndirect($0) }} }}")
                self.emit(f"{inner}}}")
                self.emit(f"{inner}private var {storage}: ProtobufIndirect<{base}>? = nil")
            else:
                self.emit(f"{inner}public var {prop}: {t} = {default}")
            params.append((prop, t, default))
        for o in m.oneof_decl:
            prop = escape(swift_member(o.name))
            t = self.oneof_type_name(o.name) + "?"
            self.emit(f"{inner}public var {prop}: {t} = nil")
            params.append((prop, t, "nil"))
        self.emit()
        self.emit(f"{inner}public init() {{}}")
        if params:
            self.emit()
            self.emit(f"{inner}public init(")
            for i, (prop, t, default) in enumerate(params):
                label = prop
                self.emit(f"{inner}    {label}: {t} = {default}{',' if i < len(params) - 1 else ''}")
            self.emit(f"{inner}) {{")
            for prop, _, _ in params:
                self.emit(f"{inner}    self.{prop} = {prop}")
            self.emit(f"{inner}}}")
        self.emit(f"{ind}}}")
        if self.lines[-2] == "":
            pass

    # -- C conversions -------------------------------------------------------------------------

    def read_single(self, f, expr: str, field: str | None = None) -> str:
        """Swift expression converting C value `expr` of a non-repeated field or map key/value;
        `field` (the full field name) is named when a string is not UTF-8."""
        t = f.type
        if t == FD.TYPE_STRING:
            return f"try ProtobufC.string({expr}, field: {swift_string(field)})" if field else f"try ProtobufC.string({expr})"
        if t == FD.TYPE_BYTES:
            return f"ProtobufC.bytes({expr}.data, {expr}.len)"
        if t == FD.TYPE_BOOL:
            return f"{expr} != 0"
        if t == FD.TYPE_ENUM:
            return f"{self.gen.type_of(f.type_name).swift}(rawValue: Int32(truncatingIfNeeded: {expr}.rawValue))"
        if t == FD.TYPE_MESSAGE:
            return f"try {self.gen.type_of(f.type_name).swift}(cMessage: {expr})"
        return expr

    def write_single(self, f, expr: str) -> str:
        """C value for Swift value `expr` (messages become arena pointers)."""
        t = f.type
        if t == FD.TYPE_STRING:
            return f"try arena.string({expr})"
        if t == FD.TYPE_BYTES:
            return f"ProtobufCBinaryData(len: {expr}.count, data: arena.bytes({expr}))"
        if t == FD.TYPE_BOOL:
            return f"{expr} ? 1 : 0"
        if t == FD.TYPE_ENUM:
            return f"{self.gen.type_of(f.type_name).c_struct}(rawValue: .init(truncatingIfNeeded: {expr}.rawValue))"
        if t == FD.TYPE_MESSAGE:
            return f"arena.box(try {expr}.cMessage(in: arena))"
        return expr

    def conversions(self, info: TypeInfo):
        m = info.proto
        c = info.c_struct
        p = info.c_prefix
        self.emit(f"extension {info.swift} {{")
        self.emit("    /// protobuf-c's descriptor for this message (the address `__init` stores in `base`).")
        self.emit("    static var cDescriptor: UnsafePointer<ProtobufCMessageDescriptor> {")
        self.emit(f"        var c = {c}()")
        self.emit(f"        {p}__init(&c)")
        self.emit("        return c.base.descriptor")
        self.emit("    }")
        self.emit()
        unbounded = info.full in self.gen.unbounded
        if unbounded:
            tables = self.gen.nesting_schema(info)
            body = ", ".join("[" + (", ".join(f"{n}: {t}" for n, t in sorted(tab.items())) or ":") + "]" for tab in tables)
            self.emit("    /// Sub-message fields of every type reachable from this one (this one first), for")
            self.emit("    /// `ProtobufNesting.check`: the type can nest without bound, protobuf-c recurses.")
            self.emit(f"    static let nestingSchema: [[UInt32: Int]] = [{body}]")
            self.emit()
        self.emit("    public init(serializedBytes bytes: [UInt8]) throws {")
        if unbounded:
            self.emit("        try ProtobufNesting.check(bytes, schema: Self.nestingSchema)")
        self.emit("        self = try ProtobufC.decode(")
        self.emit("            bytes, unpack: { protobuf_c_message_unpack(Self.cDescriptor, nil, $0, $1) },")
        self.emit("            free: { protobuf_c_message_free_unpacked($0, nil) },")
        self.emit(f"            convert: {{ try Self(cMessage: UnsafeRawPointer($0).assumingMemoryBound(to: {c}.self)) }})")
        self.emit("    }")
        self.emit()
        self.emit("    public func serializedBytes() throws -> [UInt8] {")
        self.emit("        let arena = ProtobufCArena()")
        self.emit("        var message = try cMessage(in: arena)")
        self.emit("        return try withExtendedLifetime(arena) {")
        self.emit("            try withUnsafePointer(to: &message) { pointer in")
        self.emit("                try ProtobufC.encode(")
        self.emit("                    UnsafeRawPointer(pointer).assumingMemoryBound(to: ProtobufCMessage.self),")
        self.emit("                    size: { protobuf_c_message_get_packed_size($0) }, pack: { protobuf_c_message_pack($0, $1) })")
        self.emit("            }")
        self.emit("        }")
        self.emit("    }")
        self.emit()
        # C -> Swift
        used = bool(m.field)
        self.emit(f"    init(cMessage {'pointer' if used else '_'}: UnsafePointer<{c}>) throws {{")
        self.emit("        self.init()")
        if used:
            self.emit("        let c = pointer.pointee")
        for f in m.field:
            if f.HasField("oneof_index"):
                continue
            member = self.gen.c_member(info, f.name)
            prop = "self." + escape(swift_member(f.name))
            qualified = f"{info.full}.{f.name}"
            kind, _, _ = self.field_kind(f)
            if kind == "map":
                entry = self.gen.type_of(f.type_name)
                k, v = entry.proto.field[0], entry.proto.field[1]
                km = self.gen.c_member(entry, k.name)
                vm = self.gen.c_member(entry, v.name)
                if v.type == FD.TYPE_MESSAGE:
                    value = f"try entry.pointee.{vm}.map {{ try {self.gen.type_of(v.type_name).swift}(cMessage: $0) }} ?? {self.gen.type_of(v.type_name).swift}()"
                else:
                    value = self.read_single(v, f"entry.pointee.{vm}", qualified)
                self.emit(f"        for (key, value) in try ProtobufC.pointers(c.{member}, c.n_{member}, {{ entry in")
                self.emit(f"            ({self.read_single(k, f'entry.pointee.{km}', qualified)}, {value})")
                self.emit("        }) {")
                self.emit(f"            {prop}[key] = value")
                self.emit("        }")
            elif kind == "repeated":
                if f.type in (FD.TYPE_STRING, FD.TYPE_MESSAGE):
                    conv = self.read_single(f, "$0", qualified)
                    self.emit(f"        {prop} = try ProtobufC.pointers(c.{member}, c.n_{member}) {{ {conv} }}")
                else:
                    conv = self.read_single(f, "$0")
                    if conv == "$0":
                        self.emit(f"        {prop} = ProtobufC.array(c.{member}, c.n_{member}) {{ $0 }}")
                    else:
                        self.emit(f"        {prop} = {'try ' if 'try' in conv else ''}ProtobufC.array(c.{member}, c.n_{member}) {{ {conv} }}")
            elif kind == "message":
                conv = self.read_single(f, "$0")
                self.emit(f"        {prop} = try c.{member}.map {{ {conv} }}")
            else:
                self.emit(f"        {prop} = {self.read_single(f, 'c.' + member, qualified)}")
        for oi, o in enumerate(m.oneof_decl):
            members = [f for f in m.field if f.HasField("oneof_index") and f.oneof_index == oi]
            case_member = self.gen.c_member(info, o.name + "_case")
            prop = "self." + escape(swift_member(o.name))
            self.emit(f"        switch c.{case_member}.rawValue {{")
            for f in members:
                member = self.gen.c_member(info, f.name)
                case = escape(swift_member(f.name))
                if f.type == FD.TYPE_MESSAGE:
                    self.emit(f"        case {f.number}:")
                    self.emit(f"            guard let value = c.{member} else {{ throw ProtobufCError(.malformed, \"oneof member {f.name} is NULL\") }}")
                    self.emit(f"            {prop} = .{case}({self.read_single(f, 'value')})")
                else:
                    self.emit(f"        case {f.number}: {prop} = .{case}({self.read_single(f, 'c.' + member, f'{info.full}.{f.name}')})")
            self.emit(f"        default: {prop} = nil")
            self.emit("        }")
        self.emit("    }")
        self.emit()
        # Swift -> C
        self.emit(f"    func cMessage(in arena: ProtobufCArena) throws -> {c} {{")
        self.emit(f"        var c = {c}()")
        self.emit(f"        {p}__init(&c)")
        for f in m.field:
            if f.HasField("oneof_index"):
                continue
            member = self.gen.c_member(info, f.name)
            prop = "self." + escape(swift_member(f.name))
            kind, _, _ = self.field_kind(f)
            if kind == "map":
                entry = self.gen.type_of(f.type_name)
                k, v = entry.proto.field[0], entry.proto.field[1]
                km = self.gen.c_member(entry, k.name)
                vm = self.gen.c_member(entry, v.name)
                # Keys sorted so encoding is deterministic (as protobuf's deterministic mode).
                order = "{ ($0.key ? 1 : 0) < ($1.key ? 1 : 0) }" if k.type == FD.TYPE_BOOL else "{ $0.key < $1.key }"
                self.emit(f"        c.n_{member} = {prop}.count")
                throws = "try" in self.write_single(k, "key") + self.write_single(v, "value")
                self.emit(f"        c.{member} = arena.pointerArray({'try ' if throws else ''}{prop}.sorted(by: {order}).map {{ key, value in")
                self.emit(f"            var entry = {entry.c_struct}()")
                self.emit(f"            {entry.c_prefix}__init(&entry)")
                self.emit(f"            entry.{km} = {self.write_single(k, 'key')}")
                self.emit(f"            entry.{vm} = {self.write_single(v, 'value')}")
                self.emit("            return arena.box(entry)")
                self.emit("        })")
            elif kind == "repeated":
                conv = self.write_single(f, "$0")
                self.emit(f"        c.n_{member} = {prop}.count")
                fn = "pointerArray" if f.type in (FD.TYPE_STRING, FD.TYPE_MESSAGE) else "array"
                if conv == "$0":
                    self.emit(f"        c.{member} = arena.{fn}({prop})")
                else:
                    self.emit(f"        c.{member} = arena.{fn}({'try ' if 'try' in conv else ''}{prop}.map {{ {conv} }})")
            elif kind == "message":
                self.emit(f"        if let value = {prop} {{ c.{member} = {self.write_single(f, 'value')} }}")
            else:
                self.emit(f"        c.{member} = {self.write_single(f, prop)}")
        for oi, o in enumerate(m.oneof_decl):
            members = [f for f in m.field if f.HasField("oneof_index") and f.oneof_index == oi]
            case_member = self.gen.c_member(info, o.name + "_case")
            prop = "self." + escape(swift_member(o.name))
            self.emit(f"        switch {prop} {{")
            for f in members:
                member = self.gen.c_member(info, f.name)
                self.emit(f"        case .{escape(swift_member(f.name))}(let value):")
                self.emit(f"            c.{case_member} = .init(rawValue: {f.number})")
                self.emit(f"            c.{member} = {self.write_single(f, 'value')}")
            self.emit("        case nil: break")
            self.emit("        }")
        self.emit("        return c")
        self.emit("    }")
        self.emit("}")

    # -- descriptor ----------------------------------------------------------------------------

    def symbols(self) -> list[str]:
        f = self.f
        pkg = f.package
        out = []

        def q(name, prefix):
            return f"{prefix}.{name}" if prefix else name

        def enum_symbols(e, prefix):
            full = q(e.name, prefix)
            out.append(full)
            # Enum values are scoped to the enum's parent, as in C++.
            out.extend(q(v.name, prefix) for v in e.value)

        def walk(m, prefix):
            full = q(m.name, prefix)
            out.append(full)
            out.extend(f"{full}.{fl.name}" for fl in m.field)
            out.extend(f"{full}.{o.name}" for o in m.oneof_decl)
            for e in m.enum_type:
                enum_symbols(e, full)
            for n in m.nested_type:
                walk(n, full)

        for e in f.enum_type:
            enum_symbols(e, pkg)
        for m in f.message_type:
            walk(m, pkg)
        for s in f.service:
            full = q(s.name, pkg)
            out.append(full)
            out.extend(f"{full}.{meth.name}" for meth in s.method)
        return sorted(set(out))

    def descriptor(self):
        stripped = pb.FileDescriptorProto()
        stripped.CopyFrom(self.f)
        stripped.ClearField("source_code_info")
        data = base64.b64encode(stripped.SerializeToString(deterministic=True)).decode("ascii")
        chunks = [data[i : i + 100] for i in range(0, len(data), 100)]
        self.emit("extension GeneratedDescriptors {")
        self.emit(f"    static let {descriptor_var(self.f.name)} = DescriptorFile(")
        self.emit(f"        name: {swift_string(self.f.name)},")
        self.emit(f"        package: {swift_string(self.f.package)},")
        deps = ", ".join(swift_string(d) for d in self.f.dependency)
        self.emit(f"        dependencies: [{deps}],")
        self.emit("        symbols: [")
        for s in self.symbols():
            self.emit(f"            {swift_string(s)},")
        self.emit("        ],")
        # One literal joined at compile time: `+` chains of literals type-check slowly.
        self.emit('        base64: """')
        for i, chunk in enumerate(chunks):
            self.emit(f"            {chunk}" + ("\\" if i < len(chunks) - 1 else ""))
        self.emit("            \"\"\"")
        self.emit("    )")
        self.emit("}")

    # -- services ------------------------------------------------------------------------------

    def services(self) -> str:
        self.header("services")
        self.emit("public import NGRPC")
        pkg = self.f.package
        prefix = "_".join(upper_camel_piece(p) for p in pkg.split(".") if p)
        for si, s in enumerate(self.f.service):
            full = f"{pkg}.{s.name}" if pkg else s.name
            base = f"{prefix}_{s.name}" if prefix else s.name
            methods = []
            for mi, meth in enumerate(s.method):
                kind = {
                    (False, False): "unary",
                    (False, True): "serverStreaming",
                    (True, False): "clientStreaming",
                    (True, True): "bidirectionalStreaming",
                }[(meth.client_streaming, meth.server_streaming)]
                ident = lower_camel(meth.name)
                if ident in ("register", "channel", "all"):
                    ident += "_"
                methods.append((meth, mi, escape(ident), kind, self.gen.type_of(meth.input_type).swift,
                                self.gen.type_of(meth.output_type).swift))
            comment = self.comments.get((6, si))
            # Method descriptors.
            self.emit()
            self.emit(f"/// Method descriptors of `{full}`.")
            self.emit(f"public enum {base}Methods {{")
            for meth, _, ident, kind, _, _ in methods:
                self.emit(f"    public static let {ident} = MethodDescriptor(service: {swift_string(full)}, method: {swift_string(meth.name)}, kind: .{kind})")
            self.emit(f"    public static let all: [MethodDescriptor] = [{', '.join(m[2] for m in methods)}]")
            self.emit("}")
            # Provider.
            self.emit()
            self.lines += doc_comment(comment, "")
            self.emit("///")
            self.emit(f"/// Server side of `{full}`: implement the methods you support; the others answer")
            self.emit("/// UNIMPLEMENTED. Register with `register(into:)`.")
            self.emit(f"public protocol {base}Provider: Sendable {{")
            for meth, mi, ident, kind, req, res in methods:
                self.lines += doc_comment(self.comments.get((6, si, 2, mi)), "    ")
                self.emit(f"    {self.provider_signature(ident, kind, req, res)}")
            self.emit("}")
            self.emit()
            self.emit(f"extension {base}Provider {{")
            for meth, _, ident, kind, req, res in methods:
                self.emit(f"    public {self.provider_signature(ident, kind, req, res)} {{")
                self.emit(f"        throw RPCStatus(.unimplemented, {swift_string(f'/{full}/{meth.name} is not implemented yet')})")
                self.emit("    }")
                self.emit()
            self.emit("    /// Adds every method of the service to `router`.")
            self.emit("    public func register(into router: inout RPCRouter) {")
            for meth, _, ident, kind, req, res in methods:
                d = f"{base}Methods.{ident}"
                if kind == "unary":
                    self.emit(f"        router.registerUnary({d}) {{ (request: {req}, context: ServerContext) async throws -> {res} in")
                    self.emit(f"            try await self.{ident}(request, context: context)")
                elif kind == "serverStreaming":
                    self.emit(f"        router.registerServerStreaming({d}) {{ (request: {req}, responses: RPCResponseWriter<{res}>, context: ServerContext) async throws in")
                    self.emit(f"            try await self.{ident}(request, responses: responses, context: context)")
                elif kind == "clientStreaming":
                    self.emit(f"        router.registerClientStreaming({d}) {{ (requests: RPCRequestStream<{req}>, context: ServerContext) async throws -> {res} in")
                    self.emit(f"            try await self.{ident}(requests, context: context)")
                else:
                    self.emit(f"        router.registerBidirectionalStreaming({d}) {{ (requests: RPCRequestStream<{req}>, responses: RPCResponseWriter<{res}>, context: ServerContext) async throws in")
                    self.emit(f"            try await self.{ident}(requests, responses: responses, context: context)")
                self.emit("        }")
            self.emit("    }")
            self.emit("}")
            # Client.
            self.emit()
            self.emit(f"/// Client side of `{full}` over any `RPCChannel`.")
            self.emit(f"public struct {base}Client: Sendable {{")
            self.emit("    public let channel: any RPCChannel")
            self.emit()
            self.emit("    public init(channel: any RPCChannel) { self.channel = channel }")
            for meth, mi, ident, kind, req, res in methods:
                d = f"{base}Methods.{ident}"
                self.emit()
                self.lines += doc_comment(self.comments.get((6, si, 2, mi)), "    ")
                if kind == "unary":
                    self.emit(f"    public func {ident}(_ request: {req}, options: CallOptions = CallOptions()) async throws -> {res} {{")
                    self.emit(f"        try await channel.unary({d}, request: request, options: options)")
                elif kind == "serverStreaming":
                    self.emit(f"    public func {ident}(_ request: {req}, options: CallOptions = CallOptions()) async throws -> RPCResponseStream<{res}> {{")
                    self.emit(f"        try await channel.serverStreaming({d}, request: request, options: options)")
                elif kind == "clientStreaming":
                    self.emit(f"    public func {ident}(options: CallOptions = CallOptions()) async throws -> RPCClientStreamingCall<{req}, {res}> {{")
                    self.emit(f"        try await channel.clientStreaming({d}, options: options)")
                else:
                    self.emit(f"    public func {ident}(options: CallOptions = CallOptions()) async throws -> RPCBidirectionalCall<{req}, {res}> {{")
                    self.emit(f"        try await channel.bidirectionalStreaming({d}, options: options)")
                self.emit("    }")
            self.emit("}")
        return "\n".join(self.lines) + "\n"

    @staticmethod
    def provider_signature(ident, kind, req, res) -> str:
        if kind == "unary":
            return f"func {ident}(_ request: {req}, context: ServerContext) async throws -> {res}"
        if kind == "serverStreaming":
            return f"func {ident}(_ request: {req}, responses: RPCResponseWriter<{res}>, context: ServerContext) async throws"
        if kind == "clientStreaming":
            return f"func {ident}(_ requests: RPCRequestStream<{req}>, context: ServerContext) async throws -> {res}"
        return f"func {ident}(_ requests: RPCRequestStream<{req}>, responses: RPCResponseWriter<{res}>, context: ServerContext) async throws"


def main(argv: list[str]) -> int:
    if len(argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    _, descriptor_set, c_dir, swift_dir = argv
    with open(descriptor_set, "rb") as fh:
        fds = pb.FileDescriptorSet.FromString(fh.read())
    try:
        gen = Generator(fds, c_dir)
        outputs = gen.generate()
    except GenError as e:
        print(f"gen_swift: {e}", file=sys.stderr)
        return 1
    os.makedirs(swift_dir, exist_ok=True)
    for name, text in sorted(outputs.items()):
        with open(os.path.join(swift_dir, name), "w", encoding="utf-8") as fh:
            fh.write(text)
    with open(os.path.join(c_dir, "include", "CGeneratedProtos.h"), "w", encoding="utf-8") as fh:
        fh.write(gen.umbrella_header())
    # An explicit module map: SwiftPM refuses an umbrella header with folders beside it.
    with open(os.path.join(c_dir, "include", "module.modulemap"), "w", encoding="utf-8") as fh:
        fh.write("// DO NOT EDIT. Generated by tools/gen.\nmodule CGeneratedProtos {\n"
                 "    header \"CGeneratedProtos.h\"\n    export *\n}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
