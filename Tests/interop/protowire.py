"""A tiny protobuf wire reader for tests that look inside `grpc-status-details-bin` (a
google.rpc.Status) without its generated classes: enough for varints and length-delimited fields.
Shared by the interop and system suites."""

from __future__ import annotations


def varint(data: bytes, index: int) -> tuple[int, int]:
    shift = result = 0
    while True:
        byte = data[index]
        index += 1
        result |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return result, index


def fields(data: bytes):
    """(field number, value) of each field: an int for varints, bytes for length-delimited ones."""
    index = 0
    while index < len(data):
        key, index = varint(data, index)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, index = varint(data, index)
        elif wire == 2:
            length, index = varint(data, index)
            value, index = data[index:index + length], index + length
        else:
            raise AssertionError(f"unexpected wire type {wire}")
        yield number, value
