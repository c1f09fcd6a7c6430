"""Without the cryptography package, as in the single-file executable, KMS sessions fail
with one sentence and keys without a passphrase still work."""

from __future__ import annotations

import subprocess
import sys

CHECK = r"""
import sys
# A None entry makes every import of the package fail, as when it is not installed.
for name in ("cryptography", "cryptography.hazmat", "cryptography.hazmat.primitives",
             "cryptography.hazmat.primitives.ciphers", "cryptography.hazmat.primitives.ciphers.aead"):
    sys.modules[name] = None
from ssmex.errors import SsmexError
from ssmex.datachannel import encryption
import ssmex.datachannel, ssmex.rsa
cipher = encryption.PayloadCipher(bytes(64), client_side=True)
try:
    cipher.encrypt(b"x")
except SsmexError as error:
    print("MESSAGE:", error)
"""


def test_kms_without_cryptography_is_one_sentence():
    completed = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, timeout=60)

    assert completed.returncode == 0, completed.stderr
    assert "MESSAGE: This session is KMS-encrypted" in completed.stdout
    assert "cryptography" in completed.stdout
