"""Pytest fixtures: gcp-storage-emulator on 127.0.0.1, with Beam and google-cloud-storage pointed at it anonymously.

Import the fixtures into a test module:

    from tests.gcs_emulator import gcs_bucket, gcs_emulator  # noqa: F401

`gcs_emulator` runs one emulator per test module, as a subprocess on a free
loopback port. `gcs_bucket` creates a fresh bucket for each test and returns
its name. While the emulator runs, the environment has:

- STORAGE_EMULATOR_HOST: google-cloud-storage (and so Beam's gs:// file
  system, which is built on it) sends every request to the emulator, with
  anonymous credentials unless it is given others.
- GOOGLE_CLOUD_PROJECT: a placeholder project id, for calls that need one.
- No GOOGLE_APPLICATION_CREDENTIALS: no real key is ever read.
- NO_PROXY with 127.0.0.1, so a developer's HTTP proxy is not used.

TensorFlow's own gs:// file system ignores STORAGE_EMULATOR_HOST, so code
that reaches gs:// through tf.io.gfile (tf.Transform's temp and output
folders, the trainer) cannot be tested against the emulator.
"""

import dataclasses
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import time
import uuid

import pytest

# google-auth (2.63) skips probing the Compute Engine metadata server only when
# NO_GCE_CHECK is exactly "true", so "True" has no effect. It reads the variable
# once, when google.auth.compute_engine._metadata is first imported, so it is
# set here, at import, before any test can import that module.
os.environ["NO_GCE_CHECK"] = "true"

HOST = "127.0.0.1"
PROJECT = "pairtrain-test"
START_TIMEOUT_S = 30.0


@dataclasses.dataclass
class Emulator:
    """A running gcp-storage-emulator subprocess."""

    process: subprocess.Popen
    port: int
    log_path: str

    @property
    def endpoint(self) -> str:
        return f"http://{HOST}:{self.port}"

    def client(self):
        """Return a google-cloud-storage client of the emulator, with anonymous credentials."""
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import storage

        return storage.Client(
            project=PROJECT,
            credentials=AnonymousCredentials(),
            client_options={"api_endpoint": self.endpoint},
        )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def _log_tail(path: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read()[-2000:]
    except OSError:
        return ""


def _stop(process: subprocess.Popen) -> None:
    """Stop the emulator by its pid: SIGTERM, then SIGKILL after 10 s."""
    if process.poll() is not None:
        return
    os.kill(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def start_emulator(log_path: str) -> Emulator:
    """Start gcp-storage-emulator in memory on a free loopback port; skip the test if it cannot start."""
    if importlib.util.find_spec("gcp_storage_emulator") is None:
        pytest.skip("gcp-storage-emulator is not installed (see requirements-dev.txt)")
    # The port is free when probed. Another process could take it before the
    # emulator binds it, and then the emulator exits and the test is skipped.
    port = _free_port()
    command = [
        sys.executable,
        "-m",
        "gcp_storage_emulator",
        "start",
        "--host",
        HOST,
        "--port",
        str(port),
        "--in-memory",
        "--quiet",
    ]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        if process.poll() is not None:
            pytest.skip(
                f"gcp-storage-emulator exited with status {process.returncode} before listening on "
                f"{HOST}:{port}: {_log_tail(log_path)}"
            )
        try:
            socket.create_connection((HOST, port), timeout=0.5).close()
            return Emulator(process=process, port=port, log_path=log_path)
        except OSError:
            pass
        if time.monotonic() > deadline:
            _stop(process)
            pytest.skip(
                f"gcp-storage-emulator did not listen on {HOST}:{port} within {START_TIMEOUT_S:.0f} s: "
                f"{_log_tail(log_path)}"
            )
        time.sleep(0.05)


def _seed_beam_credentials():
    """Make Beam's GCS clients use anonymous credentials; return the previous cache entry.

    Beam 2.77 (apache_beam/internal/gcp/auth.py) builds every GcsIO client
    with credentials from google.auth.default(), which finds none here. Beam
    retries that lookup with exponential backoff, 23 s and 36 s in two
    measurements on 2-core machines, and then connects anonymously. It caches
    the result for the process in _Credentials, so seeding that cache with
    anonymous credentials skips the lookup. Beam has no public option for
    this, because --no_auth covers only the Dataflow runner's staging client
    and not the gs:// file system.
    """
    from google.auth.credentials import AnonymousCredentials
    from apache_beam.internal.gcp import auth

    cache = auth._Credentials  # pylint: disable=protected-access
    adapter = auth._ApitoolsCredentialsAdapter  # pylint: disable=protected-access
    for name in ("_credentials_lock", "_credentials_init", "_credentials"):
        if not hasattr(cache, name):
            raise AssertionError(
                f"apache_beam.internal.gcp.auth._Credentials has no {name}: Beam changed how it caches "
                "credentials; update tests/gcs_emulator.py"
            )
    with cache._credentials_lock:  # pylint: disable=protected-access
        previous = (cache._credentials_init, cache._credentials)  # pylint: disable=protected-access
        cache._credentials = adapter(AnonymousCredentials())  # pylint: disable=protected-access
        cache._credentials_init = True  # pylint: disable=protected-access
    return previous


def _restore_beam_credentials(previous) -> None:
    from apache_beam.internal.gcp import auth

    cache = auth._Credentials  # pylint: disable=protected-access
    with cache._credentials_lock:  # pylint: disable=protected-access
        cache._credentials_init, cache._credentials = previous  # pylint: disable=protected-access


@pytest.fixture(scope="module")
def gcs_emulator(tmp_path_factory):
    """Run gcp-storage-emulator for one test module, with Google clients pointed at it."""
    log_path = str(tmp_path_factory.mktemp("gcs-emulator") / "emulator.log")
    emulator = start_emulator(log_path)
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("STORAGE_EMULATOR_HOST", emulator.endpoint)
            patch.setenv("GOOGLE_CLOUD_PROJECT", PROJECT)
            patch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
            no_proxy = ",".join(filter(None, [os.environ.get("NO_PROXY"), HOST, "localhost"]))
            patch.setenv("NO_PROXY", no_proxy)
            patch.setenv("no_proxy", no_proxy)
            previous = _seed_beam_credentials()
            try:
                yield emulator
            finally:
                _restore_beam_credentials(previous)
    finally:
        _stop(emulator.process)


@pytest.fixture
def gcs_bucket(gcs_emulator) -> str:
    """Create an empty bucket on the emulator and return its name."""
    name = f"pairtrain-test-{uuid.uuid4().hex[:12]}"
    gcs_emulator.client().create_bucket(name)
    return name
