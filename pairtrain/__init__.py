"""pairtrain: train text-pair classifiers with Beam, tf.Transform and Keras."""

__version__ = "0.1.0"
