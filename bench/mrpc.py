"""Train on MRPC with several seeds and print a Markdown table of eval metrics.

Usage (from the repository root, after `make install`):

    .venv/bin/python bench/mrpc.py [--seeds 1 2 3] [--data ../shared/data/mrpc]

Preprocesses once, then trains one model per seed with configs/mrpc.yaml.
The results go to docs/mrpc.md by hand, with the date and machine.
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def pairtrain(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "pairtrain.cli", *args], cwd=REPO, check=True, capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--data", default=os.path.join(REPO, "..", "shared", "data", "mrpc"))
    args = parser.parse_args()

    config = os.path.join(REPO, "configs", "mrpc.yaml")
    train = os.path.join(args.data, "msr_paraphrase_train.txt")
    test = os.path.join(args.data, "msr_paraphrase_test.txt")
    with tempfile.TemporaryDirectory() as work:
        data_dir = os.path.join(work, "preprocessed")
        started = time.monotonic()
        pairtrain("preprocess", "--config", config, "--train", train, "--eval", test, "--output", data_dir)
        print(f"preprocessing: {time.monotonic() - started:.1f} s", file=sys.stderr)
        rows = []
        for seed in args.seeds:
            run_dir = os.path.join(work, f"seed{seed}")
            started = time.monotonic()
            pairtrain("train", "--config", config, "--data", data_dir, "--output", run_dir, "--set", f"train.seed={seed}")
            with open(os.path.join(run_dir, "metrics.json")) as handle:
                metrics = json.load(handle)
            rows.append((seed, metrics["eval"], metrics["training"], time.monotonic() - started))

    print(f"machine: {platform.machine()}, {os.cpu_count()} CPU cores, Python {platform.python_version()}")
    print("| seed | accuracy | precision | recall | F1 | AUC | best epoch | epochs run | train s |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for seed, ev, training, seconds in rows:
        print(
            f"| {seed} | {ev['accuracy']:.4f} | {ev['precision']:.4f} | {ev['recall']:.4f} | {ev['f1']:.4f} "
            f"| {ev['auc']:.4f} | {training['best_epoch']} | {training['epochs_run']} | {seconds:.0f} |"
        )
    for key in ("accuracy", "f1", "auc"):
        values = [ev[key] for _, ev, _, _ in rows]
        print(f"mean {key}: {statistics.mean(values):.4f} (min {min(values):.4f}, max {max(values):.4f})")


if __name__ == "__main__":
    main()
