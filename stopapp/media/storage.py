"""Where photo bytes live: a content-addressed store for the clean copies, and a quarantine
area for raw uploads until they have been processed.

`Storage` is the interface the rest of the app uses; `LocalStorage` implements it on a local
directory. An S3-compatible store can implement the same methods later (its `quarantine_path`
would download the object to a temporary file for Pillow).

Raw uploads may still carry GPS and device data, so everything here is private to the service
user: directories 0o700, files 0o600. Keys are checked against the exact shapes this module
generates, so a key from a request or a database row can never point outside the store.
"""

import hashlib
import hmac
import os
import re
import secrets
import tempfile
import time
from typing import BinaryIO, Protocol, runtime_checkable

_CHUNK = 64 * 1024
_DIR_MODE = 0o700
_FILE_MODE = 0o600

_SUFFIX = re.compile(r"(\.[a-z0-9]{1,8})?")
_MEDIA_KEY = re.compile(r"([0-9a-f]{2})/([0-9a-f]{2})/([0-9a-f]{64})(\.[a-z0-9]{1,8})?")
_QUARANTINE_KEY = re.compile(r"[0-9a-f]{32}")
# The temporary file of an upload still streaming in (or of one whose process died mid-way).
_PARTIAL_UPLOAD = re.compile(r"\.part-[a-z0-9_]{1,32}")


class QuarantineTooLarge(Exception):
    """An upload stream went past the byte limit; nothing of it was kept."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(f"upload exceeds {max_bytes} bytes")
        self.max_bytes = max_bytes


@runtime_checkable
class Storage(Protocol):
    """Photo storage as the app uses it; see LocalStorage for the semantics."""

    def put(self, data: bytes, suffix: str) -> str:
        """Store `data` under its (keyed) digest and return the key (idempotent)."""
        ...

    def open(self, key: str) -> BinaryIO:
        """Open a stored object for binary reading."""
        ...

    def exists(self, key: str) -> bool:
        """Whether an object is stored under `key`."""
        ...

    def delete(self, key: str) -> None:
        """Remove an object; a missing one is not an error."""
        ...

    def quarantine_put(self, stream: BinaryIO, max_bytes: int) -> tuple[str, int]:
        """Copy an upload stream into quarantine; return (key, size)."""
        ...

    def quarantine_path(self, key: str) -> str:
        """A local file path with the quarantined upload's bytes."""
        ...

    def quarantine_delete(self, key: str) -> None:
        """Remove a quarantined upload; a missing one is not an error."""
        ...

    def quarantine_keys(self, older_than_s: float) -> list[str]:
        """Keys of quarantined uploads written more than `older_than_s` seconds ago."""
        ...


class LocalStorage:
    """Storage in a local directory: `root/media` for clean copies, `root/quarantine` for raw
    uploads.

    Media keys look like "ab/cd/<digest hex><suffix>", where ab and cd are the first four hex
    digits of the digest (so no directory grows too large). The digest is HMAC-SHA256 under
    `address_key` when one is given, plain SHA-256 otherwise: the processing of a photo is
    deterministic, so anyone holding an original and this code could rebuild its copies and
    recompute a plain digest, and the key in a photo's row would prove that it was sent.
    Quarantine keys are 32 random hex digits. Writes go to a temporary file in the target
    directory and are renamed into place, so a reader never sees a partial file, even after a
    crash.
    """

    def __init__(self, root: str | os.PathLike[str], address_key: bytes | None = None) -> None:
        """Create the storage directories if needed. Raises OSError if that fails."""
        self._address_key = address_key
        self.root = os.path.abspath(os.fspath(root))
        self.media_root = os.path.join(self.root, "media")
        self.quarantine_root = os.path.join(self.root, "quarantine")
        os.makedirs(self.root, mode=_DIR_MODE, exist_ok=True)
        for path in (self.media_root, self.quarantine_root):
            _private_dir(path)

    # -- clean copies -------------------------------------------------------------------------

    def put(self, data: bytes, suffix: str) -> str:
        """Store `data` and return its key, "ab/cd/<digest hex><suffix>".

        Storing the same bytes again returns the same key without rewriting the file.
        Raises ValueError for a suffix other than "" or "." plus 1-8 lowercase letters or
        digits; OSError if the file cannot be written.
        """
        if not _SUFFIX.fullmatch(suffix):
            raise ValueError("suffix must be empty or like '.jpg'")
        if self._address_key is None:
            digest = hashlib.sha256(data).hexdigest()
        else:
            digest = hmac.new(self._address_key, data, hashlib.sha256).hexdigest()
        key = f"{digest[:2]}/{digest[2:4]}/{digest}{suffix}"
        path = self._media_path(key)
        try:
            if os.path.getsize(path) == len(data):
                return key  # content-addressed: same name, same bytes
        except FileNotFoundError:
            pass
        directory = os.path.dirname(path)
        _private_dir(os.path.dirname(directory))
        _private_dir(directory)
        _atomic_write(directory, path, data)
        return key

    def open(self, key: str) -> BinaryIO:
        """Open the object for binary reading; the caller closes it.

        Raises ValueError for a malformed key, FileNotFoundError if nothing is stored there.
        """
        return open(self._media_path(key), "rb")

    def exists(self, key: str) -> bool:
        """Whether an object is stored under `key`. Raises ValueError for a malformed key."""
        return os.path.isfile(self._media_path(key))

    def delete(self, key: str) -> None:
        """Remove the object; a missing one is fine. Raises ValueError for a malformed key."""
        _unlink_if_present(self._media_path(key))

    # -- quarantine ---------------------------------------------------------------------------

    def quarantine_put(self, stream: BinaryIO, max_bytes: int) -> tuple[str, int]:
        """Copy `stream` in chunks into quarantine under a new random key; return (key, size).

        At most `max_bytes` are accepted: past that the partial file is removed and
        QuarantineTooLarge is raised. If reading the stream fails (a client that hangs up),
        the partial file is removed and the error propagates. Raises ValueError for a
        negative `max_bytes`, OSError if the file cannot be written.
        """
        if max_bytes < 0:
            raise ValueError("max_bytes must not be negative")
        key = secrets.token_hex(16)
        final = self._quarantine_path(key)
        fd, temp = tempfile.mkstemp(dir=self.quarantine_root, prefix=".part-")
        size = 0
        try:
            with os.fdopen(fd, "wb") as out:
                while True:
                    # Ask for one byte more than allowed, so "exactly max_bytes" is accepted and
                    # anything longer is detected without reading the rest of a huge body.
                    chunk = stream.read(min(_CHUNK, max_bytes + 1 - size))
                    if not chunk:
                        break
                    size += len(chunk)
                    if size > max_bytes:
                        raise QuarantineTooLarge(max_bytes)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temp, final)
        except BaseException:
            _unlink_if_present(temp)
            raise
        _fsync_dir(self.quarantine_root)
        return key, size

    def quarantine_path(self, key: str) -> str:
        """Local path of a quarantined upload (not checked for existence).

        Raises ValueError for a malformed key.
        """
        return self._quarantine_path(key)

    def quarantine_delete(self, key: str) -> None:
        """Remove a quarantined upload; a missing one is fine.

        Raises ValueError for a malformed key.
        """
        _unlink_if_present(self._quarantine_path(key))

    def quarantine_keys(self, older_than_s: float) -> list[str]:
        """Keys of quarantined uploads written more than `older_than_s` seconds ago.

        Partial files are listed too: one that old belongs to a process that died mid-upload,
        and it holds raw bytes (GPS and all) that no row will ever point at.
        """
        cutoff = time.time() - older_than_s
        keys = []
        with os.scandir(self.quarantine_root) as entries:
            for entry in entries:
                if _is_quarantine_name(entry.name) and entry.stat().st_mtime < cutoff:
                    keys.append(entry.name)
        return keys

    # -- keys ---------------------------------------------------------------------------------

    def _media_path(self, key: str) -> str:
        match = _MEDIA_KEY.fullmatch(key) if isinstance(key, str) else None
        # The shard directories must be the hash's own first digits: one place per content.
        if match is None or match.group(3)[:4] != match.group(1) + match.group(2):
            raise ValueError("malformed media key")
        return os.path.join(self.media_root, *key.split("/"))

    def _quarantine_path(self, key: str) -> str:
        if not isinstance(key, str) or not _is_quarantine_name(key):
            raise ValueError("malformed quarantine key")
        return os.path.join(self.quarantine_root, key)


def _is_quarantine_name(name: str) -> bool:
    return bool(_QUARANTINE_KEY.fullmatch(name) or _PARTIAL_UPLOAD.fullmatch(name))


def _private_dir(path: str) -> None:
    """Create `path` (its parent must exist) and make it 0o700 whatever the umask."""
    try:
        os.mkdir(path, _DIR_MODE)
    except FileExistsError:
        pass
    os.chmod(path, _DIR_MODE)


def _atomic_write(directory: str, path: str, data: bytes) -> None:
    # mkstemp creates the file 0o600 and exclusively; the rename makes it appear whole.
    fd, temp = tempfile.mkstemp(dir=directory, prefix=".part-")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temp, _FILE_MODE)
        os.replace(temp, path)
    except BaseException:
        _unlink_if_present(temp)
        raise
    _fsync_dir(directory)


def _fsync_dir(directory: str) -> None:
    """Make a rename durable: without this a crash can lose the new directory entry."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _unlink_if_present(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
