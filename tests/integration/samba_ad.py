"""A real Samba AD DC for tests: provisioned once per session, started in the foreground, stopped at the end.

The recipe is the one in shared/reference/ise-pxgrid-ers-ad.md §4.3. It needs root, the Debian samba packages,
and free LDAP ports (389, 636, 3268, 3269) on a loopback address; otherwise the fixture skips and says why.
Samba cannot move those ports, so each test process claims its own loopback address (127.0.0.1, else 127.0.0.N,
added to ``lo`` while the DC runs) under a lock file in /tmp and after a bind test: parallel runs do not clash.
Directory content is added over LDAPS as Administrator (fast bulk adds; samba-tool per object is far too slow).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import shutil
import socket
import ssl
import subprocess
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import ldap3
import pytest
from ldap3 import MODIFY_ADD

REALM = "CORP.LOCAL"
DOMAIN = "CORP"
BASE_DN = "DC=corp,DC=local"
ADMIN_PASSWORD = "Passw0rd!2024"
PORTS = (389, 636, 3268, 3269)
LOCK_DIR = Path("/tmp/clarion-samba-hosts")


def _ports_free(host: str) -> bool:
    """Bind-test every DC port on ``host`` (root binds privileged ports; a wildcard listener also fails it)."""
    for port in PORTS:
        with socket.socket() as sock:
            try:
                sock.bind((host, port))
            except OSError as exc:
                return exc.errno == errno.EACCES  # not root: the fixture skips anyway, any address will do
    return True


def _claim_host() -> tuple[str, object | None]:
    """The first loopback address whose lock this process gets and whose DC ports are free; the lock lives
    as long as the process (the open file holds it), so another test run picks the next address."""
    try:
        LOCK_DIR.mkdir(mode=0o777, exist_ok=True)
    except OSError:
        return "127.0.0.1", None
    for last in range(1, 255):
        host = f"127.0.0.{last}"
        try:
            handle = (LOCK_DIR / f"{host}.lock").open("a")
        except OSError:
            return "127.0.0.1", None
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            continue
        if _ports_free(host):
            return host, handle
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()
    return "127.0.0.1", None


HOST, _HOST_LOCK = _claim_host()
LDAPS_URL = f"ldaps://{HOST}:636"
STARTTLS_URL = f"ldap://{HOST}:389"
UAC_NORMAL_NO_PASSWORD = 0x200 | 0x20  # NORMAL_ACCOUNT | PASSWD_NOTREQD: enabled without a password
UAC_DISABLED = UAC_NORMAL_NO_PASSWORD | 0x2
UAC_WORKSTATION = 0x1000
GLOBAL_SECURITY_GROUP = -2147483646


def unavailable_reason() -> str | None:
    """Why a Samba DC cannot run here, or None when it can."""
    if os.geteuid() != 0:
        return "Samba AD DC tests need root (samba provisions and binds privileged ports)"
    for tool in ("samba", "samba-tool"):
        if shutil.which(tool) is None:
            return (
                f"{tool} not installed: apt-get install --no-install-recommends samba samba-ad-dc "
                "samba-ad-provision python3-samba samba-dsdb-modules samba-vfs-modules"
            )
    if _HOST_LOCK is None:
        return "no free loopback address for a test DC (every 127.0.0.N has its DC ports in use or locked)"
    busy = [p for p in PORTS if _port_open(p)]
    if busy:
        return f"ports {busy} on {HOST} already in use (another LDAP server or Samba is running)"
    return None


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((HOST, port)) == 0


def _lo_has(host: str) -> bool:
    shown = subprocess.run(["ip", "-4", "addr", "show", "dev", "lo"], capture_output=True, text=True, check=False)
    return f"inet {host}/" in shown.stdout


def _ensure_on_lo(host: str) -> bool:
    """Samba binds only addresses an interface carries: put ``host`` on lo; True when this call added it."""
    if host == "127.0.0.1" or _lo_has(host):
        return False
    done = subprocess.run(["ip", "addr", "add", f"{host}/32", "dev", "lo"], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"cannot add {host} to lo for the test DC: {done.stderr.strip()}")
    return True


class SambaDC:
    """One provisioned and running Samba AD DC under ``workdir``."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.smb_conf = workdir / "etc" / "smb.conf"
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = workdir / "samba.out"
        self.host = HOST
        self._added_alias = False

    def provision(self) -> None:
        cmd = [
            "samba-tool", "domain", "provision", f"--targetdir={self.workdir}", f"--realm={REALM}",
            f"--domain={DOMAIN}", "--server-role=dc", "--dns-backend=NONE", f"--adminpass={ADMIN_PASSWORD}",
            "--host-name=dc1", f"--option=interfaces={HOST}", "--option=bind interfaces only=yes",
        ]  # fmt: skip
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"samba-tool domain provision failed ({done.returncode}):\n{done.stderr[-3000:]}")
        # Only the LDAP service is needed; logs stay in the work dir. Plain-LDAP simple binds stay refused.
        text = self.smb_conf.read_text()
        lines = []
        for line in text.splitlines():
            stripped = line.strip()
            if stripped.startswith(("server services", "log file")):
                continue
            lines.append(line)
            if stripped == "[global]":
                lines.append("\tserver services = ldap")
                lines.append(f"\tlog file = {self.workdir}/log.%m")
        self.smb_conf.write_text("\n".join(lines) + "\n")

    def _own_paths(self) -> None:
        """Serve the claimed address, and keep the pid file and sockets in the work dir: by default they are
        /run/samba/*, and a second DC on the machine then refuses to start ("samba is already running")."""
        run = self.workdir / "run"
        run.mkdir(exist_ok=True)
        own = {"interfaces": HOST, "pid directory": str(run), "ncalrpc dir": str(run / "ncalrpc")}
        lines = [ln for ln in self.smb_conf.read_text().splitlines() if ln.strip().split(" =")[0] not in own]
        at = lines.index("[global]") + 1
        lines[at:at] = [f"\t{key} = {value}" for key, value in own.items()]
        self.smb_conf.write_text("\n".join(lines) + "\n")

    def start(self, timeout_s: float = 90.0) -> None:
        self._own_paths()
        self._added_alias = _ensure_on_lo(HOST)
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            ["samba", "-s", str(self.smb_conf), "-i", "-M", "single"],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        log.close()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"samba exited with {self.proc.returncode}:\n{self.log_path.read_text()[-3000:]}")
            if _port_open(636):
                try:
                    self.admin().unbind()
                except ldap3.core.exceptions.LDAPException:
                    pass
                else:
                    time.sleep(0.5)  # the bind may have reached another DC that started at the same time
                    if self.proc.poll() is None:
                        return
                    raise RuntimeError(
                        f"samba exited with {self.proc.returncode} although a DC answered on 636 (another Samba "
                        f"is running on this machine?):\n{self.log_path.read_text()[-3000:]}"
                    )
            time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"samba did not answer LDAPS within {timeout_s}s:\n{self.log_path.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None
        if self._added_alias:
            with contextlib.suppress(OSError):
                subprocess.run(["ip", "addr", "del", f"{HOST}/32", "dev", "lo"], capture_output=True, check=False)
            self._added_alias = False

    def admin(self) -> ldap3.Connection:
        """An Administrator connection over LDAPS (self-signed cert: no validation) for seeding."""
        server = ldap3.Server(HOST, port=636, use_ssl=True, tls=ldap3.Tls(validate=ssl.CERT_NONE), get_info=ldap3.NONE)
        return ldap3.Connection(
            server, f"Administrator@{REALM.lower()}", ADMIN_PASSWORD, auto_bind=True, raise_exceptions=True
        )


def user_dn(name: str, container: str = f"CN=Users,{BASE_DN}") -> str:
    return f"CN={name},{container}"


def add_user(
    conn: ldap3.Connection,
    name: str,
    *,
    password: str | None = None,
    disabled: bool = False,
    mail: str | None = None,
    display_name: str | None = None,
    container: str = f"CN=Users,{BASE_DN}",
) -> str:
    dn = user_dn(name, container)
    attrs: dict[str, object] = {
        "sAMAccountName": name,
        "userPrincipalName": f"{name}@{REALM.lower()}",
        "userAccountControl": UAC_DISABLED if disabled else UAC_NORMAL_NO_PASSWORD,
    }
    if password is not None:
        attrs["unicodePwd"] = f'"{password}"'.encode("utf-16-le")
        attrs["userAccountControl"] = 0x200 | (0x2 if disabled else 0)
    if mail:
        attrs["mail"] = mail
    if display_name:
        attrs["displayName"] = display_name
    conn.add(dn, ["top", "person", "organizationalPerson", "user"], attrs)
    return dn


def add_group(
    conn: ldap3.Connection,
    name: str,
    members: Iterable[str] = (),
    container: str = f"CN=Users,{BASE_DN}",
    sam: str | None = None,
) -> str:
    dn = f"CN={ldap3.utils.dn.escape_rdn(name)},{container}"
    conn.add(dn, ["top", "group"], {"sAMAccountName": sam or name, "groupType": GLOBAL_SECURITY_GROUP})
    add_members(conn, dn, members)
    return dn


def add_members(conn: ldap3.Connection, group: str, members: Iterable[str]) -> None:
    member_list = list(members)
    for start in range(0, len(member_list), 1000):
        conn.modify(group, {"member": [(MODIFY_ADD, member_list[start : start + 1000])]})


def add_computer(conn: ldap3.Connection, name: str, dns_host_name: str | None, os_name: str | None) -> str:
    dn = f"CN={name},CN=Computers,{BASE_DN}"
    attrs: dict[str, object] = {"sAMAccountName": f"{name}$", "userAccountControl": UAC_WORKSTATION}
    if dns_host_name:
        attrs["dNSHostName"] = dns_host_name
    if os_name:
        attrs["operatingSystem"] = os_name
    conn.add(dn, ["top", "person", "organizationalPerson", "user", "computer"], attrs)
    return dn


def running_dc(workdir: Path) -> Iterator[SambaDC]:
    """Provision, start, yield, always stop: the body of the session fixture and of the benchmark."""
    dc = SambaDC(workdir)
    dc.provision()
    dc.start()
    try:
        yield dc
    finally:
        dc.stop()


_SHARED: dict[str, Any] = {"dc": None, "users": 0, "failed": None}


@pytest.fixture(scope="session")
def samba_dc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SambaDC]:
    """One Samba AD DC for the whole test session; skipped (with the reason) where it cannot run.

    Test modules import this fixture, and pytest then keeps one fixture definition per module: the DC itself
    is shared here (reference-counted) so a second module does not try to start another on the same ports.
    """
    if _SHARED["dc"] is None:
        reason = _SHARED["failed"] or unavailable_reason()
        if reason:
            _SHARED["failed"] = reason
            pytest.skip(reason)
        dc = SambaDC(tmp_path_factory.mktemp("samba-dc"))
        try:
            dc.provision()
            dc.start()
        except RuntimeError as exc:
            _SHARED["failed"] = f"Samba AD DC did not come up: {exc}"
            raise
        _SHARED["dc"] = dc
    _SHARED["users"] += 1
    try:
        yield _SHARED["dc"]
    finally:
        _SHARED["users"] -= 1
        if _SHARED["users"] == 0:
            _SHARED["dc"].stop()
            _SHARED["dc"] = None
