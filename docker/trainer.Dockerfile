# Training image for Vertex AI custom jobs: TensorFlow's GPU image of the
# TensorFlow version pinned in requirements.txt (CUDA and cuDNN included),
# with pairtrain and its pinned requirements. The entry point is
# `pairtrain train`, so a job passes only --config, --data and --output
# (see cloud/vertex/*.yaml and docs/cloud.md).
#
# Build from the repository root and push:
#   docker build -f docker/trainer.Dockerfile \
#     -t REGION-docker.pkg.dev/PROJECT/pairtrain/trainer:0.1.0 .
FROM tensorflow/tensorflow:2.21.0-gpu

WORKDIR /opt/pairtrain

# Requirements first, so that a code change does not reinstall them.
# tensorflow==2.21.0 is already in the base image and stays as it is.
COPY requirements.txt constraints.txt ./
RUN pip install --no-cache-dir -c constraints.txt -r requirements.txt

COPY setup.py MANIFEST.in ./
COPY pairtrain ./pairtrain
COPY pipeline ./pipeline
COPY trainer ./trainer
COPY configs ./configs
RUN pip install --no-cache-dir --no-deps . && pip check

ENTRYPOINT ["pairtrain", "train"]
