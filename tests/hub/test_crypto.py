"""Settings, data key loading, AES-GCM envelopes and blind indexes."""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import stat
from pathlib import Path

import pytest
from starlette.datastructures import Secret

from hub.crypto import (
    BLIND_INDEX_SIZE,
    DataProtector,
    DecryptionError,
    decode_data_key,
    load_data_key,
    resolve_data_key,
)
from hub.errors import ConfigError, HubError
from hub.settings import Settings

KEY = bytes(range(32))
KEY_B64 = base64.b64encode(KEY).decode()
AAD = b"records:42"


@pytest.fixture
def protector():
    return DataProtector(KEY)


# ------------------------------------------------------------------ envelopes


def test_round_trip_and_layout(protector):
    blob = protector.encrypt(b"3273014101900001", AAD)
    assert blob[0] == 1  # format version
    assert blob[1] == 1  # key id
    assert len(blob) == 2 + 12 + 16 + 16
    assert b"3273014101900001" not in blob
    assert protector.decrypt(blob, AAD) == b"3273014101900001"


def test_nonce_is_fresh_every_time(protector):
    assert protector.encrypt(b"same", AAD) != protector.encrypt(b"same", AAD)


def test_nonces_never_repeat_across_pool_blocks_and_threads(protector):
    from concurrent.futures import ThreadPoolExecutor

    def nonces(n: int) -> list[bytes]:
        return [protector.encrypt(b"x", AAD)[2:14] for _ in range(n)]

    with ThreadPoolExecutor(4) as pool:
        drawn = [n for part in pool.map(nonces, [3000] * 4) for n in part]
    assert len(drawn) == 12_000  # about three pool blocks
    assert len(set(drawn)) == len(drawn)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_never_reuses_the_parents_pooled_nonces(protector):
    protector.encrypt(b"x", AAD)  # the parent's pool now holds unused nonces
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next nonce, to the parent
        os.close(read_end)
        os.write(write_end, protector.encrypt(b"x", AAD)[2:14])
        os._exit(0)
    os.close(write_end)
    child = os.read(read_end, 12)
    os.close(read_end)
    os.waitpid(pid, 0)
    parent = [protector.encrypt(b"x", AAD)[2:14] for _ in range(4096)]
    assert len(child) == 12
    assert child not in parent


def test_empty_plaintext(protector):
    assert protector.decrypt(protector.encrypt(b"", b""), b"") == b""


@pytest.mark.parametrize(
    ("position", "reason"),
    [
        (0, "format version"),  # version byte
        (1, "no key with id"),  # key id byte
        (2, "authentication"),  # nonce
        (20, "authentication"),  # ciphertext
        (-1, "authentication"),  # tag
    ],
)
def test_any_flipped_byte_is_refused(protector, position, reason):
    blob = bytearray(protector.encrypt(b"Siti Aminah binti Ahmad", AAD))
    blob[position] ^= 0x01
    with pytest.raises(DecryptionError, match=reason):
        protector.decrypt(bytes(blob), AAD)


def test_wrong_aad_is_refused(protector):
    blob = protector.encrypt(b"secret", AAD)
    with pytest.raises(DecryptionError, match="wrong aad"):
        protector.decrypt(blob, b"records:43")


def test_wrong_key_is_refused(protector):
    blob = protector.encrypt(b"secret", AAD)
    with pytest.raises(DecryptionError):
        DataProtector(os.urandom(32)).decrypt(blob, AAD)


@pytest.mark.parametrize("blob", [b"", b"\x01\x01", b"\x01\x01" + bytes(27)])
def test_truncated_blob_is_refused(protector, blob):
    with pytest.raises(DecryptionError, match="truncated"):
        protector.decrypt(blob, AAD)


def test_decryption_error_is_a_hub_error():
    assert issubclass(DecryptionError, HubError)


def test_rotated_key_keeps_old_ciphertexts_readable(protector):
    old_blob = protector.encrypt(b"old", AAD)
    new_key = os.urandom(32)
    rotated = DataProtector(new_key, key_id=2, previous={1: KEY})
    new_blob = rotated.encrypt(b"new", AAD)
    assert new_blob[1] == 2
    assert rotated.decrypt(old_blob, AAD) == b"old"
    assert rotated.decrypt(new_blob, AAD) == b"new"
    with pytest.raises(DecryptionError, match="no key with id 2"):
        protector.decrypt(new_blob, AAD)


@pytest.mark.parametrize("key", [b"", bytes(16), bytes(31), bytes(33), bytes(64)])
def test_master_key_must_be_32_bytes(key):
    with pytest.raises(ConfigError, match="32 bytes"):
        DataProtector(key)


@pytest.mark.parametrize("kwargs", [{"key_id": 0}, {"key_id": 256}, {"previous": {1: KEY}}])
def test_bad_key_ids(kwargs):
    with pytest.raises(ValueError, match="key"):
        DataProtector(KEY, **kwargs)


def test_seal_and_open_json(protector):
    record = {"nama_ibu": "Siti", "nik_ibu": "3273014101900001", "berat": 3200, "kembar": None}
    blob = protector.seal_json(record, aad=AAD)
    assert b"Siti" not in blob
    assert protector.open_json(blob, aad=AAD) == record
    with pytest.raises(DecryptionError):
        protector.open_json(blob)


def test_repr_shows_no_key_material(protector):
    assert repr(protector) == "DataProtector(key_id=1, keys=[1])"


# ------------------------------------------------------------------ blind indexes


def test_blind_index_is_deterministic_and_16_bytes(protector):
    digest = protector.blind_index("3273014101900001", "nik")
    assert len(digest) == BLIND_INDEX_SIZE == 16
    assert digest == protector.blind_index("3273014101900001", "nik")
    assert digest == DataProtector(KEY).blind_index("3273014101900001", "nik")
    assert digest != protector.blind_index("3273014101900002", "nik")


def test_blind_index_domains_are_separate(protector):
    value = "3273014101900001"
    digests = {
        protector.blind_index(value, domain)
        for domain in ("nik", "natural_key:kelahiran", "natural_key:kematian", "")
    }
    assert len(digests) == 4
    # The domain prefix is length-delimited: moving characters across the boundary changes it.
    assert protector.blind_index("b", "a") != protector.blind_index("", "ab")


def test_blind_index_depends_on_the_key(protector):
    value = "3273014101900001"
    assert protector.blind_index(value, "nik") != DataProtector(os.urandom(32)).blind_index(
        value, "nik"
    )
    plain = hashlib.blake2b(value.encode(), digest_size=16).digest()
    assert protector.blind_index(value, "nik") != plain


def test_blind_index_does_not_use_the_encryption_key(protector):
    value = "x"
    unkeyed = hashlib.blake2b(key=KEY, digest_size=16)
    unkeyed.update(b"\x00\x03nik" + value.encode())
    assert protector.blind_index(value, "nik") != unkeyed.digest()


# ------------------------------------------------------------------ key text


@pytest.mark.parametrize(
    "text",
    [
        KEY_B64,
        base64.urlsafe_b64encode(KEY).decode(),
        KEY_B64.rstrip("="),
        f"  {KEY_B64}\n",
        base64.urlsafe_b64encode(b"\xfb\xff" * 16).decode().rstrip("="),  # '-' and '_'
    ],
)
def test_decode_data_key_accepts_base64_forms(text):
    assert len(decode_data_key(text)) == 32


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("not base64!", "not valid base64"),
        ("ÄÖÜ" * 12, "not valid base64"),
        ("", "must decode to 32 bytes, not 0"),
        (base64.b64encode(bytes(16)).decode(), "must decode to 32 bytes, not 16"),
        (base64.b64encode(bytes(33)).decode(), "must decode to 32 bytes, not 33"),
        ("A", "not valid base64"),
    ],
)
def test_decode_data_key_refuses_bad_text(text, message):
    with pytest.raises(ConfigError, match=message) as info:
        decode_data_key(text)
    if len(text) > 4:
        assert text not in str(info.value)  # a secret is never echoed


# ------------------------------------------------------------------ settings


def test_settings_defaults(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    settings = Settings.from_env({})
    assert settings.data_dir == tmp_path / "var"
    assert settings.database_url == f"sqlite:///{tmp_path / 'var' / 'hub.db'}"
    assert settings.data_key is None
    assert settings.data_key_file == tmp_path / "var" / "hub.key"
    assert settings.embedded


def test_settings_from_environment(tmp_path):
    settings = Settings.from_env(
        {
            "HUB_DATA_DIR": str(tmp_path / "data"),
            "HUB_DATABASE_URL": "postgresql://hub:s3cret@db.example:5432/hub",
            "HUB_DATA_KEY": KEY_B64,
            "HUB_DATA_KEY_FILE": str(tmp_path / "keys" / "k"),
        }
    )
    assert settings.database_url == "postgresql+psycopg://hub:s3cret@db.example:5432/hub"
    assert not settings.embedded
    assert isinstance(settings.data_key, Secret)
    assert str(settings.data_key) == KEY_B64
    assert settings.data_key_file == tmp_path / "keys" / "k"
    assert settings.data_dir == tmp_path / "data"
    text = repr(settings)
    assert "s3cret" not in text
    assert KEY_B64 not in text


def test_settings_read_an_env_file_and_environ_wins(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text(f"HUB_DATA_KEY='{KEY_B64}'\nHUB_DATA_DIR=/from/file\n")
    settings = Settings.from_env({"HUB_DATA_DIR": str(tmp_path)}, env_file=env_file)
    assert str(settings.data_key) == KEY_B64
    assert settings.data_dir == tmp_path


def test_empty_variables_count_as_unset(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    settings = Settings.from_env({"HUB_DATA_KEY": "", "HUB_DATABASE_URL": " "})
    assert settings.data_key is None
    assert settings.embedded


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"HUB_DATA_KEY": "short"}, "HUB_DATA_KEY"),
        ({"HUB_DATA_KEY": base64.b64encode(bytes(24)).decode()}, "32 bytes, not 24"),
        ({"HUB_DATABASE_URL": "not a url"}, "HUB_DATABASE_URL is not a database URL"),
        ({"HUB_DATABASE_URL": "mysql://u@h/db"}, "backend 'mysql'"),
        ({"HUB_DATABASE_URL": "postgresql+psycopg2://u@h/db"}, "driver 'psycopg2'"),
        ({"HUB_DATA_DIR": "bad\x00path"}, "HUB_DATA_DIR is not a valid path"),
    ],
)
def test_invalid_settings_raise_config_error(environ, message):
    with pytest.raises(ConfigError, match=message):
        Settings.from_env(environ)


# ------------------------------------------------------------------ key loading


def embedded(tmp_path: Path, **environ: str) -> Settings:
    return Settings.from_env({"HUB_DATA_DIR": str(tmp_path / "var"), **environ})


def test_key_from_environment_wins_over_the_file(tmp_path):
    settings = embedded(tmp_path, HUB_DATA_KEY=KEY_B64)
    key = resolve_data_key(settings)
    assert (key.key, key.origin, key.generated) == (KEY, "env", False)
    assert KEY_B64 not in repr(key)
    assert "key=" not in repr(key)
    assert not settings.data_key_file.exists()


def test_key_is_generated_once_with_private_permissions(tmp_path, caplog):
    settings = embedded(tmp_path)
    with caplog.at_level(logging.WARNING, logger="hub.crypto"):
        first = resolve_data_key(settings)
    assert first.generated
    assert first.path == settings.data_key_file
    assert "generated a new data key" in caplog.text
    mode = stat.S_IMODE(settings.data_key_file.stat().st_mode)
    assert mode == 0o600
    assert stat.S_IMODE(settings.data_key_file.parent.stat().st_mode) & 0o077 == 0
    second = resolve_data_key(settings)
    assert (second.origin, second.key) == ("file", first.key)
    assert load_data_key(settings) == first.key
    assert [p.name for p in settings.data_key_file.parent.iterdir()] == ["hub.key"]


def test_key_file_is_read(tmp_path):
    path = tmp_path / "hub.key"
    path.write_text(KEY_B64 + "\n")
    path.chmod(0o600)
    settings = embedded(tmp_path, HUB_DATA_KEY_FILE=str(path))
    assert resolve_data_key(settings) == resolve_data_key(settings)
    assert load_data_key(settings) == KEY


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"!!!!\n", "not valid base64"),
        (base64.b64encode(bytes(20)) + b"\n", "32 bytes, not 20"),
        (b"\xff\xfe\x00", "not base64 text"),
    ],
)
def test_bad_key_file_raises_config_error(tmp_path, content, message):
    path = tmp_path / "hub.key"
    path.write_bytes(content)
    with pytest.raises(ConfigError, match=message):
        load_data_key(embedded(tmp_path, HUB_DATA_KEY_FILE=str(path)))


def test_readable_key_file_is_warned_about(tmp_path, caplog):
    path = tmp_path / "hub.key"
    path.write_text(KEY_B64)
    path.chmod(0o644)
    with caplog.at_level(logging.WARNING, logger="hub.crypto"):
        load_data_key(embedded(tmp_path, HUB_DATA_KEY_FILE=str(path)))
    assert "readable by other users" in caplog.text


def test_scaled_out_hub_never_generates_a_key(tmp_path):
    settings = Settings.from_env(
        {"HUB_DATA_DIR": str(tmp_path), "HUB_DATABASE_URL": "postgresql://u@h/db"}
    )
    with pytest.raises(ConfigError, match="set HUB_DATA_KEY"):
        load_data_key(settings)
    assert not settings.data_key_file.exists()


def test_unreadable_key_path_raises_config_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    settings = embedded(tmp_path, HUB_DATA_KEY_FILE=str(blocker / "hub.key"))
    with pytest.raises(ConfigError, match="cannot be read: Not a directory"):
        load_data_key(settings)


def test_unwritable_key_file_raises_config_error(tmp_path, monkeypatch):
    def refuse(*args):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("hub.crypto.os.link", refuse)
    settings = embedded(tmp_path)
    with pytest.raises(ConfigError, match="cannot write data key file .*Permission denied"):
        load_data_key(settings)
    assert list(settings.data_key_file.parent.iterdir()) == []  # no temporary file left


def test_key_written_by_another_process_first_is_used(tmp_path, monkeypatch):
    settings = embedded(tmp_path)
    real_link = os.link

    def lose_the_race(src, dst):
        Path(dst).write_text(KEY_B64)  # the other process's key lands first
        real_link(src, dst)

    monkeypatch.setattr("hub.crypto.os.link", lose_the_race)
    key = resolve_data_key(settings)
    assert (key.key, key.origin) == (KEY, "file")
