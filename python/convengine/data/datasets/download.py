"""Download-or-local file handling for the dataset loaders: a cache directory, atomic
downloads (temporary file, then rename) and MD5 verification."""

import hashlib
import os
import shutil
import tempfile
import urllib.request

__all__ = ["default_root", "md5sum", "check_md5", "download_url", "fetch"]


def default_root():
    """$CONVENGINE_DATA, else ~/.cache/convengine/data."""
    return os.environ.get("CONVENGINE_DATA") or os.path.join(
        os.path.expanduser("~"), ".cache", "convengine", "data")


def md5sum(path, chunk_size=1 << 20):
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(chunk_size), b""):
            digest.update(chunk)
    return digest.hexdigest()


def check_md5(path, md5):
    """True when md5 is None (nothing to check) or matches the file's checksum."""
    return md5 is None or md5sum(path) == md5


def fetch(url, destination, timeout=60):
    """Copies url (http(s):// or file://) to the open binary file `destination`.

    Tests replace this function to simulate a download without network access.
    """
    with urllib.request.urlopen(url, timeout=timeout) as response:
        shutil.copyfileobj(response, destination)


def download_url(url, root, filename, md5=None):
    """root/filename, downloaded from url unless a copy with the right checksum is there.

    The download goes to a temporary file in root and is renamed into place only after its
    checksum matched, so an interrupted or corrupted download never leaves a bad file
    behind. Raises RuntimeError when the download fails and ValueError on a checksum
    mismatch.
    """
    os.makedirs(root, exist_ok=True)
    path = os.path.join(root, filename)
    if os.path.exists(path) and check_md5(path, md5):
        return path
    fd, tmp = tempfile.mkstemp(prefix=filename + ".", suffix=".part", dir=root)
    try:
        with os.fdopen(fd, "wb") as out:
            try:
                fetch(url, out)
            except Exception as error:
                raise RuntimeError(f"download of {url} failed: {error}") from error
            out.flush()
            os.fsync(out.fileno())
        actual = md5sum(tmp)
        if md5 is not None and actual != md5:
            raise ValueError(f"checksum mismatch for {url}: expected md5 {md5}, got {actual}; "
                             f"the file was not kept")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path
