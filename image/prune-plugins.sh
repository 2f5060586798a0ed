#!/bin/sh
# Keeps one device's MindSpore plugin in the image's virtual environment: the 2.10 wheel carries the CPU, GPU
# (CUDA 11.1 and 11.6 builds) and Ascend plugins, 2.4 GB together. Usage: prune-plugins.sh cpu|gpu|ascend
set -eu
plugin=$(echo /opt/venv/lib/python3*/site-packages/mindspore/lib/plugin)
[ -d "$plugin" ] || { echo "prune-plugins.sh: no MindSpore plugin directory under /opt/venv" >&2; exit 1; }
cd "$plugin"
case "$1" in
    cpu) rm -rf ascend* libmindspore_ascend* libmindspore_ops_ascend* gpu* libmindspore_gpu* ;;
    # The CUDA 11.6 build runs on the image's CUDA 11.7 libraries; the 11.1 build would not be chosen.
    gpu) rm -rf ascend* libmindspore_ascend* libmindspore_ops_ascend* gpu11.1 libmindspore_gpu.so.11.1 ;;
    ascend) rm -rf gpu* libmindspore_gpu* ;;
    *) echo "prune-plugins.sh: unknown device '$1' (cpu, gpu or ascend)" >&2; exit 2 ;;
esac
echo "MindSpore plugins kept for $1: $(ls)"
