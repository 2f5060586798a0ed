#!/usr/bin/env bash
# Prepares a machine's container engine for `make image-test` (CI runs it as root): installs podman, runc and
# debootstrap from Debian's packages when no working engine is there, and keeps podman's default ulimits
# within this machine's hard limits (podman's defaults, e.g. nofile=1048576, fail to start any container where
# the hard limit is lower: "error setting rlimit ... operation not permitted").
set -euo pipefail
conf=/etc/containers/containers.conf.d/50-finetune-host-limits.conf

if ! command -v podman > /dev/null 2>&1 && ! docker version > /dev/null 2>&1; then
    if [ "$(id -u)" != 0 ] || ! command -v apt-get > /dev/null 2>&1; then
        echo "error: no container engine: install podman (Debian: apt-get install podman runc) or docker" >&2
        exit 2
    fi
    echo "installing podman, runc and debootstrap from Debian's packages"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends podman runc debootstrap \
        uidmap containernetworking-plugins iptables > /dev/null
fi
if command -v podman > /dev/null 2>&1 && [ "$(id -u)" = 0 ] && ! command -v debootstrap > /dev/null 2>&1; then
    apt-get install -y -qq --no-install-recommends debootstrap > /dev/null || true
fi

if command -v podman > /dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    nofile=$(ulimit -Hn)
    nproc=$(ulimit -Hu)
    pid_max=$(cat /proc/sys/kernel/pid_max)  # podman's own processes hold nproc at most at pid_max
    if [ "$nproc" = unlimited ] || [ "$nproc" -gt "$pid_max" ]; then nproc=$pid_max; fi
    limits=""
    [ "$nofile" = unlimited ] || limits="\"nofile=$nofile:$nofile\""
    limits="${limits:+$limits, }\"nproc=$nproc:$nproc\""
    runtime=""
    # crun fails on hybrid cgroup hierarchies ("cgroups in hybrid mode not supported"); runc does not.
    if [ "$(stat -fc %T /sys/fs/cgroup)" != cgroup2fs ] && command -v runc > /dev/null 2>&1; then
        runtime='runtime = "runc"'
    fi
    mkdir -p "$(dirname "$conf")"
    {
        echo "# Written by image/configure-engine.sh: this machine's hard limits, not podman's larger defaults."
        echo "[containers]"
        [ -z "$limits" ] || echo "default_ulimits = [$limits]"
        echo "[engine]"
        [ -z "$runtime" ] || echo "$runtime"
    } > "$conf"
fi
engine=$(command -v podman || command -v docker)
echo "container engine: $($engine --version)"
