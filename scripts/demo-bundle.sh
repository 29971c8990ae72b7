#!/usr/bin/env bash
# Builds runsc-lite, makes an OCI bundle from the host's static busybox and
# runs it: the README's "main job" command.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x /bin/busybox ] || { echo "needs /bin/busybox (apt-get install busybox-static)" >&2; exit 1; }
cargo build --release -p runsc-lite
bundle=$(mktemp -d /tmp/runsc-lite-bundle.XXXXXX)
trap 'rm -rf "$bundle"' EXIT
mkdir -p "$bundle/rootfs/bin" "$bundle/rootfs/proc" "$bundle/rootfs/dev" "$bundle/rootfs/tmp" "$bundle/rootfs/etc"
cp /bin/busybox "$bundle/rootfs/bin/busybox"
for a in sh ls cat echo uname id hostname; do ln -s busybox "$bundle/rootfs/bin/$a"; done
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
set +e
./target/release/runsc-lite run "$bundle"
echo "exit status: $? (the guest's)"
