"""RSA private keys without a passphrase, and PKCS#1 v1.5 decryption, in pure Python.

EC2 encrypts a Windows instance's Administrator password to the key pair's RSA public
key with PKCS#1 v1.5 padding. Reading the private key and decrypting need only integer
arithmetic, so ssmex does both here and the single-file executable does not carry the
cryptography package (about 4.5 MB). Keys with a passphrase need a cipher and a key
derivation function, which this module leaves to cryptography.

Supported: PEM in PKCS#1 (`BEGIN RSA PRIVATE KEY`) and unencrypted PKCS#8
(`BEGIN PRIVATE KEY`) form, and unencrypted OpenSSH keys (`BEGIN OPENSSH PRIVATE KEY`).
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass

_PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----(.*?)-----END \1-----", re.DOTALL)

# DER encodings of the algorithm identifiers a PKCS#8 key may carry.
_RSA_OID = bytes.fromhex("2a864886f70d010101")
_KEY_TYPES_BY_OID = {
    bytes.fromhex("2b6570"): "Ed25519",
    bytes.fromhex("2b6571"): "Ed448",
    bytes.fromhex("2a8648ce3d0201"): "EC",
    bytes.fromhex("2a8648ce380401"): "DSA",
}
_OPENSSH_MAGIC = b"openssh-key-v1\x00"


class KeyFormatError(ValueError):
    """The data is not a private key this module can read; the message gives the reason."""


class EncryptedKeyError(KeyFormatError):
    """The key is protected by a passphrase."""


class NotRsaKeyError(KeyFormatError):
    """The key is valid but not RSA; key_type names what it is."""

    def __init__(self, key_type: str) -> None:
        super().__init__(f"the key is {key_type}, not RSA")
        self.key_type = key_type


@dataclass(frozen=True)
class RsaPrivateKey:
    """The numbers of an RSA private key; p and q let decryption use the CRT."""

    n: int
    e: int
    d: int
    p: int
    q: int

    @property
    def key_size(self) -> int:
        return self.n.bit_length()

    def decrypt_pkcs1v15(self, ciphertext: bytes) -> bytes:
        """Decrypt RSAES-PKCS1-v1_5 ciphertext (RFC 8017, section 7.2.2).

        Raises ValueError when the ciphertext does not fit the key or the padding is wrong,
        which is what a different key pair produces.
        """
        size = (self.n.bit_length() + 7) // 8
        if len(ciphertext) != size:
            raise ValueError(f"the ciphertext is {len(ciphertext)} bytes, but this key needs {size}")
        c = int.from_bytes(ciphertext, "big")
        if c >= self.n:
            raise ValueError("the ciphertext is out of range for this key, so the data was encrypted to another key")

        # Chinese remainder theorem: two half-size exponentiations instead of one.
        m1 = pow(c, self.d % (self.p - 1), self.p)
        m2 = pow(c, self.d % (self.q - 1), self.q)
        h = (pow(self.q, -1, self.p) * (m1 - m2)) % self.p
        message = (m2 + h * self.q).to_bytes(size, "big")

        separator = message.find(b"\x00", 2)
        if message[:2] != b"\x00\x02" or separator < 10:
            raise ValueError("the padding is invalid, so the data was encrypted to another key")
        return message[separator + 1:]


def _read_der(data: bytes, offset: int) -> tuple[int, bytes, int]:
    """Read one DER element at offset; return its tag, its content and the next offset."""
    if offset + 2 > len(data):
        raise KeyFormatError("the DER data is truncated")
    tag = data[offset]
    length = data[offset + 1]
    offset += 2
    if length & 0x80:
        count = length & 0x7F
        if count == 0 or count > 4 or offset + count > len(data):
            raise KeyFormatError("the DER length is invalid")
        length = int.from_bytes(data[offset:offset + count], "big")
        offset += count
    if offset + length > len(data):
        raise KeyFormatError("the DER data is truncated")
    return tag, data[offset:offset + length], offset + length


def _der_sequence(data: bytes) -> list[tuple[int, bytes]]:
    tag, content, _ = _read_der(data, 0)
    if tag != 0x30:
        raise KeyFormatError("the DER data is not a SEQUENCE")
    elements = []
    offset = 0
    while offset < len(content):
        element_tag, element, offset = _read_der(content, offset)
        elements.append((element_tag, element))
    return elements


def _der_integers(elements: list[tuple[int, bytes]]) -> list[int]:
    if any(tag != 0x02 for tag, _ in elements):
        raise KeyFormatError("an RSA key field is not an INTEGER")
    return [int.from_bytes(value, "big", signed=True) for _, value in elements]


def _from_pkcs1(der: bytes) -> RsaPrivateKey:
    numbers = _der_integers(_der_sequence(der))
    if len(numbers) < 9 or numbers[0] != 0:
        raise KeyFormatError("the PKCS#1 RSA key has an unexpected layout")
    _, n, e, d, p, q = numbers[:6]
    return _checked(RsaPrivateKey(n=n, e=e, d=d, p=p, q=q))


def _from_pkcs8(der: bytes) -> RsaPrivateKey:
    elements = _der_sequence(der)
    if len(elements) < 3 or elements[1][0] != 0x30 or elements[2][0] != 0x04:
        raise KeyFormatError("the PKCS#8 key has an unexpected layout")
    algorithm = _der_sequence(bytes([0x30]) + _der_length(elements[1][1]) + elements[1][1])
    oid = algorithm[0][1] if algorithm and algorithm[0][0] == 0x06 else b""
    if oid != _RSA_OID:
        raise NotRsaKeyError(_KEY_TYPES_BY_OID.get(oid, "not RSA"))
    return _from_pkcs1(elements[2][1])


def _der_length(content: bytes) -> bytes:
    length = len(content)
    if length < 0x80:
        return bytes([length])
    encoded = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(encoded)]) + encoded


class _SshReader:
    """Reads the string and uint32 fields of the OpenSSH key format (RFC 4251, section 5)."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.offset = 0

    def uint32(self) -> int:
        if self.offset + 4 > len(self.data):
            raise KeyFormatError("the OpenSSH key is truncated")
        value = int.from_bytes(self.data[self.offset:self.offset + 4], "big")
        self.offset += 4
        return value

    def string(self) -> bytes:
        length = self.uint32()
        if self.offset + length > len(self.data):
            raise KeyFormatError("the OpenSSH key is truncated")
        value = self.data[self.offset:self.offset + length]
        self.offset += length
        return value

    def mpint(self) -> int:
        return int.from_bytes(self.string(), "big", signed=True)


def _from_openssh(blob: bytes) -> RsaPrivateKey:
    if not blob.startswith(_OPENSSH_MAGIC):
        raise KeyFormatError("the OpenSSH key has no openssh-key-v1 header")
    reader = _SshReader(blob[len(_OPENSSH_MAGIC):])
    cipher = reader.string()
    reader.string()  # the key derivation function's name
    reader.string()  # its options
    if cipher != b"none":
        raise EncryptedKeyError("the OpenSSH key is encrypted")
    if reader.uint32() != 1:
        raise KeyFormatError("the OpenSSH file contains more than one key")
    reader.string()  # the public key
    private = _SshReader(reader.string())
    if private.uint32() != private.uint32():
        raise KeyFormatError("the OpenSSH key's check numbers differ")
    key_type = private.string().decode("ascii", "replace")
    if key_type != "ssh-rsa":
        names = {"ssh-ed25519": "Ed25519", "ssh-dss": "DSA"}
        raise NotRsaKeyError(names.get(key_type, "EC" if key_type.startswith("ecdsa") else key_type))
    n, e, d = private.mpint(), private.mpint(), private.mpint()
    private.mpint()  # iqmp, recomputed when decrypting
    p, q = private.mpint(), private.mpint()
    return _checked(RsaPrivateKey(n=n, e=e, d=d, p=p, q=q))


def _checked(key: RsaPrivateKey) -> RsaPrivateKey:
    if key.p * key.q != key.n or key.n.bit_length() < 512:
        raise KeyFormatError("the RSA key's numbers are inconsistent")
    return key


def load_rsa_private_key(data: bytes) -> RsaPrivateKey:
    """Read an RSA private key without a passphrase from PEM text.

    Raises EncryptedKeyError for a passphrase-protected key, NotRsaKeyError for another
    key type, and KeyFormatError for anything else it cannot read.
    """
    match = _PEM_BLOCK.search(data)
    if match is None:
        raise KeyFormatError("no PEM block (-----BEGIN ... PRIVATE KEY-----) was found")
    label = match.group(1).decode("ascii")
    body = match.group(2)
    if b"Proc-Type: 4,ENCRYPTED" in body or label == "ENCRYPTED PRIVATE KEY":
        raise EncryptedKeyError("the PEM key is encrypted")
    lines = [line for line in body.split(b"\n") if line.strip() and b":" not in line]
    try:
        der = base64.b64decode(b"".join(line.strip() for line in lines), validate=True)
    except binascii.Error:
        raise KeyFormatError("the PEM block is not valid base64") from None
    if label == "RSA PRIVATE KEY":
        return _from_pkcs1(der)
    if label == "PRIVATE KEY":
        return _from_pkcs8(der)
    if label == "OPENSSH PRIVATE KEY":
        return _from_openssh(der)
    if label in ("EC PRIVATE KEY", "DSA PRIVATE KEY"):
        raise NotRsaKeyError(label.split()[0])
    raise KeyFormatError(f"a PEM block labelled {label} is not a private key")
