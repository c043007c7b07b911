# Dataflow Flex Template image: Google's Python 3.11 template launcher base
# image, with pairtrain and its pinned requirements, because the launcher
# builds the pipeline and tf.Transform traces its TensorFlow graphs there.
# The launcher runs FLEX_TEMPLATE_PYTHON_PY_FILE with the template
# parameters (docker/flex-template-metadata.json) and passes
# FLEX_TEMPLATE_PYTHON_SETUP_FILE to Beam as --setup_file, so the job's
# workers install the same package and pins.
#
# Build from the repository root and push, then create the template with
# `gcloud dataflow flex-template build` (see docs/cloud.md):
#   docker build -f docker/flex-template.Dockerfile \
#     -t REGION-docker.pkg.dev/PROJECT/pairtrain/flex-template:0.1.0 .
# NOTE: the base image is not pinned to a digest, so a rebuild may pick up a
# newer launcher; pin it with @sha256:... for reproducible images.
FROM gcr.io/dataflow-templates-base/python311-template-launcher-base

WORKDIR /template

# Requirements first, so that a code change does not reinstall TensorFlow.
COPY requirements.txt constraints.txt ./
RUN pip install --no-cache-dir -c constraints.txt -r requirements.txt

COPY setup.py MANIFEST.in ./
COPY pairtrain ./pairtrain
COPY pipeline ./pipeline
COPY trainer ./trainer
COPY configs ./configs
RUN pip install --no-cache-dir --no-deps . && pip check

ENV FLEX_TEMPLATE_PYTHON_PY_FILE=/template/pipeline/flex_launcher.py
ENV FLEX_TEMPLATE_PYTHON_SETUP_FILE=/template/setup.py
