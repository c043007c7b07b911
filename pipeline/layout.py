"""Names of the files and folders in a preprocessing output directory.

    data/train-*.tfrecord.gz, data/validation-*, data/eval-*   tf.train.Examples
    transform_fn/, transformed_metadata/                       tf.Transform output
    rejected/rejected-*.jsonl                                  dead letters
    summary.json                                               counts and statistics
    PREPROCESS_RUNNING                                         written first, removed at the end
    PREPROCESS_COMPLETE                                        written last

The trainer reads only directories with the completion marker, so a run that
failed part-way never looks finished.
"""

COMPLETE_MARKER = "PREPROCESS_COMPLETE"
# Written first; marks a directory as pairtrain's, so a later run may clear it.
RUNNING_MARKER = "PREPROCESS_RUNNING"
SUMMARY_FILE = "summary.json"
DATA_DIR = "data"
REJECTED_DIR = "rejected"
TEMP_DIR = "tmp"
TRANSFORM_FN_DIR = "transform_fn"
TRANSFORMED_METADATA_DIR = "transformed_metadata"
SPLITS = ("train", "validation", "eval")
TFRECORD_SUFFIX = ".tfrecord.gz"

# Everything a run writes, so a rerun after a crash can clear a half-written run.
RUN_OUTPUTS = (DATA_DIR, REJECTED_DIR, TEMP_DIR, TRANSFORM_FN_DIR, TRANSFORMED_METADATA_DIR, SUMMARY_FILE)
