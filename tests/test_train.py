"""Training under tf.distribute: replicas on logical CPU devices, batch splitting, two real workers."""

import json
import os
import re
import socket
import subprocess
import sys

import numpy as np

from tests.conftest import REPO, case, load_json, make_config, preprocess, run_cli, write_yaml


def train_config(tmp_path, **train_values) -> str:
    values = {
        "preprocess": {"eval_fraction": 0.0, "validation_fraction": 0.0},
        "train": {"epochs": 2, "batch_size_per_replica": 2, **train_values},
    }
    return write_yaml(tmp_path / "train.yaml", values)


def preprocessed(tmp_path, source: str, name: str = "data"):
    output = tmp_path / name
    preprocess(make_config([source]), output)
    return output


def test_two_replicas_loss_goes_down(tmp_path):
    data = preprocessed(tmp_path, case("hermetic-export/train.tsv"))
    config = train_config(tmp_path, epochs=8, cpu_replicas=2, learning_rate=0.05)
    run_cli("train", "--config", config, "--data", str(data), "--output", str(tmp_path / "run"))
    metrics = load_json(tmp_path / "run" / "metrics.json")
    training = metrics["training"]
    assert training["replicas"] == 2
    assert len(training["devices"]) == 2
    assert training["global_batch_size"] == 4
    assert training["steps_per_epoch"] == [3] * 8
    loss = training["history"]["loss"]
    assert loss[-1] < loss[0]


def test_replica_batch_split_seven_rows(tmp_path):
    data = preprocessed(tmp_path, case("replica-batch-split/seven_rows.tsv"))
    config = train_config(tmp_path, cpu_replicas=3)
    run_cli("train", "--config", config, "--data", str(data), "--output", str(tmp_path / "run"))
    training = load_json(tmp_path / "run" / "metrics.json")["training"]
    assert training["replicas"] == 3
    assert training["global_batch_size"] == 6
    assert training["epochs_run"] == 2
    assert training["steps_per_epoch"] == [2, 2]
    assert all(np.isfinite(training["history"]["loss"]))


def test_replica_batch_split_five_rows(tmp_path):
    data = preprocessed(tmp_path, case("replica-batch-split/five_rows.tsv"))
    config = train_config(tmp_path, cpu_replicas=3)
    run_cli("train", "--config", config, "--data", str(data), "--output", str(tmp_path / "run"))
    training = load_json(tmp_path / "run" / "metrics.json")["training"]
    assert training["steps_per_epoch"] == [1, 1]
    assert all(np.isfinite(training["history"]["loss"]))


def test_too_few_rows_for_replicas(tmp_path):
    two_rows = tmp_path / "two_rows.tsv"
    lines = open(case("replica-batch-split/five_rows.tsv"), encoding="utf-8").read().splitlines()[:3]
    two_rows.write_text("\n".join(lines) + "\n")
    data = preprocessed(tmp_path, str(two_rows))
    config = train_config(tmp_path, cpu_replicas=3)
    process = run_cli("train", "--config", config, "--data", str(data), "--output", str(tmp_path / "run"), check=False)
    assert process.returncode == 2
    assert "the train split has 2 example(s) but training runs on 3 replicas" in process.stderr
    assert "Traceback" not in process.stderr
    assert not (tmp_path / "run" / "model").exists()


def test_empty_text_side_stays_finite(tmp_path):
    from trainer.train import train_and_evaluate

    source = case("empty-text-side/empty_sides.tsv")
    config = make_config([source], [source], train={"epochs": 3, "learning_rate": 0.1})
    data = tmp_path / "data"
    preprocess(config, data)
    record = train_and_evaluate(config, str(data), str(tmp_path / "run"))
    assert all(np.isfinite(record["training"]["history"]["loss"]))
    for weight in record["model"].get_weights():
        assert np.isfinite(weight).all()
    assert record["eval"]["examples"] == 4
    assert record["eval"]["auc"] is not None

    from tests.test_export import serve_text

    probabilities = serve_text(
        record["model_dir"],
        [{"text_a": "how to boil an egg", "text_b": ""}, {"text_a": "", "text_b": "   "}],
    )
    assert np.isfinite(probabilities).all()


def free_ports(count: int) -> list[int]:
    sockets = []
    for _ in range(count):
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sockets.append(sock)
    ports = [sock.getsockname()[1] for sock in sockets]
    for sock in sockets:
        sock.close()
    return ports


def test_two_workers_multi_worker_mirrored(tmp_path):
    data = preprocessed(tmp_path, case("hermetic-export/train.tsv"))
    config = train_config(tmp_path, epochs=3, shard_by="record")
    output = tmp_path / "run"
    addresses = [f"127.0.0.1:{port}" for port in free_ports(2)]

    # Start both workers at once: each waits for the other on its port.
    processes = []
    for index in range(2):
        tf_config = {"cluster": {"worker": addresses}, "task": {"type": "worker", "index": index}}
        env = dict(os.environ, TF_CONFIG=json.dumps(tf_config))
        command = [sys.executable, "-m", "pairtrain.cli", "train", "--config", config, "--data", str(data)]
        command += ["--output", str(output)]
        processes.append(
            subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        )

    results = []
    for process in processes:
        try:
            stdout, stderr = process.communicate(timeout=300)
        except subprocess.TimeoutExpired:
            for other in processes:
                other.kill()
            raise
        results.append((process.returncode, stdout, stderr))

    for returncode, _, stderr in results:
        assert returncode == 0, stderr[-3000:]
    pattern = r"Final weights fingerprint \(SHA-256\): (\w+)"
    fingerprints = [re.search(pattern, stderr).group(1) for _, _, stderr in results]
    assert fingerprints[0] == fingerprints[1]
    for _, _, stderr in results:
        assert "MultiWorkerMirroredStrategy with 2 replica(s) in sync" in stderr

    versions = [p for p in (output / "model").iterdir()]
    assert len(versions) == 1
    assert versions[0].name.isdigit()
    metrics = load_json(output / "metrics.json")
    assert metrics["weights_sha256"] == fingerprints[0]
    assert metrics["training"]["replicas"] == 2
