#!/usr/bin/env bash
# Builds the C++ example executor and its API check program offline from Debian packages
# (grpc++ 1.51, protobuf 3.21, g++; see README.md).
#
#   examples/executors/cpp/build.sh [OUTPUT]    (default OUTPUT: examples/executors/cpp/build/orchexecutor)
#
# Installs the compilers and libraries when missing (apt-get, with sudo when not root), generates
# the protobuf and gRPC code with protoc and Debian's grpc_cpp_plugin into OUTPUT.build/gen
# (build/ is gitignored), and compiles with make: OUTPUT, the executor, and OUTPUT-api-checks.
# A second run rebuilds only what changed.
# Exit status 3: the packages are missing and could not be installed.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../../.." && pwd)
OUTPUT=${1:-$HERE/build/orchexecutor}
case $OUTPUT in /*) ;; *) OUTPUT=$PWD/$OUTPUT ;; esac

PACKAGES=(libgrpc++-dev protobuf-compiler-grpc protobuf-compiler libprotobuf-dev g++ make pkg-config)
source "$ROOT/tools/lib/common.sh"
# ensure_apt (tools/lib/common.sh): apt-get update, then install what is missing, through sudo when not root.
if ! ensure_apt "${PACKAGES[@]}"; then
  echo "build.sh: could not install ${PACKAGES[*]} with apt-get" >&2
  exit 3
fi

# Intermediates beside the output (OUTPUT.build), so that builds into different outputs never
# share a folder.
mkdir -p "$(dirname "$OUTPUT")"
make --no-print-directory -j"$(nproc)" -f "$HERE/Makefile" ROOT="$ROOT" BUILD="$OUTPUT.build" OUTPUT="$OUTPUT" >&2
echo "built $OUTPUT and $OUTPUT-api-checks"
