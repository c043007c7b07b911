"""Exceptions that mean bad input or configuration: the CLI prints them without a traceback."""


def is_user_error(error: BaseException) -> bool:
    """Return whether `error` reports bad input or configuration rather than a bug.

    The exception classes are imported here, on demand, so that a config
    error is reported before TensorFlow and Beam are imported.
    """
    from pairtrain.config import ConfigError
    from pipeline.publish import PreprocessError
    from pipeline.read import InputError
    from trainer.data import DataError
    from trainer.distribute import DistributeError

    user_errors = (
        ConfigError,
        InputError,
        PreprocessError,
        DataError,
        DistributeError,
        FileExistsError,
        FileNotFoundError,
    )
    return isinstance(error, user_errors)
