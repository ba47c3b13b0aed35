"""A Nexus stand-in in another language: Python's grpcio and protobuf, with messages compiled from
proto/ by protoc. Sends the seed's JSON examples (parsed by protobuf's own proto3 JSON parser) to Neuro
and prints each response as proto3 JSON with the contract's field names, one JSON object per line.

usage: seed_client.py GENERATED_DIR NEURO_ADDRESS TESTDATA_DIR
"""
import json
import re
import sys

sys.path.insert(0, sys.argv[1])
import grpc  # noqa: E402
from google.protobuf import json_format  # noqa: E402
from neuro.v1 import common_pb2 as common  # noqa: E402
from neuro.v1 import neuro_orchestrator_pb2 as orch  # noqa: E402
from neuro.v1 import resource_pb2 as res  # noqa: E402

address, testdata = sys.argv[2], sys.argv[3]
channel = grpc.insecure_channel(address)
SERVICE = "/neuro.v1.NeuroOrchestratorService/"


def seed(name):
    text = open(f"{testdata}/seed_{name}.json", encoding="utf8").read()
    # The seed elides parts with "...": they are left empty, nothing else is touched.
    text = text.replace("[...]", "[]").replace("{...}", "{}")
    return re.sub(r",\s*\n\s*\.\.\.\s*\n", "\n", text)


def call(method, request, response_type):
    stub = channel.unary_unary(
        SERVICE + method,
        request_serializer=lambda m: m.SerializeToString(),
        response_deserializer=response_type.FromString,
    )
    response = stub(request, timeout=30)
    print(json.dumps({"method": method, "response": json.loads(json_format.MessageToJson(response, preserving_proto_field_name=True))}))


call("CreateSession", json_format.Parse(seed("create_session_request"), orch.CreateSessionRequest()), orch.CreateSessionResponse)
call("CreateTrainingSession", json_format.Parse(seed("create_training_session_request"), orch.CreateTrainingSessionRequest()), orch.CreateTrainingSessionResponse)
call("GetResourcePoolStatus", res.ResourcePoolStatusRequest(include_isaac_pool=True, include_training_pool=True), res.ResourcePoolStatusResponse)
try:
    call("CreateSession", orch.CreateSessionRequest(session_id="", mode=common.MANUAL), orch.CreateSessionResponse)
except grpc.RpcError as e:
    print(json.dumps({"method": "CreateSession", "error": e.code().name, "details": e.details()}))
