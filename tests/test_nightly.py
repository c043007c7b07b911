"""scripts/nightly.sh end to end on the bundled sample: train, then promote only the first time."""

import json
import os
import subprocess
import sys

from tests.conftest import REPO, write_yaml

SAMPLE_TRAIN = str(REPO / "examples" / "data" / "questions_train.tsv")
SAMPLE_EVAL = str(REPO / "examples" / "data" / "questions_eval.tsv")


def test_nightly_promotes_once(tmp_path):
    config = write_yaml(
        tmp_path / "nightly.yaml",
        {
            "input": {"train": [SAMPLE_TRAIN], "eval": [SAMPLE_EVAL]},
            "train": {"epochs": 2},
            "beam_options": {"runner": "FnApiRunner"},
        },
    )
    serving = tmp_path / "serving"
    env = dict(os.environ, PAIRTRAIN=f"{sys.executable} -m pairtrain.cli")
    # PAIRTRAIN is a command line, so the script must not quote it as one word.
    command = ["bash", str(REPO / "scripts" / "nightly.sh"), config, str(serving), SAMPLE_EVAL, str(tmp_path / "runs")]
    for _ in range(2):
        process = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
        assert process.returncode == 0, process.stderr[-3000:]
    decisions = [json.loads(line) for line in (serving / "promotions.jsonl").read_text().splitlines()]
    assert [d["promoted"] for d in decisions] == [True, False]
    assert len([p for p in serving.iterdir() if p.name.isdigit()]) == 1
    assert len(list((tmp_path / "runs").iterdir())) == 2
