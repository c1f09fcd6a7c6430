"""Loading key pairs in every PEM form and decrypting EC2 password data with them."""

from __future__ import annotations

import pytest

from everyday_support import PASSPHRASE, WINDOWS_PASSWORD, public_pem, write_ed25519_key, write_key
from ssmex.emulator.ec2 import encrypt_password
from ssmex.errors import SsmexError
from ssmex.keys import decrypt_password, load_private_key
from ssmex.redact import redact

INSTANCE = "i-0a1b2c3d4e5f60718"


@pytest.mark.parametrize("form", ["pkcs1", "pkcs8", "openssh"])
def test_plain_key_forms_decrypt(tmp_path, form):
    path = write_key(tmp_path / f"{form}.pem", form)
    data = encrypt_password(WINDOWS_PASSWORD, public_pem())

    key = load_private_key(str(path))

    assert decrypt_password(data, key, INSTANCE) == WINDOWS_PASSWORD


@pytest.mark.parametrize("form", ["pkcs1", "pkcs8", "openssh"])
def test_encrypted_key_forms_ask_prompt(tmp_path, form):
    path = write_key(tmp_path / f"{form}.pem", form, passphrase=PASSPHRASE)
    asked = []

    key = load_private_key(str(path), lambda name: asked.append(name) or PASSPHRASE)

    assert asked == [str(path)]
    assert decrypt_password(encrypt_password(WINDOWS_PASSWORD, public_pem()), key, INSTANCE) == WINDOWS_PASSWORD
    assert PASSPHRASE not in redact(f"passphrase was {PASSPHRASE}")


def test_unencrypted_key_never_prompts(tmp_path):
    path = write_key(tmp_path / "plain.pem", "pkcs1")

    load_private_key(str(path), lambda name: pytest.fail("prompted for an unencrypted key"))


@pytest.mark.parametrize("form", ["pkcs1", "openssh"])
def test_wrong_passphrase_one_sentence(tmp_path, form):
    path = write_key(tmp_path / "key.pem", form, passphrase=PASSPHRASE)

    with pytest.raises(SsmexError) as raised:
        load_private_key(str(path), lambda name: "not the passphrase")

    assert "passphrase" in raised.value.message
    assert "wrong" in raised.value.message


def test_encrypted_key_without_prompt(tmp_path):
    path = write_key(tmp_path / "key.pem", "pkcs8", passphrase=PASSPHRASE)

    with pytest.raises(SsmexError) as raised:
        load_private_key(str(path), None)

    assert "not a terminal" in raised.value.message


def test_ed25519_key_rejected(tmp_path):
    path = write_ed25519_key(tmp_path / "ed.pem")

    with pytest.raises(SsmexError) as raised:
        load_private_key(str(path))

    assert "Ed25519" in raised.value.message
    assert "RSA key pair" in raised.value.message


@pytest.mark.parametrize("content", [b"", b"not a key", b"-----BEGIN PRIVATE KEY-----\nabc\n-----END PRIVATE KEY-----\n"])
def test_garbage_key_file_rejected(tmp_path, content):
    path = tmp_path / "garbage.pem"
    path.write_bytes(content)

    with pytest.raises(SsmexError) as raised:
        load_private_key(str(path))

    assert "is not a PEM or OpenSSH private key" in raised.value.message


def test_missing_key_file(tmp_path):
    with pytest.raises(SsmexError) as raised:
        load_private_key(str(tmp_path / "absent.pem"))

    assert "cannot be read" in raised.value.message


def test_empty_password_data_not_available_yet(tmp_path):
    key = load_private_key(str(write_key(tmp_path / "k.pem", "pkcs1")))

    with pytest.raises(SsmexError) as raised:
        decrypt_password("  \n", key, INSTANCE)

    assert "not available yet" in raised.value.message


def test_decrypted_password_is_redacted(tmp_path):
    key = load_private_key(str(write_key(tmp_path / "k.pem", "pkcs1")))
    password = decrypt_password(encrypt_password("Unique-Secret-4711", public_pem()), key, INSTANCE)

    assert redact(f"the password is {password}") == "the password is <redacted>"
