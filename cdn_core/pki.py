"""A local certificate authority for demos and tests: a CA and a server certificate it
signs, written as PEM files, so that ``curl --cacert ca.pem https://...`` verifies."""

from __future__ import annotations

import datetime
import ipaddress
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def _write(path: Path, data: bytes, private: bool = False) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(data)
    if private:
        tmp.chmod(0o600)
    tmp.replace(path)


def ensure_demo_pki(directory: str | Path, hostnames: list[str], *,
                    days: int = 365) -> dict[str, Path]:
    """Create (once) ``ca.pem``, ``ca-key.pem``, ``server.pem`` and ``server-key.pem``
    in ``directory``: an ECDSA P-256 CA and a server certificate for ``hostnames``
    (subjectAltName DNS names; ``127.*`` entries become IP addresses). Existing files are
    kept. Returns the paths by name (``ca``, ``cert``, ``key``)."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    paths = {"ca": d / "ca.pem", "ca_key": d / "ca-key.pem", "cert": d / "server.pem",
             "key": d / "server-key.pem"}
    if all(p.exists() for p in paths.values()):
        return paths
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "tiered-cdn local CA")])
    ca = (
        x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
        .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False,
                                     False), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    alt: list[x509.GeneralName] = []
    for h in hostnames:
        try:
            alt.append(x509.IPAddress(ipaddress.ip_address(h)))
        except ValueError:
            alt.append(x509.DNSName(h))
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostnames[0])]))
        .issuer_name(ca_name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]),
                       critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    nokey = serialization.NoEncryption()
    pkcs8 = serialization.PrivateFormat.PKCS8
    _write(paths["ca_key"], ca_key.private_bytes(pem, pkcs8, nokey), private=True)
    _write(paths["key"], key.private_bytes(pem, pkcs8, nokey), private=True)
    _write(paths["cert"], cert.public_bytes(pem) + ca.public_bytes(pem))
    _write(paths["ca"], ca.public_bytes(pem))
    return paths
