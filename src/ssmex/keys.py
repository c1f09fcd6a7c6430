"""Decrypting a Windows instance's Administrator password with its key pair's private key.

EC2 encrypts the password to the key pair's RSA public key with PKCS#1 v1.5 padding and
returns it base64-encoded from GetPasswordData. The private key may be PEM in PKCS#1
(`BEGIN RSA PRIVATE KEY`), PKCS#8 (`BEGIN PRIVATE KEY`, `BEGIN ENCRYPTED PRIVATE KEY`) or
OpenSSH (`BEGIN OPENSSH PRIVATE KEY`) form, encrypted or not.
"""

from __future__ import annotations

import base64
import binascii
import logging
from typing import Callable, Optional

from ssmex.errors import ExitCode, SsmexError
from ssmex.redact import register_secret

log = logging.getLogger("ssmex.keys")

# Returns the passphrase for the named key file, or None when there is no terminal to prompt on.
PassphrasePrompt = Callable[[str], Optional[str]]


def _cryptography():
    try:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import padding, rsa
    except ImportError:
        raise SsmexError(
            "Decrypting Windows passwords needs the Python package cryptography; install it with "
            "`pip install cryptography` or use an ssmex build that includes it.",
            ExitCode.CONFIGURATION,
        ) from None
    return serialization, padding, rsa


def _load(data: bytes, passphrase: bytes | None):
    serialization, _, _ = _cryptography()
    if b"OPENSSH PRIVATE KEY" in data:
        return serialization.load_ssh_private_key(data, password=passphrase)
    return serialization.load_pem_private_key(data, password=passphrase)


def load_private_key(path: str, prompt: PassphrasePrompt | None = None):
    """Load an RSA private key from a PEM file, asking prompt for a passphrase when needed.

    Raises SsmexError for an unreadable file, an unsupported format, a wrong or missing
    passphrase, and any key that is not RSA (Windows passwords are encrypted to RSA keys).
    """
    from cryptography.exceptions import UnsupportedAlgorithm

    _, _, rsa = _cryptography()
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as error:
        raise SsmexError(f"The key file {path} cannot be read: {error.strerror or error}; check --key-file.", ExitCode.USAGE) from None

    passphrase: bytes | None = None
    try:
        try:
            key = _load(data, None)
        except TypeError:
            # cryptography raises TypeError when the key is encrypted and no passphrase was given.
            text = prompt(path) if prompt is not None else None
            if text is None:
                raise SsmexError(
                    f"The key file {path} is encrypted and no passphrase can be asked for because this is not a "
                    "terminal; run ssmex in a terminal or use a key file without a passphrase.",
                    ExitCode.USAGE,
                ) from None
            register_secret(text)
            passphrase = text.encode("utf-8")
            key = _load(data, passphrase)
    except UnsupportedAlgorithm as error:
        raise SsmexError(
            f"The key file {path} uses an algorithm this build cannot read ({error}); install the Python package "
            "bcrypt for encrypted OpenSSH keys, or convert the key with `ssh-keygen -p -m PEM -f KEYFILE`.",
            ExitCode.CONFIGURATION,
        ) from None
    except (ValueError, TypeError, binascii.Error) as error:
        if passphrase is not None:
            raise SsmexError(f"The passphrase for {path} is wrong; run again and type it carefully.", ExitCode.USAGE) from None
        raise SsmexError(
            f"The key file {path} is not a PEM or OpenSSH private key ({error}); pass the .pem file of the "
            "instance's key pair.",
            ExitCode.USAGE,
        ) from None

    if not isinstance(key, rsa.RSAPrivateKey):
        kind = type(key).__name__.replace("PrivateKey", "").lstrip("_") or "non-RSA"
        raise SsmexError(
            f"The key file {path} holds a key of type {kind}, but Windows passwords are encrypted only to RSA key pairs; "
            "use the RSA key pair the instance was launched with.",
            ExitCode.USAGE,
        )
    log.debug("loaded a %d-bit RSA private key from %s", key.key_size, path)
    return key


def decrypt_password(password_data: str, private_key, instance_id: str) -> str:
    """Decrypt GetPasswordData's PasswordData and register the password as a secret."""
    _, padding, _ = _cryptography()
    cleaned = "".join(password_data.split())
    if not cleaned:
        raise SsmexError(
            f"The Administrator password of {instance_id} is not available yet; try again in a few minutes "
            "(Windows creates it during the first boot).",
            ExitCode.AWS_ERROR,
        )
    try:
        encrypted = base64.b64decode(cleaned, validate=True)
        password = private_key.decrypt(encrypted, padding.PKCS1v15()).decode("utf-8")
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise SsmexError(
            f"The password data of {instance_id} could not be decrypted with this key; pass the key pair "
            "the instance was launched with (--key-file).",
            ExitCode.USAGE,
        ) from None
    register_secret(password)
    return password
