#!/usr/bin/env bash
# Builds the Go example executor offline from Debian packages (GOPATH mode; see README.md).
#
#   examples/executors/go/build.sh [OUTPUT]     (default OUTPUT: examples/executors/go/bin/orchexecutor)
#
# Installs the Debian Go toolchain and grpc-go packages when missing (apt-get, with sudo when not
# root), generates the protobuf and gRPC code with protoc and Debian's protoc-gen-go /
# protoc-gen-go-grpc into gen/ (gitignored), and builds. Exit status 3: the packages are missing
# and could not be installed.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../../.." && pwd)
OUTPUT=${1:-$HERE/bin/orchexecutor}

# golang-github-golang-protobuf-1-5-dev must be named: apt would otherwise pick the 1.3 package,
# which builds but panics at run time ("protobuf tag not enough fields").
PACKAGES=(golang-go golang-google-grpc-dev golang-github-golang-protobuf-1-5-dev golang-google-protobuf-dev
          protoc-gen-go protoc-gen-go-grpc protobuf-compiler)

source "$ROOT/tools/lib/common.sh"
# ensure_apt (tools/lib/common.sh): apt-get update, then install what is missing, through sudo when not root.
if ! ensure_apt "${PACKAGES[@]}"; then
  echo "build.sh: could not install ${PACKAGES[*]} with apt-get" >&2
  exit 3
fi

# GOPATH: our sources (src/orchexecutor) and generated code (gen/src/orchestrator/gen/...),
# then Debian's /usr/share/gocode for grpc, protobuf and genproto.
GEN=$HERE/gen
rm -rf "$GEN"
mkdir -p "$GEN/src"
protos=(orchestrator/v1/dag.proto orchestrator/v1/executors.proto)
mopts=()
for proto in "${protos[@]}"; do
  mopts+=("M$proto=orchestrator/gen/orchestratorv1")
done
go_opt=$(IFS=,; echo "${mopts[*]}")
protoc -I"$ROOT/protos" --go_out="$GEN/src" --go_opt="$go_opt" \
  --go-grpc_out="$GEN/src" --go-grpc_opt="$go_opt" "${protos[@]/#/$ROOT/protos/}"

mkdir -p "$(dirname "$OUTPUT")"
export GO111MODULE=off GOPATH="$HERE:$GEN:/usr/share/gocode" GOCACHE=${GOCACHE:-$HERE/bin/.gocache}
(cd "$HERE/src/orchexecutor" && go build -o "$OUTPUT" .)
echo "built $OUTPUT"
