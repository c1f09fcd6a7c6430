"""KMS encryption of a session's payloads: data key, challenge and AES-GCM.

When the agent's handshake requests KMSEncryption, the client calls KMS
GenerateDataKey for a 64-byte data key with the encryption context
aws:ssm:SessionId and aws:ssm:TargetId. It sends the encrypted key back in its
HandshakeResponse, then decrypts the agent's encryption challenge and returns
it encrypted with its own half of the key. From then on
Output, StdErr and ExitCode payloads are AES-256-GCM ciphertexts with a
12-byte random nonce in front.

The key split (the agent encrypts with the first half and the client with
the second), the encryption context, the nonce-first layout and the
ActionResult fields were checked against the source of session-manager-plugin
1.2.677.0. No real agent was available to run against, and the emulator's
agent side is written from the same facts.
"""

from __future__ import annotations

import base64
import os

from ssmex.errors import ExitCode, SsmexError

NONCE_SIZE = 12
DATA_KEY_BYTES = 64


class EncryptionError(ValueError):
    """A payload or challenge that fails to decrypt."""


def _aes_gcm(key: bytes):
    """Return cryptography's AES-GCM for key; imported here because the single-file
    executable leaves the cryptography package out."""
    try:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM as cipher
    except ImportError:
        raise SsmexError(
            "This session is KMS-encrypted, and this build of ssmex does not include the cryptography "
            "package that it needs; use the onedir build, pip-installed ssmex or --client plugin.",
            ExitCode.ERROR,
        ) from None
    return cipher(key)


def require_aes_gcm() -> None:
    """Raise SsmexError when AES-GCM is unavailable, so a session fails before it requests a KMS data key."""
    _aes_gcm(bytes(32))


def _seal(key: bytes, plaintext: bytes) -> bytes:
    nonce = os.urandom(NONCE_SIZE)
    return nonce + _aes_gcm(key).encrypt(nonce, plaintext, None)


def _open(key: bytes, ciphertext: bytes) -> bytes:
    if len(ciphertext) < NONCE_SIZE + 16:
        raise EncryptionError(f"encrypted payload of {len(ciphertext)} bytes is too short")
    try:
        return _aes_gcm(key).decrypt(ciphertext[:NONCE_SIZE], ciphertext[NONCE_SIZE:], None)
    except Exception as error:  # cryptography raises InvalidTag with no message
        raise EncryptionError(f"payload failed AES-GCM authentication ({type(error).__name__})") from None


class PayloadCipher:
    """AES-GCM with one key for each direction, split from one 64-byte data key."""

    def __init__(self, data_key: bytes, *, client_side: bool):
        if len(data_key) != DATA_KEY_BYTES:
            raise EncryptionError(f"data key must be {DATA_KEY_BYTES} bytes, got {len(data_key)}")
        first, second = data_key[:32], data_key[32:]
        # The client decrypts with the first half; the agent encrypts with it.
        self.decryption_key, self.encryption_key = (first, second) if client_side else (second, first)

    def encrypt(self, plaintext: bytes) -> bytes:
        return _seal(self.encryption_key, plaintext)

    def decrypt(self, ciphertext: bytes) -> bytes:
        return _open(self.decryption_key, ciphertext)


def encryption_context(session_id: str, target_id: str) -> dict:
    return {"aws:ssm:SessionId": session_id, "aws:ssm:TargetId": target_id}


def generate_data_key(kms_client, key_id: str, session_id: str, target_id: str) -> tuple[bytes, bytes]:
    """Call KMS GenerateDataKey and return (CiphertextBlob, Plaintext)."""
    response = kms_client.generate_data_key(
        KeyId=key_id,
        NumberOfBytes=DATA_KEY_BYTES,
        EncryptionContext=encryption_context(session_id, target_id),
    )
    return response["CiphertextBlob"], response["Plaintext"]


def kms_action_result(ciphertext_key: bytes) -> dict:
    """Build the ActionResult of a KMSEncryption action (Go encodes []byte as base64).

    The plugin leaves KMSCipherTextHash unset, which Go sends as null, so this does too.
    """
    return {"KMSCipherTextKey": base64.b64encode(ciphertext_key).decode(), "KMSCipherTextHash": None}
