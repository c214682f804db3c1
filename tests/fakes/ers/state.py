"""The fake ERS's data and write rules: seeded objects, validation, duplicates, UpdatedFieldsList, CSRF sessions."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from typing import Any

from tests.fakes.ers import data

ROOT = {"sgt": "Sgt", "sgacl": "Sgacl", "egressmatrixcell": "EgressMatrixCell"}
SGT_NAME = re.compile(r"^[\w\d_\-\.]+$")


class ERSFaultError(Exception):
    def __init__(self, status: int, title: str, code: str = "Application resource validation exception") -> None:
        super().__init__(title)
        self.status, self.title, self.code = status, title, code


@dataclass
class CsrfSession:
    token: str
    last_used: float


@dataclass
class FakeERSState:
    """Everything the fake knows; tests read and poke it directly."""

    users: dict[str, tuple[str, str]] = field(
        default_factory=lambda: {"ersadmin": ("Admin-Pass1", "admin"), "ersop": ("Oper-Pass1", "operator")}
    )
    csrf: bool = False
    csrf_idle_s: float = 60.0
    delay_s: float = 0.0
    objects: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    hidden: dict[str, dict[str, Any]] = field(default_factory=dict)  # gettable by id, never listed (ANY)
    sessions: dict[str, CsrfSession] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)  # (method, path?query) seen, in order
    in_flight: int = 0
    peak_in_flight: int = 0

    def __post_init__(self) -> None:
        self.objects = {
            "sgt": {o["id"]: o for o in data.default_sgts()},
            "sgacl": {o["id"]: o for o in data.default_sgacls()},
            "egressmatrixcell": {o["id"]: o for o in data.default_cells()},
        }
        self.hidden = {data.ANY_ID: data.any_sgt()}

    def sgt_by_id(self, sgt_id: str) -> dict[str, Any] | None:
        return self.objects["sgt"].get(sgt_id) or self.hidden.get(sgt_id)

    def add(self, resource: str, obj: dict[str, Any]) -> str:
        obj = dict(obj)
        obj.setdefault("id", str(uuid.uuid4()))
        obj.setdefault("generationId", "0")
        if resource == "egressmatrixcell":
            obj.setdefault("name", self._cell_name(obj))
        self.objects[resource][obj["id"]] = obj
        return str(obj["id"])

    def _cell_name(self, cell: dict[str, Any]) -> str:
        src, dst = self.sgt_by_id(cell["sourceSgtId"]), self.sgt_by_id(cell["destinationSgtId"])
        return f"{src['name'] if src else '?'}-{dst['name'] if dst else '?'}"

    # ---------------------------------------------------------------- writes
    def _validate(self, res: str, obj: dict[str, Any], own_id: str | None) -> dict[str, Any]:
        others = [o for o in self.objects[res].values() if o["id"] != own_id]
        if res in ("sgt", "sgacl"):
            name = obj.get("name")
            if not isinstance(name, str) or not SGT_NAME.match(name if res == "sgt" else name.replace(" ", "_")):
                raise ERSFaultError(400, f"{ROOT[res]} name {name!r} is missing or invalid (letters, digits, _-.)")
            if any(o["name"] == name for o in others):
                raise ERSFaultError(400, f"{ROOT[res]} Create failed: Name {name!r} already exists")
        if res == "sgt":
            value = obj.get("value")
            if value == -1 and own_id is None:
                used = {o["value"] for o in self.objects["sgt"].values()}
                obj["value"] = next(v for v in range(16, 65520) if v not in used)
            elif not isinstance(value, int) or not 2 <= value <= 65519:
                raise ERSFaultError(400, f"Sgt value {value!r} must be an integer 2..65519 (or -1 to allocate)")
            elif any(o["value"] == value for o in others):
                raise ERSFaultError(400, f"Sgt Create failed: value {value} is already used")
        elif res == "sgacl":
            if obj.get("ipVersion") not in ("IPV4", "IPV6", "IP_AGNOSTIC"):
                raise ERSFaultError(400, f"ipVersion {obj.get('ipVersion')!r} must be IPV4, IPV6 or IP_AGNOSTIC")
            if not isinstance(obj.get("aclcontent", ""), str):
                raise ERSFaultError(400, "aclcontent must be a string of newline-separated ACEs")
        else:
            for key in ("sourceSgtId", "destinationSgtId"):
                if self.sgt_by_id(str(obj.get(key))) is None:
                    raise ERSFaultError(400, f"{key} {obj.get(key)!r} is not a known Security Group id")
            if obj.get("matrixCellStatus") not in ("ENABLED", "DISABLED", "MONITOR"):
                raise ERSFaultError(
                    400, f"matrixCellStatus {obj.get('matrixCellStatus')!r} is not ENABLED|DISABLED|MONITOR"
                )
            if obj.get("defaultRule") not in ("NONE", "DENY_IP", "PERMIT_IP"):
                raise ERSFaultError(400, f"defaultRule {obj.get('defaultRule')!r} must be NONE|DENY_IP|PERMIT_IP")
            acls = obj.get("sgacls", [])
            if not isinstance(acls, list) or any(a not in self.objects["sgacl"] for a in acls):
                raise ERSFaultError(400, f"sgacls {acls!r} must be a list of known SGACL ids")
            pair = (obj["sourceSgtId"], obj["destinationSgtId"])
            if any((o["sourceSgtId"], o["destinationSgtId"]) == pair for o in others):
                raise ERSFaultError(400, "There is already a policy for this source and destination Security Group")
        return obj

    def create(self, res: str, body: dict[str, Any]) -> str:
        obj = {k: v for k, v in body.items() if k not in ("id", "generationId", "link")}
        return self.add(res, self._validate(res, obj, None))

    def _acl_text(self, ids: list[str]) -> str:
        acls = self.objects["sgacl"]
        return ", ".join(f"MatrixSGACL [name={acls[i]['name']}, refId={i}]" for i in ids if i in acls)

    def update(self, res: str, oid: str, body: dict[str, Any]) -> list[dict[str, str]]:
        if body.get("id", oid) != oid:
            raise ERSFaultError(400, f"id in body {body.get('id')!r} does not match the id in the URL {oid!r}")
        old = self.objects[res][oid]
        new = {**{k: v for k, v in old.items() if k != "name" or res != "egressmatrixcell"}, **body, "id": oid}
        new.pop("link", None)
        if res == "sgt" and new.get("value") != old.get("value"):
            raise ERSFaultError(400, "Sgt value cannot be changed on update")
        self._validate(res, new, oid)
        if res == "egressmatrixcell":
            new["name"] = self._cell_name(new)
        changes = []
        for key in sorted(set(old) | set(new)):
            if key in ("generationId", "link") or old.get(key) == new.get(key):
                continue
            if key == "sgacls":
                before, after = self._acl_text(old.get(key, [])), self._acl_text(new[key])
                changes.append({"field": "matrixSGACLs", "oldValue": before, "newValue": after})
            else:
                field_name = key[0].upper() + key[1:] if key == "description" else key
                changes.append({"field": field_name, "oldValue": str(old.get(key, "")), "newValue": str(new.get(key))})
        new["generationId"] = str(int(old.get("generationId", "0")) + 1)
        self.objects[res][oid] = new
        return changes
