"""Dataflow Flex Template entry point: run `pairtrain preprocess ... --no_wait` from the template's parameters.

The Flex Template launcher runs this file as a script (FLEX_TEMPLATE_PYTHON_PY_FILE
in docker/flex-template.Dockerfile). It passes each template parameter as
--name=value, together with pipeline options that it adds itself, such as the
project, the region, the staging and temp locations and --setup_file (from
FLEX_TEMPLATE_PYTHON_SETUP_FILE). The parameters are those declared in
docker/flex-template-metadata.json; every other argument goes to Beam through
`pairtrain preprocess`, which rejects options that Beam does not define.

With --no_wait, `pairtrain preprocess` returns once the job is submitted (or,
with --template_location, once the job file is written). The job writes
summary.json and the completion marker when it ends.
"""

import argparse
import os
import sys

# Run as a script, Python puts this file's folder first on sys.path, where
# the modules of pipeline/ would be importable by bare name and could shadow
# standard-library modules. Put the repository root there instead and import
# pairtrain and pipeline as packages.
_HERE = os.path.dirname(os.path.abspath(__file__))
if sys.path and os.path.abspath(sys.path[0] or os.curdir) == _HERE:
    sys.path[0] = os.path.dirname(_HERE)

from pairtrain import cli  # noqa: E402  (needs the sys.path fix above)

# A Flex Template parameter is one string. Lists of globs are separated by
# commas, and --set overrides by semicolons, because YAML values may contain commas.
GLOB_SEPARATOR = ","
OVERRIDE_SEPARATOR = ";"
BOOLEAN_VALUES = ("true", "false")


def build_parser() -> argparse.ArgumentParser:
    """Return the parser of the template parameters, one option per parameter in the metadata file."""
    parser = argparse.ArgumentParser(
        prog="flex_launcher",
        allow_abbrev=False,
        description="Submit `pairtrain preprocess` to Dataflow from Flex Template parameters; "
        "any other --option is passed to Beam.",
    )
    parser.add_argument("--config", required=True, help="YAML config file (gs:// or a path inside the image)")
    parser.add_argument(
        "--train", default="", help=f"train input globs separated by {GLOB_SEPARATOR!r}; replaces input.train"
    )
    parser.add_argument(
        "--eval", default="", help=f"eval input globs separated by {GLOB_SEPARATOR!r}; replaces input.eval"
    )
    parser.add_argument("--output", required=True, help="gs:// output directory of the preprocessing run")
    parser.add_argument(
        "--overwrite",
        default="false",
        type=str.lower,
        choices=BOOLEAN_VALUES,
        help="true to replace a finished preprocessing run in the output directory",
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        default="",
        metavar="KEY=VALUE;...",
        help=f"config overrides separated by {OVERRIDE_SEPARATOR!r}, e.g. preprocess.vocab_size=500",
    )
    parser.add_argument(
        "--transform_temp_dir", default="", help="tf.Transform's temporary folder (default: <output>/tmp)"
    )
    return parser


def _split(text: str, separator: str) -> list[str]:
    return [item.strip() for item in text.split(separator) if item.strip()]


def preprocess_argv(argv: list[str]) -> list[str]:
    """Translate template parameters and pipeline options into `pairtrain preprocess` arguments."""
    args, beam_args = build_parser().parse_known_args(argv)
    command = ["preprocess", "--config", args.config, "--output", args.output, "--no_wait"]
    for pattern in _split(args.train, GLOB_SEPARATOR):
        command += ["--train", pattern]
    for pattern in _split(args.eval, GLOB_SEPARATOR):
        command += ["--eval", pattern]
    for override in _split(args.overrides, OVERRIDE_SEPARATOR):
        command += ["--set", override]
    if args.overwrite == "true":
        command.append("--overwrite")
    if args.transform_temp_dir:
        command += ["--transform_temp_dir", args.transform_temp_dir]
    return command + beam_args


def main(argv: list[str] | None = None) -> int:
    return cli.main(preprocess_argv(sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":
    sys.exit(main())
