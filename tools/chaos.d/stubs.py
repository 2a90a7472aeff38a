"""grpcio stubs for every proto in protos/orchestrator/v1, generated once per run into a folder
(the executors import the same folder through --stubs-dir)."""

from __future__ import annotations

import importlib
import subprocess
import sys
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROTOS = ROOT / "protos"


def generate(out: Path) -> types.SimpleNamespace:
    out.mkdir(parents=True, exist_ok=True)
    files = [str(p) for p in sorted((PROTOS / "orchestrator" / "v1").glob("*.proto"))]
    subprocess.run([sys.executable, "-m", "grpc_tools.protoc", f"-I{PROTOS}", f"--python_out={out}",
                    f"--grpc_python_out={out}", *files], check=True, timeout=120)
    if str(out) not in sys.path:
        sys.path.insert(0, str(out))
    ns = types.SimpleNamespace()
    for name in ["dag", "query", "workflow", "workflows", "executors"]:
        setattr(ns, name, importlib.import_module(f"orchestrator.v1.{name}_pb2"))
    ns.workflows_grpc = importlib.import_module("orchestrator.v1.workflows_pb2_grpc")
    return ns
