"""The one place the trainer imports Keras.

The trainer uses tf_keras (Keras 2), not Keras 3, for two reasons:
tf.Transform's `TransformFeaturesLayer` is a tf_keras model, and Keras 3's
`Model.fit` fails under `MultiWorkerMirroredStrategy` with a PerReplica
conversion error (seen with keras 3.15.1 and tensorflow 2.21.0).
Moving to Keras 3 later means changing this import and checking those two.
"""

import tf_keras as keras  # noqa: F401  (re-exported)

__all__ = ["keras"]
