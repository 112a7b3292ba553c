"""Tests of LocalStorage on a real temporary directory."""

import hashlib
import hmac
import io
import os
import stat
from pathlib import Path

import pytest

from stopapp.media.storage import LocalStorage, QuarantineTooLarge, Storage


@pytest.fixture
def store(tmp_path: Path) -> LocalStorage:
    return LocalStorage(str(tmp_path / "store"))


def mode_of(path: str | Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def all_entries(root: str) -> list[str]:
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        found += [os.path.join(dirpath, name) for name in dirnames + filenames]
    return found


def test_implements_the_protocol(store: LocalStorage) -> None:
    assert isinstance(store, Storage)


def test_put_is_content_addressed(store: LocalStorage) -> None:
    data = b"\xff\xd8\xff pretend jpeg"
    digest = hashlib.sha256(data).hexdigest()
    key = store.put(data, ".jpg")
    assert key == f"{digest[:2]}/{digest[2:4]}/{digest}.jpg"
    assert store.exists(key)
    with store.open(key) as fh:
        assert fh.read() == data
    on_disk = Path(store.root, "media", digest[:2], digest[2:4], f"{digest}.jpg")
    assert on_disk.read_bytes() == data
    assert store.put(b"other bytes", ".jpg") != key
    assert store.put(data, "") == f"{digest[:2]}/{digest[2:4]}/{digest}"


def test_put_with_an_address_key_names_copies_by_their_hmac(tmp_path: Path) -> None:
    # A plain hash of a copy could be recomputed by anyone who can rebuild the copy.
    data = b"\xff\xd8\xff pretend jpeg"
    store = LocalStorage(tmp_path / "store", b"address key")
    digest = hmac.new(b"address key", data, hashlib.sha256).hexdigest()
    key = store.put(data, ".jpg")
    assert key == f"{digest[:2]}/{digest[2:4]}/{digest}.jpg"
    assert hashlib.sha256(data).hexdigest() not in key
    assert store.put(data, ".jpg") == key
    with store.open(key) as fh:
        assert fh.read() == data
    assert LocalStorage(tmp_path / "other", b"another key").put(data, ".jpg") != key


def test_put_is_idempotent(store: LocalStorage) -> None:
    data = b"same bytes"
    key = store.put(data, ".jpg")
    path = Path(store.root, "media", *key.split("/"))
    first = os.stat(path)
    assert store.put(data, ".jpg") == key
    second = os.stat(path)
    assert (first.st_ino, first.st_mtime_ns) == (second.st_ino, second.st_mtime_ns)
    # Only the one file: no temporary files left behind.
    assert [p for p in all_entries(store.media_root) if os.path.isfile(p)] == [str(path)]


def test_put_repairs_a_damaged_copy(store: LocalStorage) -> None:
    key = store.put(b"0123456789", ".jpg")
    path = Path(store.root, "media", *key.split("/"))
    path.write_bytes(b"01234")
    assert store.put(b"0123456789", ".jpg") == key
    assert path.read_bytes() == b"0123456789"


def test_permissions(store: LocalStorage) -> None:
    old_umask = os.umask(0o022)
    try:
        key = store.put(b"private", ".jpg")
        qkey, _ = store.quarantine_put(io.BytesIO(b"raw upload"), 1000)
    finally:
        os.umask(old_umask)
    for directory in (store.media_root, store.quarantine_root):
        assert mode_of(directory) == 0o700
    shard = Path(store.media_root, key[:2])
    assert mode_of(shard) == 0o700 and mode_of(shard / key[3:5]) == 0o700
    assert mode_of(Path(store.media_root, *key.split("/"))) == 0o600
    assert mode_of(store.quarantine_path(qkey)) == 0o600


def test_delete(store: LocalStorage) -> None:
    key = store.put(b"to delete", ".jpg")
    store.delete(key)
    assert not store.exists(key)
    store.delete(key)  # missing is fine
    with pytest.raises(FileNotFoundError):
        store.open(key)


@pytest.mark.parametrize("suffix", [".JPG", "jpg", ".jp/g", "/../x", ".toolongsuffix", ". "])
def test_bad_suffixes_are_refused(store: LocalStorage, suffix: str) -> None:
    with pytest.raises(ValueError):
        store.put(b"data", suffix)


GOOD_SHA = hashlib.sha256(b"x").hexdigest()


@pytest.mark.parametrize(
    "key",
    [
        "../../etc/passwd",
        "/etc/passwd",
        f"{GOOD_SHA[:2]}/{GOOD_SHA[2:4]}/../../../{GOOD_SHA}.jpg",
        f"{GOOD_SHA[:2]}/{GOOD_SHA[2:4]}/{GOOD_SHA}.jpg/..",
        f"{GOOD_SHA[:2]}/{GOOD_SHA[2:4]}/{GOOD_SHA}.jpg\n",
        f"{GOOD_SHA[:2]}\\{GOOD_SHA[2:4]}\\{GOOD_SHA}.jpg",
        f"00/00/{GOOD_SHA}.jpg",  # shards that are not the hash's own
        f"{GOOD_SHA[:2]}/{GOOD_SHA[2:4]}/{GOOD_SHA.upper()}.jpg",
        GOOD_SHA,
        "",
    ],
)
def test_traversal_and_malformed_media_keys(store: LocalStorage, key: str) -> None:
    for call in (store.open, store.exists, store.delete):
        with pytest.raises(ValueError):
            call(key)


@pytest.mark.parametrize(
    "key", ["../media", "../../etc/passwd", "g" * 32, "0" * 31, "0" * 32 + "/", "0" * 32 + "\n"]
)
def test_traversal_and_malformed_quarantine_keys(store: LocalStorage, key: str) -> None:
    for call in (store.quarantine_path, store.quarantine_delete):
        with pytest.raises(ValueError):
            call(key)


class Trickle(io.RawIOBase):
    """A stream that returns a few bytes per read, like a slow client."""

    def __init__(self, data: bytes, step: int = 7) -> None:
        self.data, self.pos, self.step = data, 0, step

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        size = self.step if size < 0 else min(size, self.step)
        chunk = self.data[self.pos : self.pos + size]
        self.pos += len(chunk)
        return chunk


def test_quarantine_round_trip(store: LocalStorage) -> None:
    data = os.urandom(200_000)
    key, size = store.quarantine_put(io.BytesIO(data), 200_000)  # exactly the limit is fine
    assert size == 200_000
    assert Path(store.quarantine_path(key)).read_bytes() == data
    other, _ = store.quarantine_put(io.BytesIO(data), 1_000_000)
    assert other != key  # random keys, never derived from the content
    slow, slow_size = store.quarantine_put(Trickle(b"abcdefghijklmnopqrstuvwxyz"), 26)
    assert slow_size == 26 and Path(store.quarantine_path(slow)).read_bytes()[-3:] == b"xyz"
    store.quarantine_delete(key)
    assert not os.path.exists(store.quarantine_path(key))
    store.quarantine_delete(key)  # missing is fine


def test_quarantine_empty_upload(store: LocalStorage) -> None:
    key, size = store.quarantine_put(io.BytesIO(b""), 100)
    assert size == 0 and os.path.getsize(store.quarantine_path(key)) == 0


def test_quarantine_too_large_leaves_nothing(store: LocalStorage) -> None:
    big = io.BytesIO(b"x" * 300_000)
    with pytest.raises(QuarantineTooLarge) as info:
        store.quarantine_put(big, 100_000)
    assert info.value.max_bytes == 100_000
    assert big.tell() <= 100_000 + 64 * 1024  # stopped reading soon after the limit
    assert all_entries(store.quarantine_root) == []
    with pytest.raises(QuarantineTooLarge):
        store.quarantine_put(Trickle(b"y" * 50), 49)
    assert all_entries(store.quarantine_root) == []
    with pytest.raises(ValueError):
        store.quarantine_put(io.BytesIO(b""), -1)


class Broken(io.RawIOBase):
    """A client that hangs up halfway."""

    def __init__(self) -> None:
        self.calls = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        self.calls += 1
        if self.calls > 3:
            raise ConnectionResetError("client went away")
        return b"z" * 1000


def test_quarantine_failed_stream_leaves_nothing(store: LocalStorage) -> None:
    with pytest.raises(ConnectionResetError):
        store.quarantine_put(Broken(), 1_000_000)
    assert all_entries(store.quarantine_root) == []


def test_reopening_an_existing_root(tmp_path: Path) -> None:
    first = LocalStorage(tmp_path / "store")
    key = first.put(b"kept", ".jpg")
    second = LocalStorage(str(tmp_path / "store"))
    assert second.exists(key)
