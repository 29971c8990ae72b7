#!/usr/bin/env bash
# Installs what building and testing runsc-lite needs on Debian 12 (run as
# root): the README's commands and .ci/run both call this, so a fresh
# machine and CI have the same things. Checks the Rust toolchain too.
set -euo pipefail
cd "$(dirname "$0")/.."

# The oldest rustc that builds the locked dependencies (rust-version in
# Cargo.toml); Debian 12's packaged rustc (1.63) is older.
min_rust=$(sed -n 's/^rust-version *= *"\(.*\)"/\1/p' Cargo.toml | head -1)
if ! have=$(rustc --version 2>/dev/null); then
    echo "install-deps: no rustc found; install Rust $min_rust or newer with rustup:" >&2
    echo "  curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y && . ~/.cargo/env" >&2
    exit 1
fi
have=$(echo "$have" | awk '{print $2}')
if [ "$(printf '%s\n%s\n' "$min_rust" "${have%%-*}" | sort -V | head -1)" != "$min_rust" ]; then
    echo "install-deps: rustc $have is too old: runsc-lite needs $min_rust or newer." >&2
    echo "  Debian's rustc package is 1.63; install a current one with rustup:" >&2
    echo "  curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y && . ~/.cargo/env" >&2
    exit 1
fi

# --containerd: also Debian's containerd (it pulls in runc) for the
# containerd end to end test (tests/tests/containerd.rs); about 12 s of
# apt-get install. CI passes it; without it that test reports SKIPPED.
with_containerd=0
[ "${1:-}" = --containerd ] && with_containerd=1

# busybox-static: the demo bundle and the workload tests; gcc and
# libc6-dev (static libc): the C guest programs; make, python3, iproute2
# (ip) and iputils-ping: the workload tests that run them; procps (pkill)
# and util-linux (unshare): the network tests, in namespaces of their own.
need=()
[ -x /bin/busybox ] || need+=(busybox-static)
command -v gcc >/dev/null || need+=(gcc)
[ -f /usr/lib/x86_64-linux-gnu/libc.a ] || need+=(libc6-dev)
command -v make >/dev/null || need+=(make)
command -v python3 >/dev/null || need+=(python3)
command -v ip >/dev/null || need+=(iproute2)
command -v ping >/dev/null || need+=(iputils-ping)
command -v pkill >/dev/null || need+=(procps)
command -v unshare >/dev/null || need+=(util-linux)
if [ $with_containerd = 1 ]; then
    command -v containerd >/dev/null || need+=(containerd)
    command -v runc >/dev/null || need+=(runc)
fi
if [ ${#need[@]} -gt 0 ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "install-deps: missing ${need[*]}; run this as root (it uses apt-get)" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${need[@]}"
fi
echo "install-deps: rustc $have, busybox, gcc, libc.a, make, python3, ip, ping, pkill, unshare present"
[ $with_containerd = 0 ] || echo "install-deps: containerd and runc present"
