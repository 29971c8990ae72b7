#!/usr/bin/env bash
# The README's "main job": builds runsc-lite, makes an OCI bundle from the
# host's static busybox and runs it. Exits 0 only when the build, the run
# and its output are all as expected.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x /bin/busybox ] || { echo "demo-bundle: needs /bin/busybox (apt-get install busybox-static)" >&2; exit 1; }

# Wherever cargo puts it (CARGO_TARGET_DIR, a config's build.target-dir):
# the path is read from cargo's own report of what it built.
bin=$(cargo build --release -p runsc-lite --bin runsc-lite --message-format=json-render-diagnostics |
    sed -n 's/.*"executable":"\([^"]*\/runsc-lite\)".*/\1/p' | tail -1)
if [ -z "$bin" ] || [ ! -x "$bin" ]; then
    echo "demo-bundle: cargo did not report a runsc-lite executable" >&2
    exit 1
fi

bundle=$(mktemp -d /tmp/runsc-lite-bundle.XXXXXX)
state=$(mktemp -d /tmp/runsc-lite-state.XXXXXX)
trap 'rm -rf "$bundle" "$state"' EXIT
mkdir -p "$bundle/rootfs/bin" "$bundle/rootfs/proc" "$bundle/rootfs/dev" "$bundle/rootfs/tmp" "$bundle/rootfs/etc"
cp /bin/busybox "$bundle/rootfs/bin/busybox"
for a in sh ls cat echo uname id hostname touch; do ln -s busybox "$bundle/rootfs/bin/$a"; done
echo "root:x:0:0:root:/:/bin/sh" > "$bundle/rootfs/etc/passwd"
cat > "$bundle/config.json" <<'JSON'
{
  "ociVersion": "1.0.2",
  "process": {
    "user": { "uid": 0, "gid": 0 },
    "args": ["/bin/sh", "-c", "echo \"hello from $(hostname), kernel $(uname -r)\"; id; ls /; echo pid $$ > /tmp/pid; cat /tmp/pid; touch /etc/x || echo root is read-only; exit 3"],
    "env": ["PATH=/bin", "HOSTNAME=demo"],
    "cwd": "/"
  },
  "root": { "path": "rootfs", "readonly": true },
  "hostname": "demo",
  "mounts": [
    { "destination": "/proc", "type": "proc", "source": "proc" },
    { "destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["mode=1777"] }
  ]
}
JSON

echo "\$ runsc-lite --root $state run $bundle"
set +e
out=$("$bin" --root "$state" run "$bundle")
status=$?
set -e
printf '%s\n' "$out"
echo "exit status: $status (the guest's)"

expected="hello from demo, kernel 4.4.0
uid=0(root) gid=0
bin
dev
etc
proc
tmp
pid 1
root is read-only"
if [ "$status" != 3 ] || [ "$out" != "$expected" ]; then
    echo "demo-bundle: FAILED: expected exit status 3 and this output:" >&2
    printf '%s\n' "$expected" >&2
    exit 1
fi
echo "demo-bundle: ok"
