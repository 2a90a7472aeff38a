# Shared helpers for tools/* scripts. Source it; it sets ROOT and defines the functions below.
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
export ROOT
VENV="$ROOT/.venv"

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

as_root() {
  if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi
}

# ensure_apt PKG... — installs the Debian packages that are not installed yet (apt-get update once).
ensure_apt() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  ((${#missing[@]} == 0)) && return 0
  log "installing Debian packages: ${missing[*]}"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# The packages every build needs (faketime: tools/chaos runs executors with skewed clocks).
BUILD_PACKAGES=(libnghttp2-dev libevent-dev libssl-dev libpq-dev libprotobuf-c-dev protobuf-c-compiler
  protobuf-compiler zlib1g-dev postgresql postgresql-contrib nghttp2-client openssl python3-venv
  faketime)

# ensure_venv — a virtualenv at .venv with tools/requirements.txt installed (re-run when it changes).
ensure_venv() {
  local stamp="$VENV/.requirements.sha"
  local want
  want=$(sha256sum "$ROOT/tools/requirements.txt" | cut -d' ' -f1)
  if [[ ! -x "$VENV/bin/python" ]]; then
    log "creating virtualenv .venv"
    python3 -m venv "$VENV"
  fi
  if [[ ! -f "$stamp" || $(cat "$stamp") != "$want" ]]; then
    log "installing Python packages from tools/requirements.txt"
    "$VENV/bin/python" -m pip install -q --upgrade pip >/dev/null
    "$VENV/bin/python" -m pip install -q -r "$ROOT/tools/requirements.txt"
    echo "$want" >"$stamp"
  fi
}

# ensure_swift — puts the toolchain on PATH when it is installed but not there (CI keeps it at /opt/swift).
ensure_swift() {
  if ! command -v swift >/dev/null 2>&1; then
    local dir
    for dir in /opt/swift/usr/bin /opt/swift/bin /usr/share/swift/usr/bin; do
      if [[ -x "$dir/swift" ]]; then
        PATH="$dir:$PATH"
        export PATH
        break
      fi
    done
  fi
  command -v swift >/dev/null 2>&1 || { log "swift not found: install Swift 6 (https://swift.org/install) or put it on PATH"; return 1; }
}

# at_exit CMD... — runs CMD when the script exits (last registered first); one EXIT trap for all.
_AT_EXIT=()
at_exit() {
  _AT_EXIT+=("$(printf '%q ' "$@")")
  trap _run_at_exit EXIT
}
_run_at_exit() {
  local status=$? i
  for ((i = ${#_AT_EXIT[@]} - 1; i >= 0; i--)); do
    eval "${_AT_EXIT[i]}" || true
  done
  return "$status"
}

# free_port [COUNT] — COUNT (default 1) distinct TCP ports on 127.0.0.1 that nothing is bound to now,
# below the ephemeral range so no outgoing connection takes one before its server binds it.
free_port() {
  python3 "$ROOT/tools/lib/free_port.py" "${1:-1}"
}
