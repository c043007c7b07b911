"""Measure preprocessing and training throughput on the CPU, with peak memory.

Usage (from the repository root, after `make install`):

    .venv/bin/python bench/throughput.py [--pairs 200000] [--workers 1 2]

Builds a TSV of `--pairs` pairs by cycling through the MRPC and SICK
sentences in ../shared/data. A counter is appended to each pair, so the
duplicate check finds none. The script preprocesses the file once per worker
count on Beam's FnApiRunner, then trains one epoch on the result. Each step runs in its
own process so its peak resident memory is measured alone. Prints a Markdown
table; results go to docs/benchmarks.md by hand, with the date and machine.
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def corpus_sentences(data_dir: str) -> list[tuple[str, str]]:
    pairs = []
    for name, first, second in (
        ("mrpc/msr_paraphrase_train.txt", 3, 4),
        ("sick/SICK_train.txt", 1, 2),
    ):
        with open(os.path.join(data_dir, name), encoding="utf-8-sig") as handle:
            for line in handle:
                fields = line.rstrip("\n").split("\t")
                pairs.append((fields[first], fields[second]))
    return pairs


def write_pairs(path: str, count: int, data_dir: str) -> None:
    source = corpus_sentences(data_dir)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("text_a\ttext_b\tlabel\n")
        for index in range(count):
            text_a, text_b = source[index % len(source)]
            handle.write(f"{text_a} {index}\t{text_b}\t{index % 2}\n")


def timed(command: list[str]) -> tuple[float, float]:
    """Run a command; return (wall seconds, peak resident memory of that process in MiB).

    Worker processes that the command starts are not included in the peak.
    """
    started = time.monotonic()
    with open(os.devnull, "wb") as devnull, tempfile.TemporaryFile() as errors:
        process = subprocess.Popen(command, cwd=REPO, stdout=devnull, stderr=errors)
        # wait4 returns this child's own resource usage, not a running maximum.
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.monotonic() - started
        if os.waitstatus_to_exitcode(status) != 0:
            errors.seek(0)
            raise RuntimeError(f"{' '.join(command)} failed:\n{errors.read().decode()[-3000:]}")
    return seconds, usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=200_000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--data", default=os.path.join(REPO, "..", "shared", "data"))
    args = parser.parse_args()

    cli = [sys.executable, "-m", "pairtrain.cli"]
    rows = []
    with tempfile.TemporaryDirectory() as work:
        pairs_path = os.path.join(work, "pairs.tsv")
        write_pairs(pairs_path, args.pairs, args.data)
        common = ["--config", os.path.join(REPO, "configs", "sample.yaml"), "--train", pairs_path]
        common += ["--set", "input.eval=[]", "--set", "preprocess.eval_fraction=0.1"]
        for workers in args.workers:
            output = os.path.join(work, f"prep{workers}")
            beam = ["--runner=FnApiRunner", f"--direct_num_workers={workers}"]
            if workers > 1:
                beam.append("--direct_running_mode=multi_processing")
            seconds, peak = timed(cli + ["preprocess", *common, "--output", output, *beam])
            rows.append((f"preprocess, {workers} worker process(es)", args.pairs, seconds, peak))

        data_dir = os.path.join(work, f"prep{args.workers[0]}")
        with open(os.path.join(data_dir, "summary.json")) as handle:
            train_examples = json.load(handle)["records"]["written"]["train"]
        run_dir = os.path.join(work, "train")
        train_args = ["--set", "train.epochs=1", "--set", "train.batch_size_per_replica=256"]
        seconds, peak = timed(
            cli + ["train", "--config", common[1], "--data", data_dir, "--output", run_dir, *train_args]
        )
        with open(os.path.join(run_dir, "metrics.json")) as handle:
            history = json.load(handle)["training"]
        rows.append(("train 1 epoch + eval + export, batch 256", train_examples, seconds, peak))

    print(f"machine: {platform.machine()}, {os.cpu_count()} CPU cores, Python {platform.python_version()}")
    print("| step | examples | wall s | examples/s | peak RSS MiB |")
    print("| --- | --- | --- | --- | --- |")
    for name, count, seconds, peak in rows:
        print(f"| {name} | {count} | {seconds:.1f} | {count / seconds:,.0f} | {peak:,.0f} |")
    print(f"steps per epoch: {history['steps_per_epoch']}")


if __name__ == "__main__":
    main()
