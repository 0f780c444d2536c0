#!/usr/bin/env bash
# A single-node Garage (S3 + K2V) on loopback for imapsim: installs Garage 2.5.0 from crates.io into a
# cache folder (once; ~30-60 minutes of compiling), starts one node (replication factor 1, sqlite,
# S3, K2V and admin APIs on free loopback ports, data and metadata under one folder), assigns the
# layout, creates a key and a bucket, and writes what a client needs.
#
# Garage is AGPL-3.0: imapsim only runs its binary; it never links Garage's crates.
#
# Usage:
#   scripts/garage.sh install          install (or reuse) the binary; prints its path
#   scripts/garage.sh start [DIR]      start a node in DIR (default: a new temp folder); prints the env
#   scripts/garage.sh stop DIR         stop the node of DIR
#   scripts/garage.sh clean DIR        stop it and remove DIR
#
# `start` writes into DIR:
#   garage.toml   the node's configuration       garage.log    its output
#   garage.pid    its process id                 data/ meta/   its storage
#   garage.env    GARAGE_S3_ENDPOINT, GARAGE_K2V_ENDPOINT, GARAGE_REGION, GARAGE_BUCKET,
#                 GARAGE_KEY_ID, GARAGE_SECRET, ... (shell syntax, one KEY=value a line)
#   serve.toml    a `[store]` section for `imapsim serve --config DIR/serve.toml`
#
# Environment: IMAPSIM_CACHE (default $HOME/.cache/imapsim), GARAGE_BIN (use this binary instead),
# GARAGE_BUCKET (default imapsim), GARAGE_REGION (default garage).
set -euo pipefail

GARAGE_VERSION=2.5.0
CACHE="${IMAPSIM_CACHE:-$HOME/.cache/imapsim}"
INSTALL_ROOT="$CACHE/garage"
BUCKET="${GARAGE_BUCKET:-imapsim}"
REGION="${GARAGE_REGION:-garage}"
KEY_NAME=imapsim-key

die() { echo "garage.sh: $*" >&2; exit 1; }

garage_bin() {
  if [[ -n "${GARAGE_BIN:-}" ]]; then echo "$GARAGE_BIN"; else echo "$INSTALL_ROOT/bin/garage"; fi
}

install() {
  local bin; bin="$(garage_bin)"
  # `garage --version` prints e.g. "garage cargo:2.5.0 [features: ...]" (a crates.io build).
  if [[ -x "$bin" ]] && "$bin" --version 2>/dev/null | grep -Eq "[:v ]${GARAGE_VERSION//./\\.}( |$)"; then
    echo "$bin"; return 0
  fi
  [[ -n "${GARAGE_BIN:-}" ]] && die "GARAGE_BIN=$GARAGE_BIN is not Garage v$GARAGE_VERSION"
  command -v cargo >/dev/null || die "cargo is needed to install Garage"
  mkdir -p "$INSTALL_ROOT"
  echo "garage.sh: installing Garage $GARAGE_VERSION into $INSTALL_ROOT (this takes a while)" >&2
  local started; started=$(date +%s)
  cargo install garage --version "$GARAGE_VERSION" --locked --root "$INSTALL_ROOT" >&2
  echo "garage.sh: installed in $(( $(date +%s) - started )) s" >&2
  echo "$bin"
}

# Whether a TCP port is listened on (IPv4 or IPv6), from /proc/net.
port_in_use() {
  local hex; hex=$(printf '%04X' "$1")
  cat /proc/net/tcp /proc/net/tcp6 2>/dev/null | awk -v p=":$hex" '$2 ~ p"$" && $4 == "0A" { found = 1 } END { exit !found }'
}

# A port nothing listens on, distinct from the ones already picked (arguments).
free_port() {
  local port taken
  for _ in $(seq 1 200); do
    port=$(( 20000 + (RANDOM * 32768 + RANDOM) % 40000 ))
    taken=0
    for p in "$@"; do [[ "$p" == "$port" ]] && taken=1; done
    if [[ $taken == 0 ]] && ! port_in_use "$port"; then echo "$port"; return 0; fi
  done
  die "no free port found"
}

random_hex() { od -An -tx1 -N"$1" /dev/urandom | tr -d ' \n'; }

# HTTP status code of GET http://127.0.0.1:$1$2 (empty when nothing answers), with bash's /dev/tcp.
http_status() {
  ( exec 3<>"/dev/tcp/127.0.0.1/$1" && printf 'GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' "$2" >&3 && head -n1 <&3 ) \
    2>/dev/null | awk '{ print $2 }' || true
}

start() {
  local dir="${1:-}" bin
  bin="$(install)"
  if [[ -z "$dir" ]]; then dir=$(mktemp -d "${TMPDIR:-/tmp}/imapsim-garage.XXXXXX"); fi
  mkdir -p "$dir"
  dir="$(cd "$dir" && pwd)"
  [[ -f "$dir/garage.pid" ]] && kill -0 "$(cat "$dir/garage.pid")" 2>/dev/null && die "a node already runs in $dir"
  local cfg="$dir/garage.toml" attempt pid="" s3 k2v rpc admin admin_token
  for attempt in 1 2 3; do
    s3=$(free_port); k2v=$(free_port "$s3"); rpc=$(free_port "$s3" "$k2v"); admin=$(free_port "$s3" "$k2v" "$rpc")
    admin_token=$(random_hex 16)
    cat >"$cfg" <<EOF
# A single-node Garage for imapsim (scripts/garage.sh).
metadata_dir = "$dir/meta"
data_dir = "$dir/data"
db_engine = "sqlite"
replication_factor = 1
# Blocks stored as written: a scan of data_dir for plaintext means something.
compression_level = "none"

rpc_bind_addr = "127.0.0.1:$rpc"
rpc_public_addr = "127.0.0.1:$rpc"
rpc_secret = "$(random_hex 32)"

[s3_api]
s3_region = "$REGION"
api_bind_addr = "127.0.0.1:$s3"
root_domain = ".s3.garage.localhost"

[k2v_api]
api_bind_addr = "127.0.0.1:$k2v"

[admin]
api_bind_addr = "127.0.0.1:$admin"
admin_token = "$admin_token"
EOF
    chmod 600 "$cfg"
    "$bin" -c "$cfg" server >"$dir/garage.log" 2>&1 </dev/null &
    pid=$!
    echo "$pid" >"$dir/garage.pid"
    # Up to 30 s for the node to answer its own CLI.
    local up=0
    for _ in $(seq 1 60); do
      if ! kill -0 "$pid" 2>/dev/null; then break; fi
      if "$bin" -c "$cfg" status >/dev/null 2>&1; then up=1; break; fi
      sleep 0.5
    done
    [[ $up == 1 ]] && break
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    echo "garage.sh: attempt $attempt did not start (ports $s3 $k2v $rpc $admin); log:" >&2
    tail -n 5 "$dir/garage.log" >&2 || true
    pid=""
  done
  [[ -n "$pid" ]] || die "Garage did not start; see $dir/garage.log"

  local g=("$bin" -c "$cfg") node
  node=$("${g[@]}" node id -q 2>/dev/null | head -n1)
  node="${node%%@*}"
  [[ -n "$node" ]] || die "no node id"
  "${g[@]}" layout assign -z dc1 -c 1G "$node" >/dev/null
  "${g[@]}" layout apply --version 1 >/dev/null
  # Healthy once the layout is in force: the admin API's /health answers 200.
  local healthy=0
  for _ in $(seq 1 60); do
    if [[ "$(http_status "$admin" /health)" == 200 ]]; then healthy=1; break; fi
    sleep 0.5
  done
  [[ $healthy == 1 ]] || die "Garage is not healthy after 30 s; see $dir/garage.log"

  local key_out key_id secret
  key_out=$("${g[@]}" key create "$KEY_NAME")
  key_id=$(echo "$key_out" | awk '/^Key ID:/ { print $3 }')
  secret=$(echo "$key_out" | awk '/^Secret key:/ { print $3 }')
  if [[ -z "$secret" || "$secret" == "(redacted)" ]]; then
    secret=$("${g[@]}" key info --show-secret "$KEY_NAME" | awk '/^Secret key:/ { print $3 }')
  fi
  [[ -n "$key_id" && -n "$secret" ]] || die "could not read the key: $key_out"
  "${g[@]}" bucket create "$BUCKET" >/dev/null
  "${g[@]}" bucket allow --read --write --owner "$BUCKET" --key "$KEY_NAME" >/dev/null

  cat >"$dir/garage.env" <<EOF
GARAGE_BIN=$bin
GARAGE_DIR=$dir
GARAGE_CONFIG=$cfg
GARAGE_PID=$pid
GARAGE_S3_ENDPOINT=127.0.0.1:$s3
GARAGE_K2V_ENDPOINT=127.0.0.1:$k2v
GARAGE_ADMIN_ENDPOINT=127.0.0.1:$admin
GARAGE_ADMIN_TOKEN=$admin_token
GARAGE_REGION=$REGION
GARAGE_BUCKET=$BUCKET
GARAGE_KEY_ID=$key_id
GARAGE_SECRET=$secret
GARAGE_DATA_DIR=$dir/data
GARAGE_META_DIR=$dir/meta
EOF
  chmod 600 "$dir/garage.env"
  cat >"$dir/serve.toml" <<EOF
# imapsim serve --config $dir/serve.toml (scripts/garage.sh)
[store]
s3_endpoint = "127.0.0.1:$s3"
k2v_endpoint = "127.0.0.1:$k2v"
region = "$REGION"
bucket = "$BUCKET"
key_id = "$key_id"
secret = "$secret"
EOF
  chmod 600 "$dir/serve.toml"
  cat "$dir/garage.env"
  echo "garage.sh: ready in $dir (imapsim serve --config $dir/serve.toml)" >&2
}

stop() {
  local dir="${1:-}"
  [[ -n "$dir" ]] || die "stop needs the node's folder"
  [[ -f "$dir/garage.pid" ]] || return 0
  local pid; pid=$(cat "$dir/garage.pid")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$dir/garage.pid"
}

case "${1:-}" in
  install) install ;;
  start) start "${2:-}" ;;
  stop) stop "${2:-}" ;;
  clean) stop "${2:-}"; [[ -n "${2:-}" ]] && rm -rf "$2" ;;
  *) sed -n '2,23p' "$0" >&2; exit 2 ;;
esac
