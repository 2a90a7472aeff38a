#!/usr/bin/env python3
"""Writes Tests/OrchestratorAPITests/CrossLanguageFixtures.swift: messages of
protos/orchestrator/testing/v1/codegen_test.proto built and serialized (deterministically) by the
official Python protobuf runtime. The Swift tests decode these bytes and compare them with what
the generated Swift encoders produce; the same values are spelled out in CrossLanguageTests.swift.

Run from the repository root with the project venv:
    .venv/bin/python tools/codegen/make_fixtures.py
"""

import os
import subprocess
import sys
import tempfile

# The pure-Python runtime: its deterministic mode sorts every map by key ascending, as C++,
# Java and our Swift encoder do. (upb 7.x sorts int32 and bool keys descending.)
os.environ["PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION"] = "python"

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PROTO = "orchestrator/testing/v1/codegen_test.proto"


def load_classes():
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "set.pb")
        subprocess.check_call(["protoc", "-I", os.path.join(ROOT, "protos"), "--include_imports",
                               f"--descriptor_set_out={out}", PROTO])
        fds = descriptor_pb2.FileDescriptorSet.FromString(open(out, "rb").read())
    pool = descriptor_pool.DescriptorPool()
    for f in fds.file:
        pool.Add(f)
    get = lambda name: message_factory.GetMessageClass(pool.FindMessageTypeByName(name))
    return get("orchestrator.testing.v1.Everything"), get("orchestrator.testing.v1.TreeNode")


def everything(Everything):
    m = Everything()
    s = m.scalars
    s.f_double = 3.141592653589793
    s.f_float = 1.5
    s.f_int32 = -123456
    s.f_int64 = -(2**63)
    s.f_uint32 = 2**32 - 1
    s.f_uint64 = 2**64 - 1
    s.f_sint32 = -(2**31)
    s.f_sint64 = 2**63 - 1
    s.f_fixed32 = 0xDEADBEEF
    s.f_fixed64 = 2**64 - 1
    s.f_sfixed32 = -1
    s.f_sfixed64 = -(2**63)
    s.f_bool = True
    s.f_string = "héllo, 世界 🌍"
    s.f_bytes = bytes([0, 1, 2, 127, 128, 255])
    m.color = 3  # COLOR_BLUE
    m.mode = 1  # MANUAL
    m.inner.name = "inner"
    m.inner.value = -1
    m.numbers.extend([1, -1, 2**31 - 1, -(2**31)])
    m.names.extend(["a", "", "ü"])
    m.blobs.extend([b"", b"\x00\x01", b"\xff"])
    m.inners.add(name="x", value=1)
    m.inners.add()
    m.colors.extend([1, 2, 7])  # 7 is not a Color: open enums keep it
    m.ratios.extend([0.5, -1e308, float("inf")])
    m.flags.extend([True, False, True])
    m.labels.update({"b": "2", "a": "1", "ключ": "значение"})
    m.inner_by_id[-5].name = "neg"
    m.inner_by_id[2**63 - 1].value = 42
    m.color_by_code[1] = 1
    m.color_by_code[99] = 42
    m.by_flag[True] = "yes"
    m.by_flag[False] = "no"
    m.blob_by_name["z"] = b"\x00"
    m.choice_inner.name = "chosen"
    m.choice_inner.value = 7
    setattr(m, "default", "kw")
    m.type = 3
    m.trace_id = "abc"
    m.self_url = "http://x"
    return m


def tree(TreeNode):
    root = TreeNode(label="root")
    root.left.label = "L"
    root.left.left.label = "LL"
    child = root.children.add(label="c1")
    child.note = "n"
    root.alternate.label = "alt"
    return root


def swift_bytes(data: bytes) -> str:
    return '"' + data.hex() + '"'


def main():
    Everything, TreeNode = load_classes()
    # protobuf-c omits a zero key or value inside a map entry (legal: it reads back as the
    # default), where other runtimes write it; this variant has none, so bytes must match.
    no_zero_map_fields = everything(Everything)
    del no_zero_map_fields.by_flag[False]
    fixtures = {
        "everything": everything(Everything).SerializeToString(deterministic=True),
        "everythingWithoutZeroMapFields": no_zero_map_fields.SerializeToString(deterministic=True),
        "tree": tree(TreeNode).SerializeToString(deterministic=True),
        "emptyEverything": Everything().SerializeToString(deterministic=True),
    }
    lines = [
        "// DO NOT EDIT. Written by tools/codegen/make_fixtures.py with Python protobuf "
        "(deterministic serialization).",
        "",
        "/// Hex-encoded messages serialized by the official Python runtime.",
        "enum CrossLanguageFixtures {",
    ]
    for name, data in fixtures.items():
        line = f"    static let {name} = {swift_bytes(data)}"
        # Laid out as swift-format (140 columns) would, so formatting leaves the file alone.
        lines += [line] if len(line) <= 140 else [f"    static let {name} =", f"        {swift_bytes(data)}"]
    lines += ["}", ""]
    path = os.path.join(ROOT, "Tests", "OrchestratorAPITests", "CrossLanguageFixtures.swift")
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("\n".join(lines))
    print(f"wrote {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
