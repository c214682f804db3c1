"""ERS JSON <-> Clarion records, errors, and the planned requests of a (dry-run) write. No I/O here.

Field names follow ISE exactly (``aclcontent`` all lower case, ``sgacls``, ``propogateToApic`` sic);
see shared/reference/ise-pxgrid-ers-ad.md §2.4-2.6.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from clarion.sources.model import EgressCell, SecurityGroup, Sgacl

# resource path segment -> root key of its JSON object
SGT, SGACL, CELL = "sgt", "sgacl", "egressmatrixcell"
ROOT_KEYS = {SGT: "Sgt", SGACL: "Sgacl", CELL: "EgressMatrixCell"}
ANY_SGT_ID = "92bb1950-8c01-11e6-996c-525400b48521"  # ERS does not list ANY, but ANY-ANY points at it
ANY_SGT_VALUE = 65535
IP_VERSIONS = ("IPV4", "IPV6", "IP_AGNOSTIC")
CELL_STATUSES = ("ENABLED", "DISABLED", "MONITOR")
DEFAULT_RULES = ("NONE", "DENY_IP", "PERMIT_IP")
NAME_RE = re.compile(r"^[\w\-\. ]{1,255}$")  # SGACL names may hold spaces ("Permit IP"); SGT names may not
MAX_ACL_CHARS = 16_000


class ERSError(Exception):
    """An ERS call failed; carries the HTTP status, the request path and ISE's own messages."""

    def __init__(self, status: int | None, method: str, path: str, messages: list[str], operation: str = "") -> None:
        self.status, self.method, self.path, self.messages, self.operation = status, method, path, messages, operation
        what = "; ".join(messages) or "no message"
        super().__init__(f"ISE ERS {method} {path}: " + (f"HTTP {status}: " if status else "") + what)


class ERSAuthError(ERSError):
    """401: wrong user or password, or the account is not an ERS Admin/Operator."""


class ERSForbiddenError(ERSError):
    """403: an ERS Operator tried to write, or the CSRF token was missing or stale."""


class ERSNotFoundError(ERSError):
    """404: no resource with that id."""


def error_for(status: int, method: str, path: str, body: Any) -> ERSError:
    """Map a non-2xx reply to the exception, pulling titles out of an ERSResponse envelope when there is one."""
    messages: list[str] = []
    operation = ""
    envelope = body.get("ERSResponse") if isinstance(body, dict) else None
    if isinstance(envelope, dict):
        operation = str(envelope.get("operation", ""))
        for msg in envelope.get("messages") or []:
            if isinstance(msg, dict) and msg.get("title"):
                code = f" ({msg['code']})" if msg.get("code") else ""
                messages.append(f"{msg['title']}{code}")
    if not messages:
        messages = [
            {401: "unauthorized: check the ERS user and password", 403: "forbidden"}.get(status, "unexpected reply")
        ]
    cls = {401: ERSAuthError, 403: ERSForbiddenError, 404: ERSNotFoundError}.get(status, ERSError)
    return cls(status, method, path, messages, operation)


@dataclass(frozen=True, slots=True)
class PlannedRequest:
    """One write as it would go on the wire; what a dry run returns."""

    method: str
    path: str
    body: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class WriteResult:
    request: PlannedRequest
    sent: bool
    status: int | None = None
    ise_id: str | None = None  # the new id (from Location) on create, the target id on update
    updated_fields: tuple[dict[str, Any], ...] = ()


@dataclass(slots=True)
class TrustSecConfig:
    """What ERS says the TrustSec policy is; also the id maps a cell write needs."""

    security_groups: list[SecurityGroup] = field(default_factory=list)
    sgacls: list[Sgacl] = field(default_factory=list)
    cells: list[EgressCell] = field(default_factory=list)

    def sgt_id(self, value: int) -> str:
        if value == ANY_SGT_VALUE:
            return ANY_SGT_ID
        for sg in self.security_groups:
            if sg.value == value and sg.ise_id:
                return sg.ise_id
        raise ValueError(f"SGT {value} is not defined in ISE (known: {sorted(s.value for s in self.security_groups)})")

    def sgacl_id(self, name: str) -> str:
        for acl in self.sgacls:
            if acl.name == name and acl.ise_id:
                return acl.ise_id
        raise ValueError(f"SGACL {name!r} is not defined in ISE (known: {sorted(a.name for a in self.sgacls)})")

    def cell(self, src: int, dst: int) -> EgressCell | None:
        return next((c for c in self.cells if (c.src_sgt, c.dst_sgt) == (src, dst)), None)


def _req(obj: dict[str, Any], key: str, kind: type, where: str) -> Any:
    value = obj.get(key)
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is int):
        raise ValueError(f"{where}: field {key!r} missing or not {kind.__name__}: {value!r}")
    return value


def parse_sgt(obj: dict[str, Any]) -> SecurityGroup:
    where = f"Sgt {obj.get('id')}"
    return SecurityGroup(
        value=_req(obj, "value", int, where),
        name=_req(obj, "name", str, where),
        ise_id=_req(obj, "id", str, where),
        description=obj.get("description") or None,
    )


def parse_sgacl(obj: dict[str, Any]) -> Sgacl:
    where = f"Sgacl {obj.get('id')}"
    return Sgacl(
        name=_req(obj, "name", str, where),
        aces=str(obj.get("aclcontent") or ""),
        ise_id=_req(obj, "id", str, where),
        ip_version=str(obj.get("ipVersion") or "IP_AGNOSTIC"),  # built-ins omit it
        description=obj.get("description") or None,
    )


def parse_cell(obj: dict[str, Any], sgt_values: dict[str, int], sgacl_names: dict[str, str]) -> EgressCell:
    where = f"EgressMatrixCell {obj.get('id')}"
    src, dst = _req(obj, "sourceSgtId", str, where), _req(obj, "destinationSgtId", str, where)
    for sgt_id in (src, dst):
        if sgt_id not in sgt_values:
            raise ValueError(f"{where}: SGT id {sgt_id} is not a known Security Group")
    acl_ids = obj.get("sgacls") or []
    unknown = [a for a in acl_ids if a not in sgacl_names]
    if unknown:
        raise ValueError(f"{where}: SGACL ids {unknown} are not known SGACLs")
    return EgressCell(
        src_sgt=sgt_values[src],
        dst_sgt=sgt_values[dst],
        sgacls=tuple(sgacl_names[a] for a in acl_ids),
        default_rule=str(obj.get("defaultRule") or "NONE"),
        status=str(obj.get("matrixCellStatus") or "ENABLED"),
        ise_id=_req(obj, "id", str, where),
    )


def sgacl_body(sgacl: Sgacl, *, with_id: bool) -> dict[str, Any]:
    """The JSON of a create (``with_id=False``) or update; validated so ISE's 400 is not the first check."""
    if not NAME_RE.match(sgacl.name):
        raise ValueError(f"SGACL name {sgacl.name!r} must be 1-255 letters, digits, space, _ - .")
    if sgacl.ip_version not in IP_VERSIONS:
        raise ValueError(f"SGACL {sgacl.name!r}: ip_version {sgacl.ip_version!r} is not one of {IP_VERSIONS}")
    if not sgacl.aces.strip() or len(sgacl.aces) > MAX_ACL_CHARS:
        raise ValueError(f"SGACL {sgacl.name!r}: aces must be 1..{MAX_ACL_CHARS} characters of ACEs")
    inner: dict[str, Any] = {"name": sgacl.name, "description": sgacl.description or "", "ipVersion": sgacl.ip_version}
    inner["aclcontent"] = sgacl.aces
    if with_id:
        if not sgacl.ise_id:
            raise ValueError(f"SGACL {sgacl.name!r}: update needs ise_id")
        inner = {"id": sgacl.ise_id, **inner}
    return {ROOT_KEYS[SGACL]: inner}


def cell_body(cell: EgressCell, config: TrustSecConfig, *, with_id: bool) -> dict[str, Any]:
    if cell.default_rule not in DEFAULT_RULES:
        raise ValueError(
            f"cell {cell.src_sgt}->{cell.dst_sgt}: default_rule {cell.default_rule!r} not in {DEFAULT_RULES}"
        )
    if cell.status not in CELL_STATUSES:
        raise ValueError(f"cell {cell.src_sgt}->{cell.dst_sgt}: status {cell.status!r} not in {CELL_STATUSES}")
    inner: dict[str, Any] = {
        "sourceSgtId": config.sgt_id(cell.src_sgt),
        "destinationSgtId": config.sgt_id(cell.dst_sgt),
        "matrixCellStatus": cell.status,
        "defaultRule": cell.default_rule,
        "sgacls": [config.sgacl_id(name) for name in cell.sgacls],
        "description": f"Clarion {cell.src_sgt}->{cell.dst_sgt}",
    }
    if with_id:
        if not cell.ise_id:
            raise ValueError(f"cell {cell.src_sgt}->{cell.dst_sgt}: update needs ise_id")
        inner = {"id": cell.ise_id, **inner}
    return {ROOT_KEYS[CELL]: inner}
