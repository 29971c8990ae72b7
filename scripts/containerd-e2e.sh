#!/usr/bin/env bash
# End to end through containerd: runs busybox containers with `ctr` and
# containerd's runc shim v2 pointed (`--runc-binary`) at RUNTIME, a
# runc-compatible binary (default: this workspace's runsc-lite).
#
#   scripts/containerd-e2e.sh [RUNTIME_BINARY]
#   scripts/containerd-e2e.sh --serve
#
# It installs Debian's containerd (and runc, which the package pulls in) if
# missing, starts a containerd of its own with a private config, root,
# state and socket under a temporary directory (a system containerd, if
# any, is left alone), builds an OCI image layout from busybox-static (no
# registry is needed), imports it, and checks: output and exit status of
# `ctr run --rm`, a long-running task seen by `ctr task ls`, `ctr task ps`,
# paused and resumed, `ctr task exec` inside it, stopped by `ctr task kill`
# with its exit status seen, and an interactive `ctr run -t` shell driven
# through a pty. Each step prints PASS or FAIL; the exit status is non-zero
# if any step failed. Needs root.
#
# --serve (for benches/src/bin/lifecycle.rs): set up containerd and the
# image only, print "READY SOCKET NAMESPACE IMAGE TMPDIR" and keep them
# until standard input reaches end of file.
#
# Environment: KEEP_TMP=1 keeps the temporary directory (containerd's log
# is containerd.log there); E2E_TIMEOUT bounds each step (seconds, 60).
set -uo pipefail
cd "$(dirname "$0")/.."

serve=0
if [ "${1:-}" = --serve ]; then
    serve=1
    set -- /bin/true
fi
runtime=${1:-$PWD/target/debug/runsc-lite}
step_timeout=${E2E_TIMEOUT:-60}
if [ ! -x "$runtime" ]; then
    echo "containerd-e2e: runtime binary $runtime is not executable (cargo build -p runsc-lite?)" >&2
    exit 2
fi
runtime=$(readlink -f "$runtime")
if [ "$(id -u)" != 0 ]; then
    echo "containerd-e2e: needs root (containerd, mounts, namespaces)" >&2
    exit 2
fi

if ! command -v containerd >/dev/null || ! command -v ctr >/dev/null ||
    ! command -v containerd-shim-runc-v2 >/dev/null; then
    echo "containerd-e2e: installing containerd with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq containerd runc >/dev/null || {
        echo "containerd-e2e: apt-get install containerd failed" >&2
        exit 2
    }
fi
if [ ! -x /bin/busybox ]; then
    echo "containerd-e2e: /bin/busybox missing (apt-get install busybox-static)" >&2
    exit 2
fi

tmp=$(mktemp -d /tmp/containerd-e2e.XXXXXX)
sock=$tmp/containerd.sock
# A namespace of our own keeps the shim's runc state directory
# (/run/containerd/runc/NS) and image names apart from anyone else's.
ns=e2e$$
image=docker.io/library/busybox-e2e:latest
containerd_pid=
failures=0

cleanup() {
    if [ -n "$containerd_pid" ]; then
        # Tasks and containers first, so no shim outlives its containerd.
        for id in $(ctr -a "$sock" -n "$ns" task ls -q 2>/dev/null); do
            ctr -a "$sock" -n "$ns" task kill -s SIGKILL "$id" >/dev/null 2>&1
            ctr -a "$sock" -n "$ns" task rm -f "$id" >/dev/null 2>&1
        done
        for id in $(ctr -a "$sock" -n "$ns" containers ls -q 2>/dev/null); do
            ctr -a "$sock" -n "$ns" containers rm "$id" >/dev/null 2>&1
        done
        kill "$containerd_pid" 2>/dev/null
        for _ in $(seq 100); do
            kill -0 "$containerd_pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -9 "$containerd_pid" 2>/dev/null
    fi
    # The overlay snapshots may still be mounted if a step died mid-way.
    grep -o " $tmp/[^ ]*" /proc/self/mounts 2>/dev/null | sort -r |
        while read -r m; do umount -l "$m" 2>/dev/null; done
    if [ "${KEEP_TMP:-0}" = 1 ]; then
        echo "containerd-e2e: kept $tmp"
    else
        rm -rf "$tmp"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

pass() { echo "PASS $1"; }
fail() {
    echo "FAIL $1: $2"
    failures=$((failures + 1))
}
c() { ctr -a "$sock" -n "$ns" "$@"; }
# --runc-root keeps the runtime's state (its --root) under $tmp as well.
run_args() {
    echo --runtime io.containerd.runc.v2 --runc-binary "$runtime" \
        --runc-root "$tmp/runtime-root" --fifo-dir "$tmp/fifo"
}

# --- containerd of our own -------------------------------------------------
mkdir -p "$tmp/root" "$tmp/state" "$tmp/opt" "$tmp/fifo"
cat >"$tmp/config.toml" <<EOF
version = 2
root = "$tmp/root"
state = "$tmp/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$sock"
[ttrpc]
  address = "$sock.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "$tmp/opt"
EOF
containerd --config "$tmp/config.toml" >"$tmp/containerd.log" 2>&1 &
containerd_pid=$!
for _ in $(seq 300); do
    c version >/dev/null 2>&1 && break
    kill -0 "$containerd_pid" 2>/dev/null || break
    sleep 0.1
done
if ! c version >/dev/null 2>&1; then
    fail containerd-start "containerd did not come up; its log:"
    tail -20 "$tmp/containerd.log"
    exit 1
fi
pass containerd-start

# --- OCI image layout from busybox-static ----------------------------------
build_image() {
    local lay=$tmp/image rootfs=$tmp/image-rootfs
    mkdir -p "$lay/blobs/sha256" "$rootfs/bin" "$rootfs/etc" "$rootfs/root" \
        "$rootfs/tmp" "$rootfs/proc" "$rootfs/sys" "$rootfs/dev"
    chmod 1777 "$rootfs/tmp"
    cp /bin/busybox "$rootfs/bin/busybox"
    for applet in $(/bin/busybox --list); do
        [ "$applet" = busybox ] || ln -sf busybox "$rootfs/bin/$applet"
    done
    echo 'root:x:0:0:root:/root:/bin/sh' >"$rootfs/etc/passwd"
    echo 'root:x:0:' >"$rootfs/etc/group"
    tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner \
        -C "$rootfs" -cf "$tmp/layer.tar" . || return 1
    blob() { # file mediatype -> prints the descriptor; stores the blob
        local d s
        d=$(sha256sum "$1" | cut -d' ' -f1)
        s=$(stat -c %s "$1")
        cp "$1" "$lay/blobs/sha256/$d"
        printf '{"mediaType":"%s","digest":"sha256:%s","size":%s}' "$2" "$d" "$s"
    }
    local layer_desc layer_digest config_desc manifest_desc
    layer_desc=$(blob "$tmp/layer.tar" application/vnd.oci.image.layer.v1.tar)
    layer_digest=$(sha256sum "$tmp/layer.tar" | cut -d' ' -f1)
    printf '%s' '{"architecture":"amd64","os":"linux",'\
'"config":{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],'\
'"Cmd":["sh"],"WorkingDir":"/"},'\
'"rootfs":{"type":"layers","diff_ids":["sha256:'"$layer_digest"'"]},'\
'"history":[{"created_by":"scripts/containerd-e2e.sh: busybox-static"}]}' >"$tmp/config.json"
    config_desc=$(blob "$tmp/config.json" application/vnd.oci.image.config.v1+json)
    printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":%s,"layers":[%s]}' \
        "$config_desc" "$layer_desc" >"$tmp/manifest.json"
    manifest_desc=$(blob "$tmp/manifest.json" application/vnd.oci.image.manifest.v1+json)
    printf '{"schemaVersion":2,"manifests":[%s]}' "${manifest_desc%\}},\"platform\":{\"architecture\":\"amd64\",\"os\":\"linux\"},\"annotations\":{\"io.containerd.image.name\":\"$image\",\"org.opencontainers.image.ref.name\":\"latest\"}}" >"$lay/index.json"
    echo '{"imageLayoutVersion":"1.0.0"}' >"$lay/oci-layout"
    tar -C "$lay" -cf "$tmp/busybox-oci.tar" oci-layout index.json blobs
}
if build_image && c images import "$tmp/busybox-oci.tar" >"$tmp/import.out" 2>&1 &&
    c images ls -q | grep -qx "$image"; then
    pass image-import
else
    fail image-import "$(cat "$tmp/import.out" 2>/dev/null)"
    exit 1
fi

if [ $serve = 1 ]; then
    echo "READY $sock $ns $image $tmp"
    cat >/dev/null
    exit 0
fi

# --- ctr run --rm: output and exit status -----------------------------------
out=$(timeout "$step_timeout" ctr -a "$sock" -n "$ns" run --rm $(run_args) \
    "$image" e2e-hello sh -c 'echo hello; exit 3' </dev/null 2>&1)
status=$?
if [ "$out" = hello ] && [ $status = 3 ]; then
    pass run-exit-status
else
    fail run-exit-status "want output 'hello' and status 3, got status $status, output: $out"
fi

# The pty driver for `ctr task exec -t` and `ctr run -t`.
# The driver owns the pty master: it waits for the shell's prompt, types a
# line, and reports what came back and ctr's exit status.
cat >"$tmp/pty_drive.py" <<'EOF'
import os, pty, select, sys, time

argv = sys.argv[2:]
deadline = time.monotonic() + float(sys.argv[1])
pid, master = pty.fork()
if pid == 0:
    os.execvp(argv[0], argv)
out = b""
sent = False
while time.monotonic() < deadline:
    r, _, _ = select.select([master], [], [], 0.2)
    if r:
        try:
            chunk = os.read(master, 4096)
        except OSError:  # EIO: every slave fd is closed
            break
        if not chunk:
            break
        out += chunk
    if not sent and b"# " in out:
        os.write(master, b"echo hi; exit 5\r")
        sent = True
else:
    os.kill(pid, 9)
_, status = os.waitpid(pid, 0)
sys.stdout.write(out.decode("utf-8", "replace"))
sys.stdout.write("\nSTATUS %d\n" % os.waitstatus_to_exitcode(status))
EOF
py=$(command -v python3)

# --- a long-running task: ls, ps, pause/resume, exec, kill ------------------
id=e2e-long
# The guest's sh is PID 1 of its namespace, which ignores SIGTERM unless it
# handles it: the trap makes `ctr task kill`'s default SIGTERM end it.
timeout "$step_timeout" ctr -a "$sock" -n "$ns" run --rm $(run_args) "$image" "$id" \
    sh -c 'trap "echo got TERM; exit 143" TERM; echo started; while :; do sleep 1 & wait $!; done' \
    </dev/null >"$tmp/long.out" 2>&1 &
long_pid=$!
running=0
for _ in $(seq $((step_timeout * 10))); do
    if c task ls 2>/dev/null | grep -Eq "^$id +[0-9]+ +RUNNING"; then
        running=1
        break
    fi
    kill -0 $long_pid 2>/dev/null || break
    sleep 0.1
done
if [ $running = 1 ]; then
    pass task-ls-running
else
    fail task-ls-running "$(c task ls 2>&1; cat "$tmp/long.out")"
fi

if [ $running = 1 ]; then
    # `ctr task ps` lists host pids the shim got from `RUNTIME ps`.
    pids=$(timeout "$step_timeout" ctr -a "$sock" -n "$ns" task ps "$id" 2>&1)
    if [ "$(echo "$pids" | grep -Ec '^[0-9]+ ')" -ge 1 ]; then
        pass task-ps
    else
        fail task-ps "$pids"
    fi

    if timeout "$step_timeout" ctr -a "$sock" -n "$ns" task pause "$id" >"$tmp/pause.out" 2>&1 &&
        c task ls | grep -Eq "^$id +[0-9]+ +PAUSED" &&
        timeout "$step_timeout" ctr -a "$sock" -n "$ns" task resume "$id" >>"$tmp/pause.out" 2>&1 &&
        c task ls | grep -Eq "^$id +[0-9]+ +RUNNING"; then
        pass task-pause-resume
    else
        fail task-pause-resume "$(cat "$tmp/pause.out"; c task ls 2>&1)"
    fi

    ps_out=$(timeout "$step_timeout" ctr -a "$sock" -n "$ns" task exec --fifo-dir "$tmp/fifo" --exec-id x "$id" ps \
        </dev/null 2>&1)
    status=$?
    # busybox ps: PID USER TIME COMMAND; PID 1 is the trap loop's sh.
    if [ $status = 0 ] && echo "$ps_out" | grep -Eq '^ *1 +root +.* sh -c trap' &&
        echo "$ps_out" | grep -Eq ' ps$'; then
        pass task-exec-ps
    else
        fail task-exec-ps "status $status, output: $ps_out"
    fi

    out=$(timeout "$step_timeout" ctr -a "$sock" -n "$ns" task exec --fifo-dir "$tmp/fifo" --exec-id y "$id" \
        sh -c 'echo from exec; exit 4' </dev/null 2>&1)
    status=$?
    if [ "$out" = "from exec" ] && [ $status = 4 ]; then
        pass task-exec-status
    else
        fail task-exec-status "want 'from exec' and status 4, got status $status, output: $out"
    fi

    # `ctr task exec -t`: the shim hands runsc-lite a console socket; the
    # exec'd shell gets a Sentry pty bridged to the shim's master.
    out=$("$py" "$tmp/pty_drive.py" "$step_timeout" ctr -a "$sock" -n "$ns" task exec -t \
        --fifo-dir "$tmp/fifo" --exec-id t "$id" sh 2>&1)
    if echo "$out" | tr -d '\r' | grep -qx hi && echo "$out" | grep -qx 'STATUS 5'; then
        pass task-exec-tty
    else
        fail task-exec-tty "want a line 'hi' and status 5, got: $(echo "$out" | cat -v)"
    fi

    c task kill "$id" >"$tmp/kill.out" 2>&1
    wait $long_pid
    status=$?
    if [ $status = 143 ] && grep -q 'got TERM' "$tmp/long.out"; then
        pass task-kill-status
    else
        fail task-kill-status "want status 143 after SIGTERM, got $status: $(cat "$tmp/kill.out" "$tmp/long.out")"
    fi
    if c task ls -q | grep -qx "$id" || c containers ls -q | grep -qx "$id"; then
        fail run-rm-cleanup "$id still listed after ctr run --rm returned"
    else
        pass run-rm-cleanup
    fi
else
    kill $long_pid 2>/dev/null
    wait $long_pid
fi

# --- ctr run -t: an interactive shell on a pty ------------------------------
out=$("$py" "$tmp/pty_drive.py" "$step_timeout" ctr -a "$sock" -n "$ns" run -t --rm \
    $(run_args) "$image" e2e-tty sh 2>&1)
# The line "hi" on its own (the typed line is echoed too, as "echo hi; ...").
if echo "$out" | tr -d '\r' | grep -qx hi && echo "$out" | grep -qx 'STATUS 5'; then
    pass run-tty
else
    fail run-tty "want a line 'hi' and status 5, got: $(echo "$out" | cat -v)"
fi

if [ $failures = 0 ]; then
    echo "containerd-e2e: all steps passed with $runtime"
    exit 0
fi
echo "containerd-e2e: $failures step(s) failed with $runtime"
exit 1
