#!/usr/bin/env bash
# Builds the Java example executor offline from Debian packages (plain javac, no Maven/Gradle; see
# README.md).
#
#   examples/executors/java/build.sh [OUTPUT]    (default OUTPUT: examples/executors/java/build/orchexecutor)
#
# Installs the JDK, grpc-java and the jars it needs when missing (apt-get, with sudo when not
# root), generates the protobuf and gRPC classes with protoc and Debian's grpc_java_plugin into
# OUTPUT.build/gen (build/ is gitignored), compiles them with the example into OUTPUT.jar, whose
# manifest names the /usr/share/java jars (Class-Path), and writes OUTPUT, a launcher script
# (`java -jar OUTPUT.jar`).
# The same jar holds the API check program: java -cp OUTPUT.jar dev.orchestrator.examples.ApiChecks.
# Exit status 3: the packages are missing and could not be installed.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../../.." && pwd)
OUTPUT=${1:-$HERE/build/orchexecutor}
case $OUTPUT in /*) ;; *) OUTPUT=$PWD/$OUTPUT ;; esac

# Debian's libgrpc-java declares no dependency on the jars it needs (only libopencensus-java):
# protobuf, guava, netty, perfmark (without it calls hang: a NoClassDefFoundError in a Netty
# thread), gson, and the javax.annotation.Generated that grpc_java_plugin 1.41 writes into every
# *Grpc.java (gone from the JDK since 11; the plugin has no option to omit it).
PACKAGES=(libgrpc-java protobuf-compiler-grpc-java-plugin protobuf-compiler libprotobuf-java libguava-java
          libnetty-java libperfmark-java libgoogle-gson-java libjsr305-java liberror-prone-java
          libgeronimo-annotation-1.3-spec-java libgoogle-common-protos-java libnetty-tcnative-java)
command -v javac >/dev/null 2>&1 || PACKAGES+=(default-jdk-headless)

source "$ROOT/tools/lib/common.sh"
# ensure_apt (tools/lib/common.sh): apt-get update, then install what is missing, through sudo when not root.
if ! ensure_apt "${PACKAGES[@]}"; then
  echo "build.sh: could not install ${PACKAGES[*]} with apt-get" >&2
  exit 3
fi

J=/usr/share/java
# Run time: grpc-java with its Netty transport (the only one Debian ships: no OkHttp) and what it loads.
RUNTIME_JARS=(grpc-api grpc-context grpc-core grpc-netty grpc-protobuf grpc-protobuf-lite grpc-stub protobuf guava
              proto-google-common-protos perfmark-api gson netty-buffer netty-codec netty-codec-http
              netty-codec-http2 netty-common netty-handler netty-resolver netty-transport netty-handler-proxy
              netty-codec-socks netty-tcnative)
# Compile time only: annotations.
COMPILE_JARS=(jsr305 error_prone_annotations geronimo-annotation-1.3-spec)
classpath=""
for jar in "${RUNTIME_JARS[@]}" "${COMPILE_JARS[@]}"; do
  [[ -f $J/$jar.jar ]] || { echo "build.sh: $J/$jar.jar is missing" >&2; exit 1; }
  classpath+="${classpath:+:}$J/$jar.jar"
done

# Intermediates beside the output (OUTPUT.build/gen, OUTPUT.build/classes), so that builds into
# different outputs never share a folder.
BUILD=$OUTPUT.build
rm -rf "$BUILD/gen" "$BUILD/classes"
mkdir -p "$BUILD/gen" "$BUILD/classes" "$(dirname "$OUTPUT")"
protoc -I"$ROOT/protos" --java_out="$BUILD/gen" \
  --plugin=protoc-gen-grpc-java=/usr/bin/grpc_java_plugin --grpc-java_out="$BUILD/gen" \
  "$ROOT"/protos/orchestrator/v1/*.proto
find "$BUILD/gen" "$HERE/src" -name '*.java' > "$BUILD/sources.txt"
javac -nowarn -encoding UTF-8 -d "$BUILD/classes" -cp "$classpath" @"$BUILD/sources.txt"

# TLS. Debian's netty has no JDK ALPN support (its JdkAlpn* classes are patched out: "JDK provider
# does not support ALPN protocol"), so grpc-java's TLS needs OpenSSL through netty-tcnative. But
# libnetty-tcnative-jni installs libnetty-tcnative.so, a name netty 4.1.48 never loads (it tries
# netty_tcnative_linux_x86_64, ..., netty_tcnative), and the library refuses to run under a symlink
# of another name. A copy inside the jar at META-INF/native/libnetty_tcnative.so is a name netty
# extracts and loads: TLS then works with nothing on the command line.
tcnative=$(dpkg-query -L libnetty-tcnative-jni | grep -m1 '/libnetty-tcnative\.so$' || true)
if [[ -n $tcnative ]]; then
  mkdir -p "$BUILD/classes/META-INF/native"
  cp "$tcnative" "$BUILD/classes/META-INF/native/libnetty_tcnative.so"
fi

{
  printf 'Main-Class: dev.orchestrator.examples.JavaExecutor\n'
  printf 'Class-Path: %s' "$J/${RUNTIME_JARS[0]}.jar"
  # Manifest lines stop at 72 bytes: one jar per continuation line (" " + the separating space).
  for jar in "${RUNTIME_JARS[@]:1}"; do printf '\n  %s' "$J/$jar.jar"; done
  printf '\n'
} > "$BUILD/manifest.txt"
rm -f "$OUTPUT.jar"
jar cfm "$OUTPUT.jar" "$BUILD/manifest.txt" -C "$BUILD/classes" .
cat > "$OUTPUT" <<EOF
#!/bin/sh
# Java example executor (built by examples/executors/java/build.sh): flags in its README.md.
exec java \${JAVA_OPTS:-} -jar "$OUTPUT.jar" "\$@"
EOF
chmod +x "$OUTPUT"
echo "built $OUTPUT ($OUTPUT.jar)"
