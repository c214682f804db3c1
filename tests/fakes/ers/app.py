"""The fake ERS application: auth, Accept/Content-Type rules, CSRF, SearchResult paging, CRUD with ISE's envelopes.

Behaviour follows shared/reference/ise-pxgrid-ers-ad.md §2. Where the reference marks a detail as inferred [I]
(the 406/415 bodies, duplicate handling, the CSRF failure), the fake answers with an ERSResponse envelope.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import secrets
import time
from typing import Any
from urllib.parse import urlencode
from xml.sax.saxutils import quoteattr

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.fakes.ers import data
from tests.fakes.ers.state import ROOT, CsrfSession, ERSFaultError, FakeERSState

MEDIA = {"sgt": "trustsec.sgt", "sgacl": "trustsec.sgacl", "egressmatrixcell": "trustsec.egressmatrixcell"}
VERSIONS = {"sgt": "1.0,1.1,1.2", "sgacl": "1.0,1.1,1.2", "egressmatrixcell": "1.0,1.1"}
FILTERS = {
    "sgt": {"name", "description", "value", "propogateToApic"},
    "sgacl": {"name", "description", "ipVersion", "sgAclType"},
    "egressmatrixcell": {"sgtSrcValue", "sgtDstValue", "sgtSrcName", "sgtDstName", "matrixStatus", "description"},
}
OPS = {"EQ", "NEQ", "GT", "LT", "STARTSW", "NSTARTSW", "ENDSW", "NENDSW", "CONTAINS", "NCONTAINS"}
JSON_TYPE = "application/json;charset=utf-8"


class UnauthorizedError(Exception):
    """Bad or missing Basic credentials: ISE answers 401 with an HTML page, not an ERS envelope."""


UNAUTHORIZED_HTML = (
    '<!doctype html><html lang="en"><head><title>HTTP Status 401 – Unauthorized</title></head>'
    "<body><h1>HTTP Status 401 – Unauthorized</h1></body></html>"
)


CASED = {b"x-csrf-token": b"X-CSRF-Token", b"location": b"Location", b"etag": b"ETag", b"set-cookie": b"Set-Cookie"}


def _cased(response: Response) -> Response:
    """Send header names in ISE's (Tomcat's) casing: ciscoisesdk reads ``X-CSRF-Token`` from a case-sensitive dict."""
    response.raw_headers = [(CASED.get(k, k), v) for k, v in response.raw_headers]
    return response


def _xml(value: Any, tag: str) -> str:
    """Just enough XML to be what ISE sends when the client forgot Accept: application/json."""
    if isinstance(value, dict):
        simple = {k: v for k, v in value.items() if not isinstance(v, dict | list)}
        attrs = "".join(f" {k}={quoteattr(str(v))}" for k, v in simple.items())
        inner = "".join(_xml(v, k) for k, v in value.items() if isinstance(v, dict | list))
        return f"<{tag}{attrs}>{inner}</{tag}>"
    if isinstance(value, list):
        return f"<{tag}>" + "".join(_xml(v, tag.rstrip("s") or "item") for v in value) + f"</{tag}>"
    return f"<{tag}>{value}</{tag}>"


class FakeERS:
    """Builds the Starlette app over a :class:`FakeERSState`."""

    def __init__(self, state: FakeERSState | None = None) -> None:
        self.state = state or FakeERSState()
        self.app = Starlette(
            routes=[
                Route("/ers/config/{res}/versioninfo", self.versioninfo, methods=["GET"]),
                Route("/ers/config/{res}", self.collection, methods=["GET", "POST"]),
                Route("/ers/config/{res}/{oid}", self.item, methods=["GET", "PUT", "DELETE"]),
            ]
        )
        self.app.add_exception_handler(ERSFaultError, self._fault)  # type: ignore[arg-type]
        self.app.add_exception_handler(UnauthorizedError, self._unauthorized)

    # ---------------------------------------------------------------- responses
    def _wants(self, request: Request) -> str:
        accept = request.headers.get("accept", "").strip()
        types = {part.split(";")[0].strip().lower() for part in accept.split(",") if part.strip()}
        if "application/json" in types:
            return "json"
        if not types or types & {"application/xml", "*/*", "application/*"}:
            return "xml"  # ERS's default representation
        raise ERSFaultError(406, f"Accept header {accept!r} is not supported: use application/json or application/xml")

    def _envelope(self, request: Request, status: int, title: str, code: str) -> dict[str, Any]:
        res = request.path_params.get("res", "")
        op = {"GET": "GET", "POST": "POST-create", "PUT": "PUT-update", "DELETE": "DELETE"}[request.method]
        return {
            "ERSResponse": {
                "operation": f"{op}-{res}",
                "messages": [{"title": title, "type": "ERROR", "code": code}],
                "link": {"rel": "related", "href": str(request.url), "type": "application/json"},
            }
        }

    async def _fault(self, request: Request, exc: ERSFaultError) -> Response:
        body = self._envelope(request, exc.status, exc.title, exc.code)
        return Response(json.dumps(body, indent=2), exc.status, media_type=JSON_TYPE)

    async def _unauthorized(self, request: Request, exc: Exception) -> Response:
        headers = {"WWW-Authenticate": 'Basic realm="ERS"'}
        return Response(UNAUTHORIZED_HTML, 401, headers, "text/html;charset=utf-8")

    def _render(self, request: Request, body: dict[str, Any], headers: dict[str, str], status: int = 200) -> Response:
        if self._wants(request) == "xml":
            ((root, inner),) = body.items()
            xml = _xml(inner, root[0].lower() + root[1:])
            return _cased(Response(xml, status, headers, "application/xml;charset=utf-8"))
        return _cased(Response(json.dumps(body, indent=2), status, headers, JSON_TYPE))

    # ---------------------------------------------------------------- request checks
    async def _enter(self, request: Request, *, write: bool) -> tuple[str, dict[str, str]]:
        state = self.state
        state.requests.append(
            (request.method, request.url.path + (f"?{request.url.query}" if request.url.query else ""))
        )
        role = self._auth(request)
        res = request.path_params["res"]
        if res not in ROOT and res not in ("endpoint", "deploymentinfo"):
            raise ERSFaultError(404, f"Resource {res!r} not found", "Resource not found exception")
        self._wants(request)
        media = request.headers.get("ers-media-type")
        if media and res in MEDIA:
            prefix, _, version = media.rpartition(".")
            if prefix.rsplit(".", 1)[0] != MEDIA[res] or version not in [*VERSIONS[res].split(","), "x"]:
                raise ERSFaultError(415, f"Unsupported ERS-Media-Type {media!r}", "VERSION_EXCEPTION")
        headers: dict[str, str] = {}
        if state.csrf:
            headers.update(self._csrf(request, write))
        if write:
            ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
            if ctype != "application/json":
                raise ERSFaultError(415, f"Content-Type {ctype!r} is not supported: use application/json",
                               "Unsupported media type")  # fmt: skip
            if role != "admin":
                raise ERSFaultError(403, "ERS Operator may only read", "Forbidden")
        return res, headers

    def _auth(self, request: Request) -> str:
        header = request.headers.get("authorization", "")
        try:
            scheme, _, token = header.partition(" ")
            user, _, password = base64.b64decode(token).decode().partition(":")
        except ValueError:
            scheme, user, password = "", "", ""
        known = self.state.users.get(user)
        if scheme.lower() != "basic" or known is None or not secrets.compare_digest(known[0], password):
            raise UnauthorizedError
        return known[1]

    def _csrf(self, request: Request, write: bool) -> dict[str, str]:
        state, now = self.state, time.monotonic()
        for sid in [s for s, sess in state.sessions.items() if now - sess.last_used > state.csrf_idle_s]:
            del state.sessions[sid]
        wanted = request.headers.get("x-csrf-token", "")
        if not write and wanted.lower() == "fetch":
            sid, token = secrets.token_hex(16).upper(), secrets.token_hex(16)
            state.sessions[sid] = CsrfSession(token, now)
            secure = "; Secure" if request.url.scheme == "https" else ""  # ISE is https-only; the fake may be http
            return {"X-CSRF-Token": token, "Set-Cookie": f"APPSESSIONID={sid}; Path=/ers{secure}; HttpOnly"}
        if write:
            session = state.sessions.get(request.cookies.get("APPSESSIONID", ""))
            if session is None or not wanted or not secrets.compare_digest(session.token, wanted):
                raise ERSFaultError(
                    403, "CSRF token validation failed: fetch one with X-CSRF-TOKEN: fetch", "Forbidden"
                )
            session.last_used = now
        return {}

    async def _timed(self) -> None:
        state = self.state
        state.in_flight += 1
        state.peak_in_flight = max(state.peak_in_flight, state.in_flight)
        try:
            if state.delay_s:
                await asyncio.sleep(state.delay_s)
        finally:
            state.in_flight -= 1

    # ---------------------------------------------------------------- routes
    async def versioninfo(self, request: Request) -> Response:
        res, headers = await self._enter(request, write=False)
        body = {
            "VersionInfo": {
                "currentServerVersion": VERSIONS.get(res, "1.0").split(",")[-1],
                "supportedVersions": VERSIONS.get(res, "1.0"),
                "link": {"rel": "self", "href": str(request.url), "type": "application/json"},
            }
        }
        return self._render(request, body, headers)

    async def collection(self, request: Request) -> Response:
        res, headers = await self._enter(request, write=request.method == "POST")
        await self._timed()
        if request.method == "POST":
            new_id = self.state.create(res, await self._body(request, res))
            location = f"{request.url.scheme}://{request.url.netloc}/ers/config/{res}/{new_id}"
            return _cased(Response(b"", 201, {"Location": location, **headers}))
        return self._render(request, self._search(request, res), headers)

    async def item(self, request: Request) -> Response:
        res, headers = await self._enter(request, write=request.method != "GET")
        await self._timed()
        oid = request.path_params["oid"]
        obj = self.state.objects.get(res, {}).get(oid) or (self.state.hidden.get(oid) if res == "sgt" else None)
        if obj is None:
            raise ERSFaultError(404, f"Resource with id {oid!r} not found", "Resource not found exception")
        if request.method == "DELETE":
            if oid in self.state.hidden or oid == data.ANY_ANY_CELL_ID:
                raise ERSFaultError(400, "Cannot delete a default resource")
            del self.state.objects[res][oid]
            return _cased(Response(b"", 204, headers))
        if request.method == "PUT":
            changes = self.state.update(res, oid, await self._body(request, res))
            return self._render(request, {"UpdatedFieldsList": {"updatedField": changes}}, headers)
        link = {"rel": "self", "href": str(request.url), "type": "application/json"}
        etag = '"' + hashlib.md5(json.dumps(obj, sort_keys=True).encode()).hexdigest().upper() + '"'  # noqa: S324
        return self._render(request, {ROOT[res]: {**obj, "link": link}}, {"ETag": etag, **headers})

    async def _body(self, request: Request, res: str) -> dict[str, Any]:
        try:
            body = json.loads(await request.body())
        except ValueError as exc:
            raise ERSFaultError(400, f"Request body is not valid JSON: {exc}", "Validation exception") from exc
        inner = body.get(ROOT[res]) if isinstance(body, dict) else None
        if not isinstance(inner, dict):
            raise ERSFaultError(400, f"Request body must be {{{ROOT[res]!r}: {{...}}}}", "Validation exception")
        return inner

    # ---------------------------------------------------------------- search
    def _search(self, request: Request, res: str) -> dict[str, Any]:
        q = request.query_params
        try:
            page, size = int(q.get("page", "1")), int(q.get("size", "20"))
        except ValueError as exc:
            raise ERSFaultError(400, "page and size must be integers", "Bad request") from exc
        if page < 1 or not 1 <= size <= 100:
            raise ERSFaultError(400, f"page must be >= 1 and size 1..100 (got page={page}, size={size})", "Bad request")
        rows = [self._filter_view(res, o) for o in self.state.objects[res].values()]
        filters = q.getlist("filter")
        mode = (q.get("filtertype") or q.get("filterType") or "and").lower()
        checks = [self._predicate(res, f) for f in filters]
        if checks:
            combine = any if mode == "or" else all
            rows = [r for r in rows if combine(c(r) for c in checks)]
        sort_field, reverse = q.get("sortasc") or q.get("sortdsc") or "name", "sortdsc" in q
        rows.sort(key=lambda r: (str(r.get(sort_field, "")).lower(), r["id"]), reverse=reverse)
        total, chunk = len(rows), rows[(page - 1) * size : page * size]
        base = f"{request.url.scheme}://{request.url.netloc}/ers/config/{res}"
        out: dict[str, Any] = {
            "total": total,
            "resources": [
                {
                    "id": r["id"],
                    "name": r["name"],
                    **({"description": r["description"]} if r.get("description") else {}),
                    "link": {"rel": "self", "href": f"{base}/{r['id']}", "type": "application/json"},
                }
                for r in chunk
            ],
        }
        if page * size < total:
            href = self._page_href(request, base, page + 1, size)
            out["nextPage"] = {"rel": "next", "href": href, "type": "application/json"}
        if page > 1:
            href = self._page_href(request, base, page - 1, size)
            out["previousPage"] = {"rel": "previous", "href": href, "type": "application/json"}
        return {"SearchResult": out}

    @staticmethod
    def _page_href(request: Request, base: str, page: int, size: int) -> str:
        """ISE's form: ``<base>?size=N&page=M`` followed by the other query parameters, in order."""
        rest = [(k, v) for k, v in request.query_params.multi_items() if k not in ("page", "size")]
        return f"{base}?" + urlencode([("size", str(size)), ("page", str(page)), *rest])

    def _filter_view(self, res: str, obj: dict[str, Any]) -> dict[str, Any]:
        if res != "egressmatrixcell":
            return obj
        src, dst = self.state.sgt_by_id(obj["sourceSgtId"]) or {}, self.state.sgt_by_id(obj["destinationSgtId"]) or {}
        return {
            **obj,
            "sgtSrcValue": src.get("value"),
            "sgtDstValue": dst.get("value"),
            "sgtSrcName": src.get("name"),
            "sgtDstName": dst.get("name"),
            "matrixStatus": obj.get("matrixCellStatus"),
        }

    def _predicate(self, res: str, text: str) -> Any:
        parts = text.split(".", 2)
        if len(parts) != 3 or parts[1] not in OPS:
            raise ERSFaultError(400, f"Invalid filter {text!r}: expected <field>.<OP>.<value>", "Bad request")
        name, op, value = parts
        if name not in FILTERS[res]:
            raise ERSFaultError(400, f"Filter field {name!r} is not supported for {res}", "Bad request")

        def check(row: dict[str, Any]) -> bool:
            have = row.get(name)
            text_have = "" if have is None else str(have).lower() if isinstance(have, bool) else str(have)
            if op in ("GT", "LT"):
                try:
                    a, b = float(text_have), float(value)
                except ValueError:
                    a, b = text_have, value  # type: ignore[assignment]
                return a > b if op == "GT" else a < b
            base_op = op.removeprefix("N") if op != "NEQ" else "EQ"
            hit = {
                "EQ": text_have == value,
                "STARTSW": text_have.startswith(value),
                "ENDSW": text_have.endswith(value),
                "CONTAINS": value in text_have,
            }[base_op]
            return not hit if op.startswith("N") else hit

        return check
