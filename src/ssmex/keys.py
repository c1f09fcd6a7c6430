"""Decrypting a Windows instance's Administrator password with its key pair's private key.

EC2 encrypts the password to the key pair's RSA public key with PKCS#1 v1.5 padding and
returns it base64-encoded from GetPasswordData. The private key may be PEM in PKCS#1
(`BEGIN RSA PRIVATE KEY`), PKCS#8 (`BEGIN PRIVATE KEY`, `BEGIN ENCRYPTED PRIVATE KEY`) or
OpenSSH (`BEGIN OPENSSH PRIVATE KEY`) form, encrypted or not.

Keys without a passphrase are read and the password decrypted in pure Python
(ssmex.rsa). Only passphrase-protected keys need the cryptography package, which the
single-file executable leaves out.
"""

from __future__ import annotations

import base64
import binascii
import logging
from typing import Callable, Optional

from ssmex import rsa
from ssmex.errors import ExitCode, SsmexError
from ssmex.redact import register_secret

log = logging.getLogger("ssmex.keys")

# Returns the passphrase for the named key file, or None when there is no terminal to prompt on.
PassphrasePrompt = Callable[[str], Optional[str]]


def _cryptography(path: str):
    try:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa as crypto_rsa
    except ImportError:
        raise SsmexError(
            f"The key file {path} is protected by a passphrase, and this build of ssmex reads only keys "
            "without one; use the onedir build or pip-installed ssmex, or remove the passphrase from a copy "
            "with `ssh-keygen -p -f COPY`.",
            ExitCode.CONFIGURATION,
        ) from None
    return serialization, crypto_rsa


def _not_rsa(path: str, kind: str) -> SsmexError:
    return SsmexError(
        f"The key file {path} contains a key of type {kind}, but Windows passwords are encrypted only to RSA key "
        "pairs; use the RSA key pair the instance was launched with.",
        ExitCode.USAGE,
    )


def _not_a_key(path: str, detail: object) -> SsmexError:
    return SsmexError(
        f"The key file {path} is not a PEM or OpenSSH private key ({detail}); pass the .pem file of the "
        "instance's key pair.",
        ExitCode.USAGE,
    )


def load_private_key(path: str, prompt: PassphrasePrompt | None = None) -> rsa.RsaPrivateKey:
    """Load an RSA private key from a PEM file, asking prompt for a passphrase when needed.

    Raises SsmexError for an unreadable file, an unsupported format, a wrong or missing
    passphrase, and any key that is not RSA (Windows passwords are encrypted to RSA keys).
    """
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as error:
        raise SsmexError(f"The key file {path} cannot be read: {error.strerror or error}; check --key-file.", ExitCode.USAGE) from None

    try:
        key = rsa.load_rsa_private_key(data)
        log.debug("loaded a %d-bit RSA private key from %s", key.key_size, path)
        return key
    except rsa.NotRsaKeyError as error:
        raise _not_rsa(path, error.key_type) from None
    except rsa.EncryptedKeyError:
        pass
    except rsa.KeyFormatError as error:
        raise _not_a_key(path, error) from None
    return _load_encrypted(path, data, prompt)


def _load_encrypted(path: str, data: bytes, prompt: PassphrasePrompt | None) -> rsa.RsaPrivateKey:
    """Load a passphrase-protected key with the cryptography package."""
    serialization, crypto_rsa = _cryptography(path)
    from cryptography.exceptions import UnsupportedAlgorithm

    text = prompt(path) if prompt is not None else None
    if text is None:
        raise SsmexError(
            f"The key file {path} is encrypted and no passphrase can be asked for because this is not a "
            "terminal; run ssmex in a terminal or use a key file without a passphrase.",
            ExitCode.USAGE,
        )
    register_secret(text)
    passphrase = text.encode("utf-8")
    try:
        if b"OPENSSH PRIVATE KEY" in data:
            key = serialization.load_ssh_private_key(data, password=passphrase)
        else:
            key = serialization.load_pem_private_key(data, password=passphrase)
    except UnsupportedAlgorithm as error:
        raise SsmexError(
            f"The key file {path} uses an algorithm this build cannot read ({error}); install the Python package "
            "bcrypt for encrypted OpenSSH keys, or convert the key with `ssh-keygen -p -m PEM -f KEYFILE`.",
            ExitCode.CONFIGURATION,
        ) from None
    except (ValueError, TypeError, binascii.Error):
        raise SsmexError(f"The passphrase for {path} is wrong; run again and type it carefully.", ExitCode.USAGE) from None

    if not isinstance(key, crypto_rsa.RSAPrivateKey):
        raise _not_rsa(path, type(key).__name__.replace("PrivateKey", "").lstrip("_") or "non-RSA")
    numbers = key.private_numbers()
    log.debug("loaded a %d-bit passphrase-protected RSA private key from %s", key.key_size, path)
    return rsa.RsaPrivateKey(n=numbers.public_numbers.n, e=numbers.public_numbers.e, d=numbers.d, p=numbers.p, q=numbers.q)


def decrypt_password(password_data: str, private_key: rsa.RsaPrivateKey, instance_id: str) -> str:
    """Decrypt GetPasswordData's PasswordData and register the password as a secret."""
    cleaned = "".join(password_data.split())
    if not cleaned:
        raise SsmexError(
            f"The Administrator password of {instance_id} is not available yet; try again in a few minutes "
            "(Windows creates it during the first boot).",
            ExitCode.AWS_ERROR,
        )
    try:
        encrypted = base64.b64decode(cleaned, validate=True)
        password = private_key.decrypt_pkcs1v15(encrypted).decode("utf-8")
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise SsmexError(
            f"The password data of {instance_id} could not be decrypted with this key; pass the key pair "
            "the instance was launched with (--key-file).",
            ExitCode.USAGE,
        ) from None
    register_secret(password)
    return password
