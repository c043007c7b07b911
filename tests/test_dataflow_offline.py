"""Cloud deployment checked offline: Dataflow jobs built but not submitted, the Flex Template, images, Vertex specs.

The Dataflow tests build real jobs with DataflowRunner and --template_location
set to a local file. Beam then stages the job's files and writes the job
description to that file instead of submitting it. --dry_run does not help,
because Beam treats any value of it, even False, as true and returns before
staging. Staging goes to gcp-storage-emulator on 127.0.0.1. The tests run
only inside a network namespace that has nothing but loopback, so a call
meant for Google fails at once instead of reaching it.

Beam 2.77 needs no option to keep the Beam SDK itself local: with the
default --sdk_location ("default", and "container" means the same) it stages
no SDK, because the worker image already contains it.
"""

import json
import os
import pathlib
import re
import shutil
import socket
import subprocess
import sys
import tarfile

import pytest
import yaml

from pairtrain import config as config_lib
from tests.conftest import REPO
from tests.gcs_emulator import PROJECT, gcs_bucket, gcs_emulator  # noqa: F401  (pytest fixtures)

REGION = "europe-west1"
WORKER_IMAGE = f"{REGION}-docker.pkg.dev/{PROJECT}/pairtrain/dataflow-worker:0.1.0"
METADATA_FILE = REPO / "docker" / "flex-template-metadata.json"
DOCKER_DIR = REPO / "docker"
VERTEX_DIR = REPO / "cloud" / "vertex"
# Set in the child pytest that reruns a test under scripts/offline.sh.
CHILD_ENV = "PAIRTRAIN_LOOPBACK_CHILD"

TRAIN_TSV = (
    "text_a\ttext_b\tlabel\n"
    "how are you\thow do you do\t1\n"
    "red apple\tgreen apple\t0\n"
    "green tea\tblack tea\t1\n"
)


# Network isolation


def loopback_only() -> bool:
    """Return whether this process has no network interface but loopback."""
    return {name for _, name in socket.if_nameindex()} <= {"lo"}


def can_create_network_namespace() -> tuple[bool, str]:
    try:
        process = subprocess.run(["unshare", "-n", "true"], capture_output=True, text=True, timeout=30)
    except FileNotFoundError:
        return False, "the unshare command is not installed"
    return process.returncode == 0, process.stderr.strip()


def rerun_offline(request) -> None:
    """Rerun this test in a child pytest under scripts/offline.sh; fail if it fails, skip where that is impossible."""
    if os.environ.get(CHILD_ENV):
        pytest.fail(f"scripts/offline.sh did not isolate the child pytest: interfaces {socket.if_nameindex()}")
    possible, reason = can_create_network_namespace()
    if not possible:
        pytest.skip(
            f"cannot create a network namespace ({reason or 'unshare -n failed'}); "
            "Dataflow jobs are built only where no outside host is reachable"
        )
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", request.node.nodeid]
    process = subprocess.run(
        [str(REPO / "scripts" / "offline.sh"), *command],
        cwd=REPO,
        env=dict(os.environ, **{CHILD_ENV: "1"}),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert process.returncode == 0, f"{request.node.nodeid} failed under scripts/offline.sh:\n{process.stdout[-6000:]}"


@pytest.fixture
def reran_offline(request) -> bool:
    """Return False where this process has only loopback, so the test body runs here.

    Elsewhere, rerun the test under scripts/offline.sh (a loopback-only
    network namespace) and return True, so the test body returns at once.
    """
    if loopback_only():
        return False
    rerun_offline(request)
    return True


@pytest.fixture
def offline_gcs(request):
    """Return (emulator, bucket name) in a loopback-only namespace, or None after rerunning the test in one.

    The emulator starts only after the isolation check, so a test that is
    rerun in a child starts no server in this process.
    """
    if not loopback_only():
        rerun_offline(request)
        return None
    return request.getfixturevalue("gcs_emulator"), request.getfixturevalue("gcs_bucket")


# Helpers


def upload_text(emulator, bucket: str, name: str, text: str) -> str:
    emulator.client().bucket(bucket).blob(name).upload_from_string(text.encode())
    return f"gs://{bucket}/{name}"


def download_bytes(emulator, url: str) -> bytes:
    bucket, name = url[len("gs://") :].split("/", 1)
    return emulator.client().bucket(bucket).blob(name).download_as_bytes()


def dataflow_config(train_url: str, drop_setup_file: bool = False) -> config_lib.Config:
    """Return configs/dataflow.yaml with the train input on the emulator, as --train would set it.

    drop_setup_file removes the setup_file line, as docs/cloud.md does with
    sed for the worker image.
    """
    lines = (REPO / "configs" / "dataflow.yaml").read_text().splitlines()
    if drop_setup_file:
        lines = [line for line in lines if "setup_file:" not in line]
    config = config_lib.build(yaml.safe_load("\n".join(lines)))
    config.input.train = [train_url]
    return config


def cloud_args(bucket: str, template: pathlib.Path) -> list[str]:
    return [
        f"--project={PROJECT}",
        f"--region={REGION}",
        f"--temp_location=gs://{bucket}/dataflow/temp",
        f"--staging_location=gs://{bucket}/dataflow/staging",
        f"--template_location={template}",
    ]


def read_template(path: pathlib.Path) -> dict:
    template = json.loads(path.read_text())
    assert template["type"] == "JOB_TYPE_BATCH"
    return template


def template_options(template: dict) -> dict:
    return template["environment"]["sdkPipelineOptions"]["options"]


def staged_packages(template: dict) -> dict[str, str]:
    """Return {file name: gs:// URL} of the files the job's workers download."""
    (pool,) = template["environment"]["workerPools"]
    return {
        package["name"]: "gs://" + package["location"].removeprefix("storage.googleapis.com/")
        for package in pool["packages"]
    }


def pipeline_transform_names(emulator, template: dict) -> set[str]:
    """Download the staged pipeline proto and return the names of its transforms.

    With Dataflow Runner v2 the template contains no steps. They are in
    pipeline.pb, which the template's pipelineUrl option names.
    """
    from apache_beam.portability.api import beam_runner_api_pb2

    url = template_options(template)["pipelineUrl"]
    assert url.startswith("gs://")
    pipeline = beam_runner_api_pb2.Pipeline.FromString(download_bytes(emulator, url))
    return {transform.unique_name for transform in pipeline.components.transforms.values()}


def output_files(output: str) -> list[str]:
    from apache_beam.io.filesystems import FileSystems

    return [meta.path for meta in FileSystems.match([f"{output}/**"])[0].metadata_list]


def default_worker_image() -> str:
    import apache_beam

    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    return f"beam_python{python}_sdk:{apache_beam.__version__}"


EXPECTED_STEPS = {
    "ReadTrainPairs",
    "AnalyzeTrain",
    "WriteTransformFn",
    "TransformTrain",
    "TransformValidation",
    "TransformEval",
    "WriteTrain",
    "WriteRejected",
    "Publish",
}


# Dataflow jobs built with --template_location


def test_dataflow_job_with_setup_file(offline_gcs, tmp_path, monkeypatch):
    if offline_gcs is None:
        return
    gcs_emulator, gcs_bucket = offline_gcs
    from pipeline.job import run_preprocess

    train_url = upload_text(gcs_emulator, gcs_bucket, "data/train.tsv", TRAIN_TSV)
    output = f"gs://{gcs_bucket}/pairtrain/preprocessed"
    template_path = tmp_path / "template.json"
    # setup_file in configs/dataflow.yaml is ./setup.py, relative to the
    # repository root, as in the documented command. Beam builds the source
    # package there in a subprocess with `setup.py sdist`, or with
    # `python -m build --no-isolation` where the build package is installed.
    # Both work offline. sdist rewrites the git-ignored pairtrain.egg-info.
    monkeypatch.chdir(REPO)
    config = dataflow_config(train_url)

    # tf.Transform creates its temp folder through TensorFlow's file system
    # while the pipeline is built, and TensorFlow's gs:// cannot be pointed
    # at the emulator. So a local folder replaces the gs:// one of a real job.
    transform_temp_dir = tmp_path / "tft-tmp"
    result = run_preprocess(
        config,
        output,
        config.beam_args() + cloud_args(gcs_bucket, template_path),
        transform_temp_dir=str(transform_temp_dir),
    )

    assert result["status"] == "submitted"
    assert result["runner"] == "DataflowRunner"
    assert result["inputs"]["train"] == [train_url]
    assert transform_temp_dir.is_dir()
    assert output_files(output) == [], "the job ran here instead of only being built"

    template = read_template(template_path)
    options = template_options(template)
    assert options["runner"] == "DataflowRunner"
    assert options["project"] == PROJECT
    assert options["region"] == REGION
    assert options["setup_file"] == "./setup.py"
    assert options["template_location"] == str(template_path)
    assert options["staging_location"].startswith(f"gs://{gcs_bucket}/dataflow/staging/")
    temp_prefix = template["environment"]["tempStoragePrefix"]
    assert temp_prefix.startswith(f"storage.googleapis.com/{gcs_bucket}/dataflow/temp/")
    (pool,) = template["environment"]["workerPools"]
    # Worker settings from the config's beam_options.
    assert pool["machineType"] == "n2-standard-4"
    assert pool["diskSizeGb"] == 50
    assert pool["autoscalingSettings"]["maxNumWorkers"] == 20
    assert pool["workerHarnessContainerImage"].endswith(default_worker_image())

    packages = staged_packages(template)
    assert "workflow.tar.gz" in packages
    assert not [name for name in packages if "sdk" in name], f"the Beam SDK was staged: {sorted(packages)}"
    assert EXPECTED_STEPS <= pipeline_transform_names(gcs_emulator, template)

    tarball = tmp_path / "workflow.tar.gz"
    tarball.write_bytes(download_bytes(gcs_emulator, packages["workflow.tar.gz"]))
    with tarfile.open(tarball) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    for expected in (
        "setup.py",
        "requirements.txt",
        "pairtrain/cli.py",
        "pipeline/preprocess.py",
        "pipeline/flex_launcher.py",
        "trainer/train.py",
    ):
        assert expected in names, f"{expected} is missing from the staged source package"


def test_dataflow_job_with_worker_image(offline_gcs, tmp_path):
    if offline_gcs is None:
        return
    gcs_emulator, gcs_bucket = offline_gcs
    from pipeline.job import run_preprocess

    train_url = upload_text(gcs_emulator, gcs_bucket, "data/train.tsv", TRAIN_TSV)
    output = f"gs://{gcs_bucket}/pairtrain/preprocessed"
    template_path = tmp_path / "template.json"
    config = dataflow_config(train_url, drop_setup_file=True)

    result = run_preprocess(
        config,
        output,
        config.beam_args() + cloud_args(gcs_bucket, template_path) + [f"--sdk_container_image={WORKER_IMAGE}"],
        # Local for the same reason as in the setup-file test.
        transform_temp_dir=str(tmp_path / "tft-tmp"),
    )

    assert result["status"] == "submitted"
    template = read_template(template_path)
    options = template_options(template)
    assert options["sdk_container_image"] == WORKER_IMAGE
    assert "setup_file" not in options
    (pool,) = template["environment"]["workerPools"]
    assert pool["workerHarnessContainerImage"] == WORKER_IMAGE
    assert [image["containerImage"] for image in pool["sdkHarnessContainerImages"]] == [WORKER_IMAGE]
    packages = staged_packages(template)
    assert "workflow.tar.gz" not in packages, "the image holds pairtrain; no source package should be staged"
    assert EXPECTED_STEPS <= pipeline_transform_names(gcs_emulator, template)
    assert output_files(output) == []


def test_flex_launcher_builds_job(offline_gcs, tmp_path, capsys):
    """Run the launcher with template parameters and pipeline options like those the Flex Template launcher adds.

    --template_location replaces submitting the job.
    """
    if offline_gcs is None:
        return
    gcs_emulator, gcs_bucket = offline_gcs
    from pipeline import flex_launcher

    config_text = (REPO / "configs" / "dataflow.yaml").read_text()
    config_url = upload_text(gcs_emulator, gcs_bucket, "configs/dataflow.yaml", config_text)
    first = upload_text(gcs_emulator, gcs_bucket, "data/train-1.tsv", TRAIN_TSV)
    second = upload_text(gcs_emulator, gcs_bucket, "data/train-2.tsv", TRAIN_TSV.replace("red", "blue"))
    output = f"gs://{gcs_bucket}/pairtrain/preprocessed"
    template_path = tmp_path / "job_object.json"
    parameters = [
        f"--config={config_url}",
        f"--train={first},{second}",
        f"--output={output}",
        "--overwrite=false",
        "--set=preprocess.vocab_size=500;preprocess.min_count=1",
        # Local for the same reason as in the setup-file test, although the
        # template metadata accepts only gs:// here.
        f"--transform_temp_dir={tmp_path / 'tft-tmp'}",
    ]
    launcher_options = [
        "--runner=DataflowRunner",
        *cloud_args(gcs_bucket, template_path),
        f"--setup_file={REPO / 'setup.py'}",
    ]

    assert flex_launcher.main(parameters + launcher_options) == 0

    assert "submitted" in capsys.readouterr().out
    template = read_template(template_path)
    options = template_options(template)
    assert options["runner"] == "DataflowRunner"
    # The launcher's --setup_file comes after the config's ./setup.py and wins.
    assert options["setup_file"] == str(REPO / "setup.py")
    assert "workflow.tar.gz" in staged_packages(template)
    assert EXPECTED_STEPS <= pipeline_transform_names(gcs_emulator, template)
    assert output_files(output) == []


# Flex Template parameters


def load_metadata() -> dict:
    return json.loads(METADATA_FILE.read_text())


def test_flex_metadata_parses_as_dataflow_api():
    from google.cloud import dataflow_v1beta3

    metadata = dataflow_v1beta3.TemplateMetadata.from_json(METADATA_FILE.read_text(), ignore_unknown_fields=False)
    assert metadata.name == "pairtrain-preprocess"
    assert not metadata.streaming
    for parameter in metadata.parameters:
        assert parameter.label, f"{parameter.name} has no label"
        assert parameter.help_text, f"{parameter.name} has no helpText"
        assert parameter.regexes, f"{parameter.name} has no regexes"


def test_flex_metadata_matches_launcher():
    from pipeline import flex_launcher

    actions = flex_launcher.build_parser()._actions  # pylint: disable=protected-access
    launcher_options = {
        action.option_strings[0].removeprefix("--"): action.required
        for action in actions
        if action.option_strings != ["-h", "--help"]
    }
    parameters = {parameter["name"]: parameter for parameter in load_metadata()["parameters"]}
    # sdk_container_image is a Beam option that the launcher passes on unchanged.
    assert set(parameters) - {"sdk_container_image"} == set(launcher_options)
    for name, required in launcher_options.items():
        assert parameters[name].get("isOptional", False) is not required, name


@pytest.mark.parametrize(
    "name, value, valid",
    [
        ("config", "gs://my-bucket/pairtrain/dataflow.yaml", True),
        ("config", "/template/configs/dataflow.yaml", True),
        ("config", "gs://YOUR_BUCKET/pairtrain/dataflow.yaml", False),
        ("config", "gs://my-bucket/pairtrain/dataflow.json", False),
        ("train", "gs://my-bucket/data/train-*.tsv", True),
        ("train", "gs://my-bucket/a.tsv,gs://other.bucket/b/*.tsv.gz", True),
        ("train", "gs://my-bucket/a.tsv, gs://my-bucket/b.tsv", False),
        ("train", "/local/train.tsv", False),
        ("eval", "gs://my-bucket/data/eval.jsonl", True),
        ("output", "gs://my-bucket/pairtrain/preprocessed", True),
        ("output", "gs://my-bucket", True),
        ("output", "gs://YOUR_BUCKET/pairtrain", False),
        ("output", "runs/local", False),
        ("overwrite", "true", True),
        ("overwrite", "yes", False),
        ("set", "preprocess.vocab_size=500", True),
        ("set", "preprocess.vocab_size=500;input.label.positive=[yes, y]", True),
        ("set", "vocab_size=500", False),
        ("set", "preprocess.vocab_size=500;", False),
        ("transform_temp_dir", "gs://my-bucket/pairtrain/tmp", True),
        ("transform_temp_dir", "/tmp/tft", False),
        ("sdk_container_image", WORKER_IMAGE, True),
        ("sdk_container_image", "europe-west1-docker.pkg.dev/p/r/worker@sha256:" + "a" * 64, True),
        ("sdk_container_image", "worker image", False),
    ],
)
def test_flex_metadata_regexes(name, value, valid):
    (parameter,) = [p for p in load_metadata()["parameters"] if p["name"] == name]
    matches = all(re.search(pattern, value) for pattern in parameter["regexes"])
    assert matches is valid


def test_flex_launcher_argv():
    from pipeline import flex_launcher

    argv = flex_launcher.preprocess_argv(
        [
            "--config=gs://b/c.yaml",
            "--train=gs://b/a.tsv, gs://b/b.tsv",
            "--eval=",
            "--output=gs://b/out",
            "--overwrite=TRUE",
            "--set=preprocess.vocab_size=500;input.label.positive=[a, b]",
            "--runner=DataflowRunner",
            "--template_location=gs://b/staging/job_object",
        ]
    )
    assert argv == [
        "preprocess",
        "--config",
        "gs://b/c.yaml",
        "--output",
        "gs://b/out",
        "--no_wait",
        "--train",
        "gs://b/a.tsv",
        "--train",
        "gs://b/b.tsv",
        "--set",
        "preprocess.vocab_size=500",
        "--set",
        "input.label.positive=[a, b]",
        "--overwrite",
        "--runner=DataflowRunner",
        "--template_location=gs://b/staging/job_object",
    ]


def test_flex_launcher_runs_as_script(tmp_path):
    # Run as a file, as the Flex Template launcher does, so that a module of
    # pipeline/ shadowing a standard-library module would fail here.
    process = subprocess.run(
        [sys.executable, str(REPO / "pipeline" / "flex_launcher.py"), "--help"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert process.returncode == 0, process.stderr[-3000:]
    assert "--transform_temp_dir" in process.stdout


def test_gcloud_accepts_flex_metadata(reran_offline, tmp_path):
    """`gcloud dataflow flex-template build --print-only` validates the metadata file without calling Google."""
    if reran_offline:
        return
    gcloud = shutil.which("gcloud")
    if gcloud is None:
        pytest.skip("gcloud is not installed; the metadata is still checked against the Dataflow API types")
    env = dict(
        os.environ,
        CLOUDSDK_CONFIG=str(tmp_path / "gcloud-config"),
        CLOUDSDK_CORE_DISABLE_PROMPTS="1",
        CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK="1",
        CLOUDSDK_CORE_DISABLE_USAGE_REPORTING="true",
    )
    process = subprocess.run(
        [
            gcloud,
            "dataflow",
            "flex-template",
            "build",
            "gs://my-bucket/templates/pairtrain-preprocess.json",
            f"--image={REGION}-docker.pkg.dev/{PROJECT}/pairtrain/flex-template:0.1.0",
            "--sdk-language=PYTHON",
            f"--metadata-file={METADATA_FILE}",
            "--print-only",
            f"--project={PROJECT}",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert process.returncode == 0, process.stderr[-3000:]
    assert '"name": "pairtrain-preprocess"' in process.stdout


# Container images


def requirement_pin(package: str) -> str:
    for line in (REPO / "requirements.txt").read_text().splitlines():
        match = re.fullmatch(rf"{re.escape(package)}(\[[^\]]*\])?==(\S+)", line.strip())
        if match:
            return match.group(2)
    raise AssertionError(f"{package} is not pinned in requirements.txt")


def dockerfile_instructions(name: str) -> list[tuple[str, str]]:
    lines = [line.strip() for line in (DOCKER_DIR / name).read_text().splitlines()]
    return [tuple(line.split(None, 1)) for line in lines if line and not line.startswith("#")]


@pytest.mark.parametrize(
    "name, expected_base",
    [
        ("dataflow-worker.Dockerfile", lambda: f"apache/beam_python3.11_sdk:{requirement_pin('apache-beam')}"),
        ("trainer.Dockerfile", lambda: f"tensorflow/tensorflow:{requirement_pin('tensorflow')}-gpu"),
        ("flex-template.Dockerfile", lambda: "gcr.io/dataflow-templates-base/python311-template-launcher-base"),
    ],
)
def test_dockerfile_base_and_install(name, expected_base):
    instructions = dockerfile_instructions(name)
    assert [value for keyword, value in instructions if keyword == "FROM"] == [expected_base()]
    copied = " ".join(value for keyword, value in instructions if keyword == "COPY")
    for path in ("requirements.txt", "constraints.txt", "setup.py", "MANIFEST.in", "pairtrain", "pipeline", "trainer"):
        assert re.search(rf"(^|\s){re.escape(path)}(\s|$)", copied), f"{name} does not copy {path}"
    runs = " ".join(value for keyword, value in instructions if keyword == "RUN")
    assert "-c constraints.txt -r requirements.txt" in runs


def test_flex_dockerfile_points_at_launcher():
    instructions = dockerfile_instructions("flex-template.Dockerfile")
    (workdir,) = [value for keyword, value in instructions if keyword == "WORKDIR"]
    env = dict(value.split("=", 1) for keyword, value in instructions if keyword == "ENV")
    for variable, path in (
        ("FLEX_TEMPLATE_PYTHON_PY_FILE", "pipeline/flex_launcher.py"),
        ("FLEX_TEMPLATE_PYTHON_SETUP_FILE", "setup.py"),
    ):
        assert env[variable] == f"{workdir}/{path}"
        assert (REPO / path).is_file()


def test_trainer_dockerfile_entrypoint():
    instructions = dockerfile_instructions("trainer.Dockerfile")
    assert [json.loads(value) for keyword, value in instructions if keyword == "ENTRYPOINT"] == [["pairtrain", "train"]]


# Vertex AI custom-job specs


def load_vertex_spec(name: str) -> dict:
    return yaml.safe_load((VERTEX_DIR / name).read_text())


def vertex_tf_config(spec: dict, task_type: str) -> str:
    """Return TF_CONFIG as Vertex AI sets it: pool 0 is the chief, pool 1 the workers."""
    pools = spec["workerPoolSpecs"]
    cluster = {"chief": ["workerpool0-0:2222"]}
    if len(pools) > 1:
        cluster["worker"] = [f"workerpool1-{index}:2222" for index in range(pools[1]["replicaCount"])]
    return json.dumps({"cluster": cluster, "task": {"type": task_type, "index": 0}, "environment": "cloud"})


def check_train_args(pool: dict) -> None:
    from pairtrain import cli

    args = cli.build_parser().parse_args(["train", *pool["containerSpec"]["args"]])
    assert args.command == "train"
    assert args.config.startswith("/gcs/")
    assert args.data.startswith("/gcs/")
    assert args.output.startswith("gs://")


def test_vertex_single_machine_spec(monkeypatch):
    from trainer import distribute

    spec = load_vertex_spec("train-single-machine-multi-gpu.yaml")
    (pool,) = spec["workerPoolSpecs"]
    assert pool["replicaCount"] == 1
    assert pool["machineSpec"]["acceleratorCount"] > 1
    assert pool["containerSpec"]["imageUri"].endswith("/pairtrain/trainer:0.1.0")
    check_train_args(pool)
    monkeypatch.setenv("TF_CONFIG", vertex_tf_config(spec, "chief"))
    assert distribute.cluster_size() == 1  # One machine: MirroredStrategy over its GPUs.


def test_vertex_multi_worker_spec(monkeypatch):
    from trainer import distribute

    spec = load_vertex_spec("train-multi-worker.yaml")
    chief, workers = spec["workerPoolSpecs"]
    assert chief["replicaCount"] == 1
    assert workers["replicaCount"] >= 1
    assert chief["containerSpec"] == workers["containerSpec"]
    assert chief["machineSpec"] == workers["machineSpec"]
    check_train_args(chief)
    monkeypatch.setenv("TF_CONFIG", vertex_tf_config(spec, "worker"))
    assert distribute.cluster_size() == 1 + workers["replicaCount"]  # Several: MultiWorkerMirroredStrategy.
