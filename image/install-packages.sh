#!/bin/sh
# Installs the job's Python packages for one device into /opt/venv, in one image layer:
#   install-packages.sh cpu|gpu|ascend
# MINDSPORE_PACKAGE and MINDSPORE_VERSION (build arguments) choose MindSpore; an extra CA bundle for pip comes
# from the build secret `pip-ca` when given. Reads /tmp/build/{pyproject.toml,requirements.py}.
set -eu
device=$1
case "$device" in cpu | gpu | ascend) ;; *) echo "install-packages.sh: unknown device '$device'" >&2; exit 2 ;; esac
if [ -s /run/secrets/pip-ca ]; then export PIP_CERT=/run/secrets/pip-ca; fi
# pip's downloads go to the build's cache mount (the image's HOME is /scratch/home, owned by the job's user);
# PIP_NO_CACHE_DIR=1 as a build argument bypasses it.
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore PIP_CACHE_DIR=/root/.cache/pip TMPDIR=/tmp

python /tmp/build/requirements.py /tmp/build/pyproject.toml "${MINDSPORE_PACKAGE}==${MINDSPORE_VERSION}" \
    > /tmp/build/requirements.txt
# The base's own packages stay visible (a CANN base's te, hccl and sympy); the environment's win.
python -m venv --system-site-packages /opt/venv
/opt/venv/bin/pip install --quiet --requirement /tmp/build/requirements.txt
if [ "$device" = gpu ]; then
    # The GPU plugin's `ldd` lists the CUDA 11 runtime, cuBLAS, cuFFT, cuRAND, cuSOLVER, cuSPARSE, NVRTC and
    # cuDNN 8: NVIDIA's CUDA 11.7 wheels of each, with cuDNN 8.5 (MindSpore's recommended pairing is CUDA 11.6
    # with cuDNN 8.5; CUDA 11 minor versions are compatible). libcuda.so.1 is the node's driver.
    /opt/venv/bin/pip install --quiet --no-deps \
        nvidia-cuda-runtime-cu11==11.7.99 nvidia-cublas-cu11==11.10.3.66 nvidia-cufft-cu11==10.7.2.91 \
        nvidia-curand-cu11==10.2.10.91 nvidia-cusolver-cu11==11.4.0.1 nvidia-cusparse-cu11==11.7.4.91 \
        nvidia-cuda-nvrtc-cu11==11.7.99 nvidia-cudnn-cu11==8.5.0.96
    find /opt/venv/lib/python3*/site-packages/nvidia -maxdepth 2 -name lib -type d > /etc/ld.so.conf.d/nvidia-cu11.conf
    ldconfig
fi

# Only this device's MindSpore plugin stays: the 2.10 wheel carries the CPU, GPU (CUDA 11.1 and 11.6 builds)
# and Ascend plugins, 2.4 GB together.
cd "$(echo /opt/venv/lib/python3*/site-packages/mindspore/lib/plugin)"
case "$device" in
    cpu) rm -rf ascend* libmindspore_ascend* libmindspore_ops_ascend* gpu* libmindspore_gpu* ;;
    # The CUDA 11.6 build runs on the image's CUDA 11.7 libraries; the 11.1 build would never be chosen.
    gpu) rm -rf ascend* libmindspore_ascend* libmindspore_ops_ascend* gpu11.1 libmindspore_gpu.so.11.1 ;;
    ascend) rm -rf gpu* libmindspore_gpu* ;;
esac
echo "MindSpore plugins kept for $device: $(ls | tr '\n' ' ')"
rm -rf /tmp/build
