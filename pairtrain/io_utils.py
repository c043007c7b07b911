"""Small file helpers over Beam's FileSystems, so local paths and gs:// read the same way."""

import json
from typing import Any

from apache_beam.io.filesystems import FileSystems


def read_bytes(path: str) -> bytes:
    if not FileSystems.exists(path):
        raise FileNotFoundError(path)
    with FileSystems.open(path) as handle:
        return handle.read()


def read_text(path: str) -> str:
    return read_bytes(path).decode("utf-8")


def read_json(path: str) -> Any:
    return json.loads(read_text(path))


def write_text(path: str, text: str) -> None:
    """Write `text` to `path` in one call, creating parent folders on local disk."""
    if not is_remote(path):
        import os

        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with FileSystems.create(path) as handle:
        handle.write(text.encode("utf-8"))


def write_json(path: str, value: Any) -> None:
    write_text(path, json.dumps(value, indent=2, sort_keys=True, default=str) + "\n")


def exists(path: str) -> bool:
    return FileSystems.exists(path)


def join(base: str, *parts: str) -> str:
    return FileSystems.join(base, *parts)


def delete_if_exists(paths: list[str]) -> None:
    present = [path for path in paths if FileSystems.exists(path)]
    if present:
        FileSystems.delete(present)


def is_remote(path: str) -> bool:
    """Return whether `path` is a URL such as gs://bucket/name rather than a local path."""
    return "://" in path
