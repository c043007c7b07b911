"""End to end on a slice of MRPC from ../shared/data: preprocess, train, evaluate, export."""

import pytest

from tests.conftest import REPO, SHARED_DATA, load_json, run_cli

MRPC = SHARED_DATA / "mrpc"

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not MRPC.is_dir(), reason="../shared/data/mrpc is absent"),
]


def test_mrpc_slice_end_to_end(tmp_path):
    train_lines = (MRPC / "msr_paraphrase_train.txt").read_bytes().splitlines(keepends=True)[:1200]
    test_lines = (MRPC / "msr_paraphrase_test.txt").read_bytes().splitlines(keepends=True)[:400]
    train = tmp_path / "train.txt"
    test = tmp_path / "test.txt"
    train.write_bytes(b"".join(train_lines))
    test.write_bytes(b"".join(test_lines))
    output = tmp_path / "run"
    run_cli(
        "run",
        "--config",
        str(REPO / "configs" / "mrpc.yaml"),
        "--train",
        str(train),
        "--eval",
        str(test),
        "--output",
        str(output),
        "--set",
        "train.epochs=5",
    )
    summary = load_json(output / "preprocessed" / "summary.json")
    assert summary["records"]["read"] == 1600
    assert summary["records"]["rejected"]["total"] == 0
    assert summary["records"]["written"]["eval"] == 400
    assert summary["vocabulary_tokens"] > 500
    metrics = load_json(output / "metrics.json")["eval"]
    assert metrics["examples"] == 400
    for key in ("accuracy", "f1", "auc"):
        assert 0.0 < metrics[key] <= 1.0
