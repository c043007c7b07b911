"""Read a finished preprocessing run: its metadata, vocabulary size and tf.data input pipelines."""

import json
import logging
import os

import tensorflow as tf
import tensorflow_transform as tft

from pipeline import features
from pipeline.layout import COMPLETE_MARKER, DATA_DIR, SUMMARY_FILE, TFRECORD_SUFFIX

logger = logging.getLogger(__name__)


# Maps train.shard_by to how MultiWorkerMirroredStrategy splits input between workers.
SHARD_POLICIES = {
    "auto": tf.data.experimental.AutoShardPolicy.AUTO,
    "file": tf.data.experimental.AutoShardPolicy.FILE,
    "record": tf.data.experimental.AutoShardPolicy.DATA,
}


class DataError(ValueError):
    """Preprocessed data that the trainer cannot use."""


class PreprocessedData:
    """A finished preprocessing output directory.

    The feature layout comes from the transform output, not from constants,
    and vocab_size from the run's summary, never from the trainer's config.
    """

    def __init__(self, data_dir: str):
        self.data_dir = data_dir
        if not tf.io.gfile.isdir(data_dir):
            raise DataError(f"data directory not found: {data_dir}; pass the output directory of `pairtrain preprocess`")
        if not tf.io.gfile.exists(os.path.join(data_dir, COMPLETE_MARKER)):
            raise DataError(
                f"{data_dir} is not a finished preprocessing run: {COMPLETE_MARKER} is missing. "
                "Run `pairtrain preprocess` to completion first"
            )
        with tf.io.gfile.GFile(os.path.join(data_dir, SUMMARY_FILE)) as handle:
            self.summary = json.load(handle)
        self.vocab_size = int(self.summary["vocab_size"])
        self.tft_output = tft.TFTransformOutput(data_dir)
        self.feature_spec = self.tft_output.transformed_feature_spec()
        self._check_vocabulary()

    def _check_vocabulary(self) -> None:
        vocabulary_tokens = self.tft_output.vocabulary_size_by_name(features.VOCABULARY_NAME)
        if vocabulary_tokens + features.RESERVED_IDS > self.vocab_size:
            raise DataError(
                f"the vocabulary in {self.data_dir} has {vocabulary_tokens} tokens, which with "
                f"{features.RESERVED_IDS} reserved ids exceeds vocab_size={self.vocab_size}"
            )
        missing = [key for key in (*features.ID_KEYS, features.LABEL) if key not in self.feature_spec]
        if missing:
            raise DataError(f"the transform output in {self.data_dir} lacks features {missing}")

    def num_examples(self, split: str) -> int:
        return int(self.summary["records"]["written"].get(split, 0))

    def files(self, split: str) -> list[str]:
        return sorted(tf.io.gfile.glob(os.path.join(self.data_dir, DATA_DIR, f"{split}-*{TFRECORD_SUFFIX}")))

    def dataset(
        self,
        split: str,
        batch_size: int,
        shuffle: bool = False,
        seed: int = 0,
        shuffle_buffer: int = 10000,
        shard_by: str = "auto",
    ):
        """Return a tf.data pipeline of (features, label) batches for one split.

        Batches are parsed with the transformed feature spec and id lists are
        padded with PADDING_ID to the longest text in the batch. Every id is
        checked against vocab_size as it is read.
        """
        files = self.files(split)
        if not files:
            raise DataError(f"no {split} TFRecords in {os.path.join(self.data_dir, DATA_DIR)}")
        dataset = tf.data.TFRecordDataset(files, compression_type="GZIP")
        if shuffle:
            dataset = dataset.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
        dataset = dataset.batch(batch_size)
        dataset = dataset.map(self._parse_batch, num_parallel_calls=tf.data.AUTOTUNE)
        num_batches = -(-self.num_examples(split) // batch_size)
        dataset = dataset.apply(tf.data.experimental.assert_cardinality(num_batches))
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = SHARD_POLICIES[shard_by]
        return dataset.with_options(options).prefetch(tf.data.AUTOTUNE)

    def _parse_batch(self, serialized):
        parsed = tf.io.parse_example(serialized, self.feature_spec)
        inputs = {key: self._check_ids(key, dense_ids(parsed[key])) for key in features.ID_KEYS}
        label = tf.cast(tf.reshape(parsed[features.LABEL], [-1, 1]), tf.float32)
        return inputs, label

    def _check_ids(self, key, ids):
        check = tf.debugging.assert_less(
            ids,
            tf.constant(self.vocab_size, tf.int64),
            message=f"{key}: an id is not below vocab_size={self.vocab_size} in {self.data_dir}",
        )
        with tf.control_dependencies([check]):
            return tf.identity(ids)


def dense_ids(value) -> tf.Tensor:
    """Convert a sparse, ragged or dense id batch to a dense [batch, length] tensor padded with PADDING_ID."""
    if isinstance(value, tf.sparse.SparseTensor):
        return tf.sparse.to_dense(value, default_value=tf.constant(features.PADDING_ID, value.dtype))
    if isinstance(value, tf.RaggedTensor):
        return value.to_tensor(default_value=features.PADDING_ID)
    return value
