"""Encryption of PII at rest and blind indexes for looking it up.

One 32-byte master key (HUB_DATA_KEY, or the key file) is stretched with HKDF-SHA256 into two
independent keys: an AES-256-GCM key for the PII columns and a BLAKE2b key for blind indexes
(keyed digests that let the store find and deduplicate a NIK without holding it in clear).

```python
protector = DataProtector(load_data_key(settings))
blob = protector.seal_json({"nama_ibu": "Siti"}, aad=b"kelahiran:42")
protector.open_json(blob, aad=b"kelahiran:42")  # {'nama_ibu': 'Siti'}
protector.blind_index("3273014101900001", "nik")  # 16 bytes, same input -> same bytes
```

Ciphertext layout: `version (1) | key id (1) | nonce (12) | ciphertext + GCM tag (16)`. The two
header bytes are authenticated with the caller's `aad`. The key id is the **key version**:
version 1 is derived from the master key; `hub keys rotate --pii` (hub/keys.py) adds random
versions wrapped by the master key (`wrap_key`) and installs them here (`install`), so every
version keeps opening its ciphertexts while re-encryption runs. Blind indexes stay on their
own key derived from the master key and are not touched by a rotation (docs/custody.md).
The hub's Ed25519 audit key (checkpoint signatures) is derived from the master key too.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import os
import stat
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from hub.errors import ConfigError, HubError

if TYPE_CHECKING:
    from hub.settings import Settings

logger = logging.getLogger(__name__)

KEY_SIZE: Final = 32
NONCE_SIZE: Final = 12
FORMAT_VERSION: Final = 1
BLIND_INDEX_SIZE: Final = 16
_HEADER_SIZE: Final = 2
_TAG_SIZE: Final = 16
_INFO_ENCRYPTION: Final = b"lampid-hub/v1/pii/aes-256-gcm"
_INFO_BLIND_INDEX: Final = b"lampid-hub/v1/blind-index/blake2b"
_INFO_KEY_WRAP: Final = b"lampid-hub/v1/pii/key-wrap"
_INFO_AUDIT_SIGNING: Final = b"lampid-hub/v1/audit/ed25519"


class DecryptionError(HubError):
    """A ciphertext cannot be opened: tampered, truncated, wrong key or aad, unknown key id."""


def _derive(master_key: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=KEY_SIZE, salt=None, info=info).derive(master_key)


def _check_master_key(key: bytes) -> bytes:
    if len(key) != KEY_SIZE:
        raise ConfigError(f"the data key must be {KEY_SIZE} bytes, not {len(key)}")
    return bytes(key)


class DataProtector:
    """Encrypts, decrypts and blind-indexes values with keys derived from one master key.

    `key_id` (1-255) is written into every ciphertext; `previous` maps the ids of retired master
    keys to those keys so that their ciphertexts still open after a rotation.

    ```python
    protector = DataProtector(os.urandom(32))
    blob = protector.encrypt(b"3273014101900001", aad=b"records:pii")
    assert protector.decrypt(blob, aad=b"records:pii") == b"3273014101900001"
    ```
    """

    __slots__ = (
        "_active",
        "_blind_base",
        "_ciphers",
        "_domains",
        "_refresh_at",
        "_refresh_every",
        "_refresh_lock",
        "_refresher",
        "_seeds",
        "key_id",
    )

    def __init__(
        self, master_key: bytes, *, key_id: int = 1, previous: Mapping[int, bytes] | None = None
    ) -> None:
        if not 1 <= key_id <= 255:
            raise ValueError("key_id must be 1..255")
        master_key = _check_master_key(master_key)
        self._ciphers: dict[int, AESGCM] = {}
        for old_id, old_key in (previous or {}).items():
            if not 1 <= old_id <= 255 or old_id == key_id:
                raise ValueError(f"previous key id {old_id} must be 1..255 and not {key_id}")
            self._ciphers[old_id] = AESGCM(_derive(_check_master_key(old_key), _INFO_ENCRYPTION))
        self._ciphers[key_id] = AESGCM(_derive(master_key, _INFO_ENCRYPTION))
        self.key_id = key_id
        # (header, cipher) of the version that seals, swapped as one so a concurrent
        # `install` can never pair one version's header with another's key.
        self._active = (bytes((FORMAT_VERSION, key_id)), self._ciphers[key_id])
        self._seeds = (
            _derive(master_key, _INFO_KEY_WRAP),
            _derive(master_key, _INFO_AUDIT_SIGNING),
        )
        self._refresher: Callable[[DataProtector], None] | None = None
        self._refresh_every = 0.0
        self._refresh_at = float("inf")
        self._refresh_lock = threading.Lock()
        blind_key = _derive(master_key, _INFO_BLIND_INDEX)
        self._blind_base = hashlib.blake2b(key=blind_key, digest_size=BLIND_INDEX_SIZE)
        self._domains: dict[str, Any] = {}  # domain -> blake2b state with the domain absorbed

    def __repr__(self) -> str:
        return f"DataProtector(key_id={self.key_id}, keys={sorted(self._ciphers)})"

    # ------------------------------------------------------------------ key versions

    @property
    def versions(self) -> list[int]:
        """Every key version this protector can open."""
        return sorted(self._ciphers)

    def install(self, version: int, key: bytes, *, active: bool = False) -> None:
        """Add key `version` (a raw 32-byte key, e.g. from `unwrap_key`); `active` seals with it."""
        if not 1 <= version <= 255:
            raise ValueError("key version must be 1..255")
        cipher = self._ciphers.get(version) or AESGCM(_check_master_key(key))
        self._ciphers[version] = cipher
        if active:
            self.activate(version)

    def activate(self, version: int) -> None:
        """Seal with `version` (already installed) from now on."""
        self._active = (bytes((FORMAT_VERSION, version)), self._ciphers[version])
        self.key_id = version

    def wrap_key(self, key: bytes, version: int) -> bytes:
        """`key` sealed with the master key's wrapping key, bound to its version."""
        nonce = os.urandom(NONCE_SIZE)
        aad = b"data-key:%d" % version
        return nonce + AESGCM(self._seeds[0]).encrypt(nonce, _check_master_key(key), aad)

    def unwrap_key(self, blob: bytes, version: int) -> bytes:
        """The raw key `wrap_key` sealed; `DecryptionError` with another master key."""
        try:
            return AESGCM(self._seeds[0]).decrypt(
                blob[:NONCE_SIZE], blob[NONCE_SIZE:], b"data-key:%d" % version
            )
        except (InvalidTag, ValueError):
            raise DecryptionError(
                f"key version {version} cannot be unwrapped: another master key?"
            ) from None

    def audit_signing_key(self) -> Ed25519PrivateKey:
        """The hub's Ed25519 key for audit checkpoints, derived from the master key."""
        return Ed25519PrivateKey.from_private_bytes(self._seeds[1])

    def set_refresher(self, refresher: Callable[[DataProtector], None], every: float) -> None:
        """Call `refresher(self)` (which installs the stored key versions) at most every
        `every` seconds before sealing, and at once when a blob names an unknown version:
        how a rotation started by another process reaches this one without a restart."""
        self._refresher = refresher
        self._refresh_every = every
        self._refresh_at = time.monotonic() + every

    def refresh(self) -> None:
        """Run the refresher now (no-op without one)."""
        refresher = self._refresher
        if refresher is None:
            return
        with self._refresh_lock:
            self._refresh_at = time.monotonic() + self._refresh_every
            refresher(self)

    # ------------------------------------------------------------------ sealing

    def encrypt(self, plaintext: bytes, aad: bytes) -> bytes:
        """Encrypt with a fresh random nonce. `aad` binds the blob to its place (table, row)."""
        if time.monotonic() > self._refresh_at:
            self.refresh()
        header, cipher = self._active
        nonce = _NONCES.take()
        return header + nonce + cipher.encrypt(nonce, plaintext, header + aad)

    def decrypt(self, blob: bytes, aad: bytes) -> bytes:
        """Open a blob made by `encrypt` with the same `aad`; raises `DecryptionError` otherwise."""
        if len(blob) < _HEADER_SIZE + NONCE_SIZE + _TAG_SIZE:
            raise DecryptionError("ciphertext is truncated")
        if blob[0] != FORMAT_VERSION:
            raise DecryptionError(f"unknown ciphertext format version {blob[0]}")
        cipher = self._ciphers.get(blob[1])
        if cipher is None and self._refresher is not None:
            self.refresh()
            cipher = self._ciphers.get(blob[1])
        if cipher is None:
            raise DecryptionError(f"no key with id {blob[1]} is loaded")
        header = blob[:_HEADER_SIZE]
        nonce = blob[_HEADER_SIZE : _HEADER_SIZE + NONCE_SIZE]
        try:
            return cipher.decrypt(nonce, blob[_HEADER_SIZE + NONCE_SIZE :], header + aad)
        except InvalidTag:
            raise DecryptionError(
                "ciphertext failed authentication (tampered, wrong key or wrong aad)"
            ) from None

    def blind_index(self, value: str, domain: str) -> bytes:
        """Keyed BLAKE2b digest (16 bytes) of `value` within `domain` ("nik", "natural_key:...").

        Equal inputs give equal digests only within one domain, so a NIK index cannot be joined
        against a natural-key index. Normalise `value` first: the digest is of the exact string.
        """
        return self.digest(value.encode(), domain)

    def digest(self, data: bytes, domain: str) -> bytes:
        """`blind_index` of bytes: a keyed BLAKE2b digest (16 bytes) within `domain`."""
        state = self._domains.get(domain)
        if state is None:
            label = domain.encode()
            state = self._blind_base.copy()
            state.update(len(label).to_bytes(2, "big") + label)  # unambiguous prefix
            self._domains[domain] = state
        h = state.copy()
        h.update(data)
        digest: bytes = h.digest()
        return digest

    def seal_json(self, obj: Any, aad: bytes = b"") -> bytes:
        """Encrypt `obj` as JSON (orjson: str keys, dates as ISO strings)."""
        return self.encrypt(orjson.dumps(obj), aad)

    def open_json(self, blob: bytes, aad: bytes = b"") -> Any:
        """Decrypt and parse a blob made by `seal_json`."""
        return orjson.loads(self.decrypt(blob, aad))


class _NoncePool:
    """Random 96-bit nonces drawn from the OS a block at a time: one `getrandom` call per
    4,096 seals instead of one per seal (a record seals two blobs, and the system call was
    a tenth of their cost). Still random nonces, never a counter. Thread-safe; a forked
    child empties its pool, so parent and child can never use the same unused nonces."""

    BLOCK = 4096

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pool = b""
        self._next = 0

    def take(self) -> bytes:
        with self._lock:
            start = self._next
            if start >= len(self._pool):
                self._pool, start = os.urandom(NONCE_SIZE * self.BLOCK), 0
            self._next = start + NONCE_SIZE
            return self._pool[start : start + NONCE_SIZE]

    def forget(self) -> None:
        """In a forked child: a new lock (the parent's may be held) and an empty pool."""
        self._lock = threading.Lock()
        self._pool, self._next = b"", 0


_NONCES: Final = _NoncePool()
os.register_at_fork(after_in_child=_NONCES.forget)


def generate_data_key() -> str:
    """A new random master key, as the base64 text HUB_DATA_KEY and the key file hold."""
    return base64.b64encode(os.urandom(KEY_SIZE)).decode("ascii")


def decode_data_key(text: str, *, source: str = "HUB_DATA_KEY") -> bytes:
    """Decode a base64 or urlsafe-base64 master key; `ConfigError` (never echoing it) otherwise."""
    text = text.strip()
    try:
        raw = text.encode("ascii")
        altchars = b"-_" if b"-" in raw or b"_" in raw else None
        padded = raw + b"=" * (-len(raw) % 4)
        key = base64.b64decode(padded, altchars=altchars, validate=True)
    except (UnicodeEncodeError, binascii.Error, ValueError):
        raise ConfigError(
            f"{source} is not valid base64; generate one with "
            "python -c 'import base64,os; print(base64.b64encode(os.urandom(32)).decode())'"
        ) from None
    if len(key) != KEY_SIZE:
        raise ConfigError(f"{source} must decode to {KEY_SIZE} bytes, not {len(key)}")
    return key


@dataclass(frozen=True, slots=True)
class DataKey:
    """The master key and where it came from (`origin == "generated"`: a new key was written)."""

    key: bytes = field(repr=False)
    origin: Literal["env", "file", "generated"]
    path: Path | None = None

    @property
    def generated(self) -> bool:
        return self.origin == "generated"


def resolve_data_key(settings: Settings) -> DataKey:
    """Find the master key: HUB_DATA_KEY, else the key file, else (embedded only) a new key file.

    A generated key is written atomically with mode 0600 (directory created with 0700) and
    logged as a warning: losing that file makes every stored PII value unreadable. When
    scaled out (PostgreSQL), every process must share one key, so a missing key is an error.
    """
    if settings.data_key is not None:
        return DataKey(decode_data_key(str(settings.data_key)), "env")
    path = settings.data_key_file
    try:
        return DataKey(_read_key_file(path), "file", path)
    except FileNotFoundError:
        pass
    if not settings.embedded:
        raise ConfigError(
            f"no data key: set HUB_DATA_KEY or provide {path} (every process of a scaled-out "
            "hub must use the same key, so none is generated)"
        )
    key = _create_key_file(path)
    if key is None:  # another process created it first
        return DataKey(_read_key_file(path), "file", path)
    logger.warning("generated a new data key at %s; back it up, PII is unreadable without it", path)
    return DataKey(key, "generated", path)


def load_data_key(settings: Settings) -> bytes:
    """The 32-byte master key (see `resolve_data_key` for the order and the generated flag)."""
    return resolve_data_key(settings).key


def _read_key_file(path: Path) -> bytes:
    try:
        text = path.read_text(encoding="ascii")
    except UnicodeDecodeError:
        raise ConfigError(f"data key file {path} is not base64 text") from None
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise ConfigError(f"data key file {path} cannot be read: {exc.strerror}") from exc
    if os.name == "posix" and path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        logger.warning("data key file %s is readable by other users; chmod 600 it", path)
    return decode_data_key(text, source=f"data key file {path}")


def _create_key_file(path: Path) -> bytes | None:
    """Write a new key to `path` unless it exists; None when another process won the race."""
    text = generate_data_key()
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with os.fdopen(fd, "w", encoding="ascii") as f:
                f.write(text + "\n")
                f.flush()
                os.fsync(f.fileno())
            os.link(tmp, path)  # atomic, and fails if the file appeared meanwhile
        except FileExistsError:
            return None
        finally:
            tmp.unlink(missing_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot write data key file {path}: {exc.strerror}") from exc
    return base64.b64decode(text)
