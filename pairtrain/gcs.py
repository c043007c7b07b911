"""Copy a local folder, such as an exported model, to and from Cloud Storage with google-cloud-storage.

Cloud Storage has no folders, only object names with slashes, so empty local
folders are not copied. Objects are copied one at a time, which suits model
folders of a few files. Without an explicit client, `storage.Client()` uses
Application Default Credentials, or the emulator named by STORAGE_EMULATOR_HOST.
"""

import logging
import os
import pathlib

from google.cloud import storage

logger = logging.getLogger(__name__)

SCHEME = "gs://"


def parse_gs_url(url: str) -> tuple[str, str]:
    """Split gs://bucket/some/prefix into ("bucket", "some/prefix/"), with prefix "" for a whole bucket."""
    if not url.startswith(SCHEME):
        raise ValueError(f"invalid Cloud Storage URL {url!r}: expected gs://BUCKET/PATH")
    bucket, _, prefix = url[len(SCHEME) :].partition("/")
    if not bucket:
        raise ValueError(f"invalid Cloud Storage URL {url!r}: the bucket name is missing")
    prefix = prefix.strip("/")
    return bucket, f"{prefix}/" if prefix else ""


def upload_dir(local_dir: str, gs_url: str, client: storage.Client | None = None) -> list[str]:
    """Upload every file under `local_dir` to `gs_url`, keeping relative paths, and return the object URLs.

    Objects that already exist under the same names are replaced. Other
    objects under `gs_url` are left as they are.
    """
    root = pathlib.Path(local_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"cannot upload {local_dir}: it is not a directory")
    bucket_name, prefix = parse_gs_url(gs_url)
    files = sorted(path for path in root.rglob("*") if path.is_file())
    if not files:
        raise FileNotFoundError(f"cannot upload {local_dir}: it contains no files")
    bucket = (client or storage.Client()).bucket(bucket_name)
    uploaded = []
    for path in files:
        name = prefix + path.relative_to(root).as_posix()
        bucket.blob(name).upload_from_filename(str(path))
        uploaded.append(f"{SCHEME}{bucket_name}/{name}")
    logger.info("Uploaded %d file(s) from %s to %s", len(uploaded), local_dir, gs_url)
    return uploaded


def local_target(root: pathlib.Path, relative_name: str) -> pathlib.Path:
    """Return where the object named `relative_name` (below the URL's prefix) lands under `root`.

    Object names may contain "..", so a name could point outside `root`, and
    such a name raises ValueError.
    """
    root = root.resolve()
    target = (root / relative_name).resolve()
    if not target.is_relative_to(root):
        raise ValueError(f"object name {relative_name!r} would be written outside {root}: download it separately")
    return target


def download_dir(gs_url: str, local_dir: str, client: storage.Client | None = None) -> list[str]:
    """Download every object under `gs_url` into `local_dir`, keeping relative paths, and return the local paths.

    Existing local files with the same names are overwritten. Raises
    FileNotFoundError when no object is under `gs_url`, and ValueError for an
    object name that would land outside `local_dir` (such as one with "..").
    """
    bucket_name, prefix = parse_gs_url(gs_url)
    client = client or storage.Client()
    root = pathlib.Path(local_dir).resolve()
    downloaded = []
    for blob in client.list_blobs(bucket_name, prefix=prefix):
        relative = blob.name[len(prefix) :]
        if not relative or relative.endswith("/"):
            continue  # A zero-byte "folder" placeholder, as the Cloud Console creates.
        target = local_target(root, relative)
        target.parent.mkdir(parents=True, exist_ok=True)
        blob.download_to_filename(str(target))
        downloaded.append(os.fspath(target))
    if not downloaded:
        raise FileNotFoundError(f"no object found under {gs_url}")
    logger.info("Downloaded %d file(s) from %s to %s", len(downloaded), gs_url, local_dir)
    return downloaded
