"""An SMTP server double (RFC 5321 subset, asyncio) that records the mails it takes, and the TLS
certificates the mail tests use.

It speaks EHLO/HELO, STARTTLS (when given a certificate), AUTH PLAIN and LOGIN (when given users;
offered only over TLS), MAIL, RCPT, DATA (with dot-unstuffing), RSET, NOOP and QUIT, or TLS from the
first byte (``implicit_tls``). ``rcpt_reply`` and ``data_script`` make it refuse. ``logins`` records
every (user, password) a client sent and whether it came over TLS, so a test can tell that a
password never crossed in clear or to an unverified server.
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import email
import email.policy
import ipaddress
import ssl
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.alerts.recorder import free_port


@dataclass
class Mail:
    mail_from: str
    rcpt_to: list[str]
    data: bytes
    tls: bool
    user: str | None

    def message(self) -> EmailMessage:
        parsed = email.message_from_bytes(self.data, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed


@dataclass
class SmtpDouble:
    port: int = field(default_factory=free_port)
    tls: ssl.SSLContext | None = None
    """Server side TLS: offered as STARTTLS, or used from the first byte with ``implicit_tls``."""
    implicit_tls: bool = False
    users: dict[str, str] = field(default_factory=dict)
    """Accepted logins; with none, AUTH is not offered."""
    rcpt_reply: str | None = None
    """e.g. "550 5.1.1 no such user": every RCPT is refused with it."""
    data_script: list[str] = field(default_factory=list)
    """Replies to DATA, in turn (e.g. "451 4.3.0 try again later"); then 250."""
    received: list[Mail] = field(default_factory=list)
    logins: list[tuple[str, str, bool]] = field(default_factory=list)
    """(user, password, over TLS) of every AUTH attempt."""
    connections: int = 0
    _server: asyncio.Server | None = None

    async def start(self) -> None:
        if self._server is None:
            ssl_ctx = self.tls if self.implicit_tls else None
            self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port, ssl=ssl_ctx)

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
            await server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        secure = self.implicit_tls
        user: str | None = None
        mail_from: str | None = None
        rcpts: list[str] = []

        async def reply(line: str) -> None:
            writer.write(line.encode() + b"\r\n")
            await writer.drain()

        async def read() -> str:
            raw = await reader.readline()
            if not raw:
                raise ConnectionError("client went away")
            return raw.decode("utf-8", "replace").rstrip("\r\n")

        try:
            await reply("220 double.test ESMTP")
            while True:
                line = await read()
                verb, _, arg = line.partition(" ")
                verb = verb.upper()
                if verb in ("EHLO", "HELO"):
                    if verb == "HELO":
                        await reply("250 double.test")
                        continue
                    caps = ["double.test"]
                    if self.tls is not None and not secure:
                        caps.append("STARTTLS")
                    if self.users and secure:
                        caps.append("AUTH PLAIN LOGIN")
                    caps.append("8BITMIME")
                    for cap in caps[:-1]:
                        await reply(f"250-{cap}")
                    await reply(f"250 {caps[-1]}")
                elif verb == "STARTTLS" and self.tls is not None and not secure:
                    await reply("220 2.0.0 ready to start TLS")
                    await writer.start_tls(self.tls)
                    secure, user, mail_from, rcpts = True, None, None, []
                elif verb == "AUTH" and self.users and secure:
                    mechanism, _, initial = arg.partition(" ")
                    if mechanism.upper() == "PLAIN":
                        if not initial:
                            await reply("334 ")
                            initial = await read()
                        _, name, password = base64.b64decode(initial).decode().split("\0", 2)
                    elif mechanism.upper() == "LOGIN":
                        await reply("334 VXNlcm5hbWU6")
                        name = base64.b64decode(await read()).decode()
                        await reply("334 UGFzc3dvcmQ6")
                        password = base64.b64decode(await read()).decode()
                    else:
                        await reply("504 5.5.4 mechanism not supported")
                        continue
                    self.logins.append((name, password, secure))
                    if self.users.get(name) == password:
                        user = name
                        await reply("235 2.7.0 authenticated")
                    else:
                        await reply("535 5.7.8 authentication credentials invalid")
                elif verb == "MAIL" and arg.upper().startswith("FROM:"):
                    if self.users and user is None:
                        await reply("530 5.7.0 authentication required")
                        continue
                    mail_from, rcpts = _path(arg[5:]), []
                    await reply("250 2.1.0 ok")
                elif verb == "RCPT" and arg.upper().startswith("TO:"):
                    if mail_from is None:
                        await reply("503 5.5.1 MAIL first")
                    elif self.rcpt_reply is not None:
                        await reply(self.rcpt_reply)
                    else:
                        rcpts.append(_path(arg[3:]))
                        await reply("250 2.1.5 ok")
                elif verb == "DATA":
                    if mail_from is None or not rcpts:
                        await reply("503 5.5.1 RCPT first")
                        continue
                    await reply("354 end with <CRLF>.<CRLF>")
                    lines: list[bytes] = []
                    while True:
                        raw = await reader.readline()
                        if not raw:
                            raise ConnectionError("client went away in DATA")
                        if raw in (b".\r\n", b".\n"):
                            break
                        lines.append(raw[1:] if raw.startswith(b"..") else raw)
                    answer = self.data_script.pop(0) if self.data_script else "250 2.0.0 queued"
                    if answer.startswith("250"):
                        self.received.append(Mail(mail_from, rcpts, b"".join(lines), secure, user))
                    mail_from, rcpts = None, []
                    await reply(answer)
                elif verb == "RSET":
                    mail_from, rcpts = None, []
                    await reply("250 2.0.0 ok")
                elif verb == "NOOP":
                    await reply("250 2.0.0 ok")
                elif verb == "QUIT":
                    await reply("221 2.0.0 bye")
                    break
                else:
                    await reply("502 5.5.2 command not recognized")
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            pass
        finally:
            writer.close()


def _path(arg: str) -> str:
    """The address of ``<addr> [params]``."""
    arg = arg.strip()
    return arg[1 : arg.index(">")] if arg.startswith("<") else arg.split(" ", 1)[0]


@dataclass
class Certificates:
    """A CA and a certificate it signed for 127.0.0.1 and localhost: ``server`` context, ``ca_file``."""

    ca_file: Path
    server: ssl.SSLContext


def make_certificates(directory: Path, name: str = "double") -> Certificates:
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{name} test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    ca_file = directory / f"{name}-ca.pem"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_file = directory / f"{name}-cert.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file = directory / f"{name}-key.pem"
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert_file, key_file)
    return Certificates(ca_file=ca_file, server=server)
