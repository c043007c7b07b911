"""Exceptions that mean bad input or configuration: the CLI prints them without a traceback."""

from pairtrain.config import ConfigError


def _user_errors() -> tuple[type[BaseException], ...]:
    from pipeline.publish import PreprocessError
    from pipeline.read import InputError
    from trainer.data import DataError
    from trainer.distribute import DistributeError

    return (ConfigError, InputError, PreprocessError, DataError, DistributeError, FileExistsError, FileNotFoundError)


USER_ERRORS = _user_errors()
