"""The local cluster's PKI, made with the openssl CLI: one CA, the apiserver's serving cert, client
certs per identity, and the service-account signing key.

EC P-256 keys (fast to make); every cert carries subject and authority key identifiers, since
Python >= 3.13 rejects certificates without an AKI.
"""

from __future__ import annotations

import secrets
import subprocess
from dataclasses import dataclass
from pathlib import Path

from flashsale_dev.paths import require_binary

CA_NAME = "flashsale-local-ca"
DAYS = "3650"


@dataclass(frozen=True)
class KeyPair:
    cert: Path
    key: Path


class ClusterPKI:
    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.ca = KeyPair(self.dir / "ca.crt", self.dir / "ca.key")
        self.service_account_key = self.dir / "sa.key"
        self.service_account_pub = self.dir / "sa.pub"

    def create_authority(self) -> None:
        """The CA and the service-account key pair (once per cluster)."""
        _openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", self.ca.key)
        _openssl(
            "req", "-x509", "-new", "-key", self.ca.key, "-out", self.ca.cert, "-days", DAYS,
            "-subj", f"/CN={CA_NAME}",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign,digitalSignature",
            "-addext", "subjectKeyIdentifier=hash",
        )  # fmt: skip
        _openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", self.service_account_key)
        _openssl("ec", "-in", self.service_account_key, "-pubout", "-out", self.service_account_pub)

    def serving_cert(self, name: str, dns: list[str], ips: list[str]) -> KeyPair:
        sans = ",".join([*(f"DNS:{d}" for d in dns), *(f"IP:{ip}" for ip in ips)])
        return self._issue(name, f"/CN={name}", "serverAuth", f"subjectAltName={sans}")

    def client_cert(self, user: str, groups: tuple[str, ...] = ()) -> KeyPair:
        """A client certificate: the apiserver reads CN as the user name and each O as a group."""
        subject = f"/CN={user}" + "".join(f"/O={g}" for g in groups)
        file_name = user.replace(":", "-")
        return self._issue(file_name, subject, "clientAuth")

    def _issue(self, name: str, subject: str, usage: str, extra: str = "") -> KeyPair:
        pair = KeyPair(self.dir / f"{name}.crt", self.dir / f"{name}.key")
        csr = self.dir / f"{name}.csr"
        extensions = self.dir / f"{name}.ext"
        extensions.write_text(
            "basicConstraints=critical,CA:FALSE\n"
            "keyUsage=critical,digitalSignature,keyEncipherment\n"
            f"extendedKeyUsage={usage}\n"
            "subjectKeyIdentifier=hash\n"
            "authorityKeyIdentifier=keyid,issuer\n" + (f"{extra}\n" if extra else "")
        )
        _openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", pair.key)
        _openssl("req", "-new", "-key", pair.key, "-out", csr, "-subj", subject)
        _openssl(
            "x509", "-req", "-in", csr, "-CA", self.ca.cert, "-CAkey", self.ca.key, "-set_serial",
            str(secrets.randbits(63)), "-days", DAYS, "-out", pair.cert,
            "-extfile", extensions,
        )  # fmt: skip
        csr.unlink()
        extensions.unlink()
        return pair


def _openssl(*args: str | Path) -> None:
    argv = [str(require_binary("/usr/bin/openssl", "apt-get install openssl")), *map(str, args)]
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"openssl {args[0]} failed: {done.stderr.strip()}")
