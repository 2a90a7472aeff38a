"""grpc.health.v1.Health and server reflection, driven by the official grpcio client packages."""

import grpc
import pytest
from google.protobuf import descriptor_pb2, descriptor_pool
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

ECHO_SERVICE = "orchestrator.testing.v1.Echo"
SERVING = health_pb2.HealthCheckResponse.SERVING
SERVICE_UNKNOWN = health_pb2.HealthCheckResponse.SERVICE_UNKNOWN


@pytest.mark.parametrize("service", ["", ECHO_SERVICE])
def test_health_check_serving(channel, service):
    health = health_pb2_grpc.HealthStub(channel)
    response = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=10)
    assert response.status == SERVING


def test_health_check_unknown_service_is_not_found(channel):
    health = health_pb2_grpc.HealthStub(channel)
    with pytest.raises(grpc.RpcError) as error:
        health.Check(health_pb2.HealthCheckRequest(service="no.such.Service"), timeout=10)
    assert error.value.code() == grpc.StatusCode.NOT_FOUND


def test_health_watch_sends_current_status(channel):
    health = health_pb2_grpc.HealthStub(channel)
    watch = health.Watch(health_pb2.HealthCheckRequest(service=""), timeout=30)
    assert next(watch).status == SERVING
    watch.cancel()


def test_health_watch_unknown_service_reports_service_unknown(channel):
    # The health protocol says Watch answers SERVICE_UNKNOWN (not an error) and keeps watching.
    health = health_pb2_grpc.HealthStub(channel)
    watch = health.Watch(health_pb2.HealthCheckRequest(service="no.such.Service"), timeout=30)
    assert next(watch).status == SERVICE_UNKNOWN
    watch.cancel()


def test_reflection_lists_services(channel):
    database = ProtoReflectionDescriptorDatabase(channel)
    services = set(database.get_services())
    assert {ECHO_SERVICE, "grpc.health.v1.Health"} <= services, services
    assert any(name.startswith("grpc.reflection.") for name in services), services


def test_reflection_descriptors_describe_echo(channel):
    pool = descriptor_pool.DescriptorPool(ProtoReflectionDescriptorDatabase(channel))
    service = pool.FindServiceByName(ECHO_SERVICE)
    shapes = {}
    for method in service.methods:
        proto = descriptor_pb2.MethodDescriptorProto()
        method.CopyToProto(proto)
        shapes[method.name] = (method.input_type.full_name, method.output_type.full_name,
                               proto.client_streaming, proto.server_streaming)
    request, response = "orchestrator.testing.v1.EchoRequest", "orchestrator.testing.v1.EchoResponse"
    assert shapes == {
        "Get": (request, response, False, False),
        "Expand": (request, response, False, True),
        "Collect": (request, response, True, False),
        "Chat": (request, response, True, True),
        "Cancellations": ("orchestrator.testing.v1.CancellationQuery",
                          "orchestrator.testing.v1.CancellationReport", False, False),
    }
    fields = {f.name: f.number for f in pool.FindMessageTypeByName("orchestrator.testing.v1.EchoRequest").fields}
    assert fields == {"text": 1, "payload": 2, "count": 3, "response_size": 4, "delay_ms": 5, "fail_with": 6,
                      "tag": 7}


def test_reflection_file_containing_symbol_and_unknown_symbol(channel):
    stub_call = channel.stream_stream(
        "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
        request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
        response_deserializer=reflection_pb2.ServerReflectionResponse.FromString)
    requests = [reflection_pb2.ServerReflectionRequest(file_containing_symbol=ECHO_SERVICE),
                reflection_pb2.ServerReflectionRequest(file_containing_symbol="no.such.Symbol")]
    known, unknown = list(stub_call(iter(requests), timeout=10))
    files = [descriptor_pb2.FileDescriptorProto.FromString(raw)
             for raw in known.file_descriptor_response.file_descriptor_proto]
    assert any(f.package == "orchestrator.testing.v1" and f.service[0].name == "Echo" for f in files)
    assert unknown.error_response.error_code == grpc.StatusCode.NOT_FOUND.value[0]


def test_reflection_v1_is_served_too(channel):
    # grpcurl and newer tools ask grpc.reflection.v1 first; the messages are wire-identical to v1alpha.
    stub_call = channel.stream_stream(
        "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
        request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
        response_deserializer=reflection_pb2.ServerReflectionResponse.FromString)
    (reply,) = list(stub_call(iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=10))
    names = {service.name for service in reply.list_services_response.service}
    assert ECHO_SERVICE in names, names
