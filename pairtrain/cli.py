"""Command-line interface: `pairtrain preprocess | train | evaluate | predict | promote | run`.

Heavy imports (TensorFlow, Beam) happen inside the command functions, so
`--help` returns at once.
"""

import argparse
import functools
import json
import logging
import os
import sys

from pairtrain import __version__

logger = logging.getLogger("pairtrain")

PREPROCESSED_SUBDIR = "preprocessed"

EPILOG_BEAM = (
    "Any other --option is passed to Beam's PipelineOptions (for example --runner, "
    "--direct_num_workers, --direct_running_mode, --project, --region, --temp_location); "
    "an option that neither pairtrain nor Beam defines is an error. Without --runner the "
    "pipeline runs in-process on Beam's FnApiRunner."
)


def _add_config_args(parser: argparse.ArgumentParser, required: bool = True) -> None:
    parser.add_argument("--config", required=required, help="YAML config file (local path or gs://)")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one config value, e.g. --set train.epochs=5 (repeatable)",
    )


def _add_submit_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--no_wait",
        action="store_true",
        help="return once the pipeline is submitted (for Dataflow); the job writes its own summary and marker",
    )
    parser.add_argument(
        "--transform_temp_dir",
        help="tf.Transform's temporary folder (default: <output>/tmp); TensorFlow's file system reaches it",
    )


def _add_input_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--train", action="append", metavar="GLOB", help="train input files; replaces input.train")
    parser.add_argument("--eval", action="append", metavar="GLOB", help="eval input files; replaces input.eval")
    parser.add_argument(
        "--overwrite", action="store_true", help="replace a finished preprocessing run in the output directory"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pairtrain",
        allow_abbrev=False,
        description="Train text-pair classifiers: Beam + tf.Transform preprocessing, Keras training, "
        "SavedModel export.",
    )
    parser.add_argument("--version", action="version", version=f"pairtrain {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages and library INFO logs")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    # No prefix matching of long options: an abbreviated Beam option such as
    # --temp would otherwise be taken for a pairtrain option.
    add_command = functools.partial(commands.add_parser, allow_abbrev=False)

    preprocess = add_command(
        "preprocess",
        help="tokenize raw pairs, build the vocabulary and write TFRecords",
        description="Read raw text pairs, build one vocabulary from both texts of the train split, "
        "and write TFRecords of token ids, the transform graph and summary.json.",
        epilog=EPILOG_BEAM,
    )
    _add_config_args(preprocess)
    _add_input_args(preprocess)
    preprocess.add_argument("--output", help="output directory (default: <output_dir>/preprocessed)")
    _add_submit_args(preprocess)

    train = add_command(
        "train",
        help="train, evaluate and export a model from preprocessed data",
        description="Train the shared-embedding model under MirroredStrategy on a finished "
        "preprocessing run, score its eval split, export a SavedModel and write metrics.json.",
    )
    _add_config_args(train)
    train.add_argument("--data", required=True, help="finished `pairtrain preprocess` output directory")
    train.add_argument("--output", help="run directory for the model, checkpoints and logs (default: output_dir)")

    evaluate = add_command(
        "evaluate",
        help="score an exported model on a labelled raw file",
        description="Score an exported model on a labelled raw file and print and write the metrics.",
    )
    evaluate.add_argument("--model", required=True, help="model directory (a version folder or its parent)")
    evaluate.add_argument("--input", required=True, help="raw input file or glob")
    evaluate.add_argument("--output", help="metrics JSON file (default: metrics-<input name>.json)")
    _add_config_args(evaluate, required=False)

    predict = add_command(
        "predict",
        help="write one probability per input pair",
        description="Write one probability per input pair, in input order, under a 'probability' header.",
    )
    predict.add_argument("--model", required=True, help="model directory (a version folder or its parent)")
    predict.add_argument("--input", required=True, help="raw input file or glob; labels are optional")
    predict.add_argument("--output", required=True, help="output file")
    _add_config_args(predict, required=False)

    promote = add_command(
        "promote",
        help="copy a model to the serving folder if it scores better than the one there",
        description="Score a candidate model and the newest model in the serving folder on the same "
        "labelled file; copy the candidate in as a new version only if its metric is higher. "
        "Every decision is appended to <serving>/promotions.jsonl.",
    )
    promote.add_argument("--candidate", required=True, help="model directory of the new model")
    promote.add_argument("--serving", required=True, help="serving folder of numbered versions (created if missing)")
    promote.add_argument("--input", required=True, help="labelled raw file or glob to score both models on")
    promote.add_argument(
        "--metric", default="auc", choices=("accuracy", "precision", "recall", "f1", "auc"),
        help="metric to compare (default: auc)",
    )
    promote.add_argument(
        "--min_improvement", type=float, default=0.0,
        help="how much higher the candidate's metric must be, in the metric's units (default: 0)",
    )
    _add_config_args(promote, required=False)

    run = add_command(
        "run",
        help="preprocess, train, evaluate and export in one run directory",
        description="Preprocess, train, evaluate and export into one run directory: "
        "<output>/preprocessed, <output>/model/<version>, <output>/metrics.json.",
        epilog=EPILOG_BEAM,
    )
    _add_config_args(run)
    _add_input_args(run)
    run.add_argument("--output", help="run directory; replaces output_dir")
    return parser


def _setup_logging(verbose: bool) -> None:
    # TensorFlow's C++ logs are read when TensorFlow is imported, which happens after this.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "0" if verbose else "2")
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if not verbose:
        for name in ("tensorflow", "apache_beam", "tensorflow_transform", "h5py"):
            logging.getLogger(name).setLevel(logging.WARNING)
        # absl repeats tf.Transform's advice to use Arrow record batches at
        # every step; Beam logs a failing step's traceback before pairtrain
        # reports the same error in one line.
        logging.getLogger("absl").setLevel(logging.ERROR)
        logging.getLogger("apache_beam.runners.common").setLevel(logging.CRITICAL)


def _load_config(args):
    from pairtrain import config as config_lib

    overrides = list(args.overrides)
    config = config_lib.load(args.config, overrides)
    if getattr(args, "train", None):
        config.input.train = args.train
    if getattr(args, "eval", None):
        config.input.eval = args.eval
    if getattr(args, "command", None) == "run" and args.output:
        config.output_dir = args.output
    return config


def _cmd_preprocess(args, beam_args) -> int:
    config = _load_config(args)
    from pipeline.job import run_preprocess

    output = args.output or os.path.join(config.output_dir, PREPROCESSED_SUBDIR)
    summary = run_preprocess(
        config,
        output,
        config.beam_args() + beam_args,
        overwrite=args.overwrite,
        wait=not args.no_wait,
        transform_temp_dir=args.transform_temp_dir,
    )
    if summary["status"] == "submitted":
        print(f"submitted; the job writes {output}/summary.json and its completion marker when it ends")
    else:
        print(json.dumps({"output": output, "records": summary["records"]}, indent=2))
    return 0


def _cmd_train(args, _beam_args) -> int:
    config = _load_config(args)
    from trainer.train import train_and_evaluate

    record = train_and_evaluate(config, args.data, args.output or config.output_dir)
    _print_result(record)
    return 0


def _print_result(record: dict) -> None:
    if not record.get("chief", True):
        print("worker finished; the chief exports the model and writes metrics.json")
        return
    print(f"model: {record['model_dir']}")
    print(f"metrics: {os.path.join(os.path.dirname(os.path.dirname(record['model_dir'])), 'metrics.json')}")
    if record.get("eval"):
        values = record["eval"]
        for key in ("examples", "accuracy", "precision", "recall", "f1", "auc"):
            value = values[key]
            print(f"  {key:9s} {value:.4f}" if isinstance(value, float) else f"  {key:9s} {value}")


def _cmd_evaluate(args, _beam_args) -> int:
    from pairtrain import io_utils, scoring

    result = scoring.evaluate(args.model, args.input, args.config, args.overrides)
    stem = os.path.splitext(os.path.basename(args.input.rstrip("/")))[0].replace("*", "all")
    output = args.output or f"metrics-{stem}.json"
    io_utils.write_json(output, result)
    print(json.dumps(result, indent=2))
    print(f"wrote {output}")
    return 0


def _cmd_predict(args, _beam_args) -> int:
    from pairtrain import scoring

    count = scoring.predict(args.model, args.input, args.output, args.config, args.overrides)
    print(f"wrote {count} probabilities to {args.output}")
    return 0


def _cmd_promote(args, _beam_args) -> int:
    from pairtrain.promote import promote

    record = promote(
        args.candidate, args.serving, args.input, args.metric, args.min_improvement, args.config, args.overrides
    )
    print(json.dumps(record, indent=2))
    return 0


def _cmd_run(args, beam_args) -> int:
    config = _load_config(args)
    from pipeline.job import run_preprocess
    from trainer.train import train_and_evaluate

    data_dir = os.path.join(config.output_dir, PREPROCESSED_SUBDIR)
    logger.info("Step 1/2: preprocessing into %s", data_dir)
    run_preprocess(config, data_dir, config.beam_args() + beam_args, overwrite=args.overwrite)
    logger.info("Step 2/2: training, evaluating and exporting into %s", config.output_dir)
    record = train_and_evaluate(config, data_dir, config.output_dir)
    _print_result(record)
    return 0


COMMANDS = {
    "preprocess": _cmd_preprocess,
    "train": _cmd_train,
    "evaluate": _cmd_evaluate,
    "predict": _cmd_predict,
    "promote": _cmd_promote,
    "run": _cmd_run,
}
BEAM_COMMANDS = ("preprocess", "run")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and args.command not in BEAM_COMMANDS:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    _setup_logging(args.verbose)

    try:
        return COMMANDS[args.command](args, extra)
    except Exception as error:  # pylint: disable=broad-except
        from pairtrain.errors import is_user_error

        if not is_user_error(error):
            raise
        print(f"pairtrain {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
