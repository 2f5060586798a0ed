# The fine-tuning job's image: `python -m job`, configured by FT_* variables (python -m job --help).
#
# One image per device, chosen by the build argument DEVICE (`make image` builds cpu; `python3 -m image.build
# --device gpu` the others):
#   cpu     the default: MindSpore with its CPU plugin only
#   gpu     MindSpore's CUDA 11.6 plugin with CUDA 11 / cuDNN 8 runtime libraries from NVIDIA's wheels; the
#           driver (libcuda.so.1) comes from the node, through the NVIDIA container runtime
#   ascend  MindSpore's Ascend plugin on BASE_IMAGE=<a CANN image with python3.11 as `python` on PATH>
# Build arguments: BASE_IMAGE, MINDSPORE_PACKAGE and MINDSPORE_VERSION (honoured: nothing else pins MindSpore),
# VERSION and REVISION (OCI labels), PIP_NO_CACHE_DIR=1 (bypass pip's download cache mount). An extra CA
# bundle for pip (a TLS-intercepting proxy) is taken from the build secret `pip-ca` when given:
# --secret id=pip-ca,src=/path/to/ca.crt.
ARG BASE_IMAGE=python:3.11.7-slim-bookworm
ARG MINDSPORE_PACKAGE=mindspore
ARG MINDSPORE_VERSION=2.10.0

# ---- The job's code, compiled once (the root filesystem is read-only: no bytecode is written later) ------
FROM ${BASE_IMAGE} AS code
COPY contract /opt/finetune/contract
COPY job /opt/finetune/job
COPY mindspore_hub /opt/finetune/mindspore_hub
RUN python -m compileall -q /opt/finetune/contract /opt/finetune/job /opt/finetune/mindspore_hub

# ---- The runtime: the base, the one system library MindSpore needs, the non-root user ---------------------
FROM ${BASE_IMAGE} AS runtime
# `ldd` over every shared object of the MindSpore wheel on this base finds one missing system library,
# libgomp.so.1 (GCC's OpenMP runtime), installed unless the base has it (CANN images do). Debian stable's point
# releases update it, so it is not pinned.
# hadolint ignore=DL3008
RUN if ! python -c 'import ctypes.util, sys; sys.exit(not ctypes.util.find_library("gomp"))'; then \
        apt-get update \
        && apt-get install -y --no-install-recommends libgomp1 \
        && apt-get clean \
        && rm -rf /var/lib/apt/lists/*; \
    fi \
    && useradd --uid 10001 --user-group --no-create-home --home-dir /scratch/home --shell /usr/sbin/nologin \
        finetune \
    && mkdir -p /scratch /cache \
    && chown 10001:10001 /scratch /cache
# The root filesystem is read-only in the pod: everything written goes to /scratch (also the working
# directory, for MindSpore's files relative to it: rank_*/, kernel_meta/, rewritten_network/), /cache or
# /dev/shm, which are volumes.
ENV PATH=/opt/venv/bin:${PATH} \
    PYTHONPATH=/opt/finetune${PYTHONPATH:+:${PYTHONPATH}} \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/scratch/home \
    TMPDIR=/scratch \
    MPLCONFIGDIR=/scratch/matplotlib \
    FT_HUB_CACHE=/cache/hub \
    FT_DATA_CACHE=/cache/data \
    FT_SCRATCH_DIR=/scratch
WORKDIR /scratch
ENTRYPOINT ["python", "-m", "job"]
# The device's packages come next, in one layer (install, then keep one MindSpore plugin): only
# pyproject.toml and the scripts reading it are copied before, so a code change does not rebuild it, and
# pip's download cache is shared by the device builds.
COPY pyproject.toml image/requirements.py image/install-packages.sh /tmp/build/

# ---- The image: the runtime, the device's packages, then the code (the only layer a code change rebuilds) --
FROM runtime AS job
ARG DEVICE=cpu
ARG MINDSPORE_PACKAGE
ARG MINDSPORE_VERSION
ARG PIP_NO_CACHE_DIR
RUN --mount=type=secret,id=pip-ca,required=false --mount=type=cache,target=/root/.cache/pip,sharing=locked \
    /tmp/build/install-packages.sh "${DEVICE}"
COPY --from=code /opt/finetune /opt/finetune
USER 10001:10001
# Labels last: a new revision changes no layer.
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="mindspore-finetune" \
      org.opencontainers.image.description="Fine-tunes MindSpore Hub models; configured by FT_* variables" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="Apache-2.0"
