#!/usr/bin/env bash
# Sets up the Ruby example executor offline from Debian packages (ruby-grpc 1.51; see README.md).
#
#   examples/executors/ruby/build.sh [OUTPUT]    (default OUTPUT: examples/executors/ruby/build/orchexecutor)
#
# Installs ruby, ruby-grpc and ruby-grpc-tools when missing (apt-get, with sudo when not root),
# generates the protobuf messages and gRPC stubs with grpc_tools_ruby_protoc into OUTPUT.build/gen
# (build/ is gitignored), and writes two launchers that put those stubs and this folder on Ruby's
# load path: OUTPUT (the executor, orchexecutor.rb) and OUTPUT-api-checks (api_checks.rb).
# Nothing is compiled: the launchers run the sources in this folder, so edits take effect at once.
# Exit status 3: the packages are missing and could not be installed.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../../.." && pwd)
OUTPUT=${1:-$HERE/build/orchexecutor}
case $OUTPUT in /*) ;; *) OUTPUT=$PWD/$OUTPUT ;; esac

# ensure_apt (tools/lib/common.sh): apt-get update, then install what is missing, through sudo when
# not root. ruby-grpc pulls in ruby-google-protobuf and ruby-googleapis-common-protos-types
# (google/rpc/status_pb, which GRPC::BadStatus#to_rpc_status loads); ruby-grpc-tools brings
# grpc_tools_ruby_protoc, Debian's wrapper around /usr/bin/protoc and grpc_ruby_plugin.
source "$ROOT/tools/lib/common.sh"
if ! ensure_apt ruby ruby-grpc ruby-grpc-tools; then
  echo "build.sh: could not install ruby ruby-grpc ruby-grpc-tools with apt-get" >&2
  exit 3
fi

# Stubs beside the output (OUTPUT.build/gen), so that builds into different outputs never share a folder.
GEN=$OUTPUT.build/gen
rm -rf "$GEN"
mkdir -p "$GEN" "$(dirname "$OUTPUT")"
grpc_tools_ruby_protoc -I"$ROOT/protos" --ruby_out="$GEN" --grpc_out="$GEN" "$ROOT"/protos/orchestrator/v1/*.proto

launcher() { # PATH SCRIPT
  cat > "$1" <<LAUNCHER
#!/bin/sh
# Ruby example (written by examples/executors/ruby/build.sh): flags in its README.md.
exec ruby -I "$GEN" -I "$HERE" "$HERE/$2" "\$@"
LAUNCHER
  chmod +x "$1"
}
launcher "$OUTPUT" orchexecutor.rb
launcher "$OUTPUT-api-checks" api_checks.rb
echo "built $OUTPUT and $OUTPUT-api-checks (stubs in $GEN)"
