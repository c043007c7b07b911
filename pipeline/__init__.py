"""Preprocessing: reads raw text pairs and writes TFRecords of token ids with Beam and tf.Transform."""
