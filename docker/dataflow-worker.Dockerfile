# Dataflow worker image: the Apache Beam Python 3.11 SDK image of the Beam
# version pinned in requirements.txt, with pairtrain and its pinned
# requirements installed, so workers start without installing anything.
# Dataflow runs the SDK harness from this image, and its Beam version must
# equal the one that builds the job (apache-beam in requirements.txt).
#
# Build from the repository root and push, then pass the image to
# `pairtrain preprocess` with --sdk_container_image (see docs/cloud.md):
#   docker build -f docker/dataflow-worker.Dockerfile \
#     -t REGION-docker.pkg.dev/PROJECT/pairtrain/dataflow-worker:0.1.0 .
FROM apache/beam_python3.11_sdk:2.77.0

WORKDIR /opt/pairtrain

# Requirements first, so that a code change does not reinstall TensorFlow.
COPY requirements.txt constraints.txt ./
RUN pip install --no-cache-dir -c constraints.txt -r requirements.txt

COPY setup.py MANIFEST.in ./
COPY pairtrain ./pairtrain
COPY pipeline ./pipeline
COPY trainer ./trainer
RUN pip install --no-cache-dir --no-deps . && pip check

# The entry point stays the SDK image's /opt/apache/beam/boot, which Dataflow starts.
