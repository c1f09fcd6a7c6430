"""The pure-Python RSA key reader and PKCS#1 v1.5 decryption, checked against cryptography."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa as crypto_rsa

from ssmex.rsa import EncryptedKeyError, KeyFormatError, NotRsaKeyError, load_rsa_private_key


@pytest.fixture(scope="module")
def key():
    return crypto_rsa.generate_private_key(public_exponent=65537, key_size=2048)


def encoded(key, encoding_format, password=None):
    encryption = serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
    encoding = serialization.Encoding.PEM
    return key.private_bytes(encoding, encoding_format, encryption)


FORMATS = {
    "pkcs1": serialization.PrivateFormat.TraditionalOpenSSL,
    "pkcs8": serialization.PrivateFormat.PKCS8,
    "openssh": serialization.PrivateFormat.OpenSSH,
}


@pytest.mark.parametrize("name", list(FORMATS))
def test_reads_each_unencrypted_format(key, name):
    loaded = load_rsa_private_key(encoded(key, FORMATS[name]))

    assert loaded.n == key.private_numbers().public_numbers.n
    assert loaded.d == key.private_numbers().d


@pytest.mark.parametrize("name", list(FORMATS))
def test_decrypts_what_ec2_encrypts(key, name):
    password = "Pa55w0rd-日本-%!".encode("utf-8")
    ciphertext = key.public_key().encrypt(password, padding.PKCS1v15())

    assert load_rsa_private_key(encoded(key, FORMATS[name])).decrypt_pkcs1v15(ciphertext) == password


def test_other_key_fails_padding_check(key):
    other = crypto_rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ciphertext = other.public_key().encrypt(b"secret", padding.PKCS1v15())

    with pytest.raises(ValueError, match="another key"):
        load_rsa_private_key(encoded(key, FORMATS["pkcs1"])).decrypt_pkcs1v15(ciphertext)


@pytest.mark.parametrize("name", ["pkcs1", "pkcs8"])
def test_encrypted_pem_keys_reported(key, name):
    with pytest.raises(EncryptedKeyError):
        load_rsa_private_key(encoded(key, FORMATS[name], password=b"correct horse"))


def ssh_string(value: bytes) -> bytes:
    return len(value).to_bytes(4, "big") + value


def test_encrypted_openssh_key_reported():
    # The layout ssh-keygen writes for a key with a passphrase; the encrypted part is opaque.
    blob = b"openssh-key-v1\x00" + ssh_string(b"aes256-ctr") + ssh_string(b"bcrypt") + ssh_string(b"\x00" * 24)
    blob += (1).to_bytes(4, "big") + ssh_string(b"public") + ssh_string(b"\x00" * 64)
    pem = b"-----BEGIN OPENSSH PRIVATE KEY-----\n" + base64.encodebytes(blob) + b"-----END OPENSSH PRIVATE KEY-----\n"

    with pytest.raises(EncryptedKeyError):
        load_rsa_private_key(pem)


@pytest.mark.parametrize("name", ["pkcs8", "openssh"])
def test_ed25519_named(name):
    other = ed25519.Ed25519PrivateKey.generate()

    with pytest.raises(NotRsaKeyError) as raised:
        load_rsa_private_key(encoded(other, FORMATS[name]))
    assert raised.value.key_type == "Ed25519"


@pytest.mark.parametrize(
    "data",
    [b"", b"not a key", b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
     b"-----BEGIN RSA PRIVATE KEY-----\n!!!!\n-----END RSA PRIVATE KEY-----\n",
     b"-----BEGIN RSA PRIVATE KEY-----\nMAMCAQA=\n-----END RSA PRIVATE KEY-----\n"],
)
def test_garbage_rejected(data):
    with pytest.raises(KeyFormatError):
        load_rsa_private_key(data)
