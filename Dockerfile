# The fine-tuning job's image: `python -m job`, configured by FT_* variables (python -m job --help).
# Build for another device with the MindSpore build for it, e.g.
#   docker build --build-arg MINDSPORE_PACKAGE=mindspore --build-arg MINDSPORE_VERSION=2.10.0 .
FROM python:3.11.7-slim-bookworm

ARG MINDSPORE_PACKAGE=mindspore
ARG MINDSPORE_VERSION=2.10.0
ARG VERSION=0.1.0

LABEL org.opencontainers.image.title="mindspore-finetune" \
      org.opencontainers.image.description="Fine-tunes MindSpore Hub models; configured by FT_* variables" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0"

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /opt/finetune
# The same install the tests use: the project from pyproject.toml with its `job` extra; the MindSpore
# package is chosen by build argument (CPU, GPU or Ascend builds).
COPY pyproject.toml README.md ./
COPY job ./job
COPY launcher ./launcher
COPY k8s ./k8s
RUN pip install "${MINDSPORE_PACKAGE}==${MINDSPORE_VERSION}" \
    && pip install "./[job]" \
    && useradd --uid 10001 --user-group --no-create-home --home-dir /scratch/home finetune

# The root filesystem is mounted read-only; /scratch, /cache and /dev/shm are volumes.
USER 10001:10001
ENV HOME=/scratch/home \
    MPLCONFIGDIR=/scratch/matplotlib \
    FT_HUB_CACHE=/cache/hub \
    FT_DATA_CACHE=/cache/data \
    FT_SCRATCH_DIR=/scratch
ENTRYPOINT ["python", "-m", "job"]
