"""A thin async client for Cisco ISE ERS (``/ers/config/...``): read the TrustSec policy, write SGACLs and cells.

JSON only, Basic auth, root-key unwrap, SearchResult paging, ERSResponse errors as exceptions, optional CSRF,
and a concurrency limiter (ERS has no 429: overload shows up as slowness or 5xx, so we stay well below it).
Writes are never retried (ERS writes are not idempotent); a dry run returns the requests instead of sending.
"""

from __future__ import annotations

import asyncio
import logging
import math
import ssl
from collections.abc import AsyncIterator, Awaitable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx

from clarion.sources.ers_models import (
    ANY_SGT_ID,
    ANY_SGT_VALUE,
    CELL,
    ROOT_KEYS,
    SGACL,
    SGT,
    ERSError,
    PlannedRequest,
    TrustSecConfig,
    WriteResult,
    cell_body,
    error_for,
    parse_cell,
    parse_sgacl,
    parse_sgt,
    sgacl_body,
)
from clarion.sources.model import EgressCell, SecurityGroup, Sgacl

log = logging.getLogger(__name__)
T = TypeVar("T")

JSON = "application/json"
MAX_PAGE_SIZE = 100
MAX_RESOURCES = 100_000  # a SearchResult bigger than this is refused rather than paged forever
MAX_BODY_BYTES = 16 * 1024 * 1024
GET_RETRIES = 2


@dataclass(frozen=True, slots=True)
class ERSConfig:
    """Where ERS is and who we are. ``base_url`` is ``https://<PAN>:9060`` (or ``https://<PAN>`` on 3.1+)."""

    base_url: str
    username: str
    password: str = field(repr=False)
    verify: bool | str = True  # True, False, or a CA bundle path
    csrf: bool = False  # ISE's "Enable CSRF Check" setting
    max_concurrency: int = 8
    page_size: int = MAX_PAGE_SIZE
    timeout_s: float = 30.0

    def __post_init__(self) -> None:
        parts = urlsplit(self.base_url)
        if parts.scheme not in ("https", "http") or not parts.hostname or parts.path not in ("", "/"):
            raise ValueError(f"ERS base_url must be https://host[:port] with no path, got {self.base_url!r}")
        if not 1 <= self.page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"page_size must be 1..{MAX_PAGE_SIZE} (ERS maximum), got {self.page_size}")
        if not 1 <= self.max_concurrency <= 50:
            raise ValueError(f"max_concurrency must be 1..50, got {self.max_concurrency}")


class ERSClient:
    """``async with ERSClient(config) as ers:``; every request goes through one semaphore."""

    def __init__(self, config: ERSConfig, *, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.config = config
        self._limit = asyncio.Semaphore(config.max_concurrency)
        self._csrf_token: str | None = None
        self._csrf_lock = asyncio.Lock()
        verify = ssl.create_default_context(cafile=config.verify) if isinstance(config.verify, str) else config.verify
        self._http = httpx.AsyncClient(
            base_url=config.base_url.rstrip("/"),
            auth=httpx.BasicAuth(config.username, config.password),
            headers={"Accept": JSON},
            verify=verify,
            timeout=config.timeout_s,
            transport=transport,
            follow_redirects=False,
        )

    async def __aenter__(self) -> ERSClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    # ------------------------------------------------------------------ transport
    async def request(
        self, method: str, path: str, *, params: list[tuple[str, str]] | None = None, body: Any = None
    ) -> httpx.Response:
        """Send one ERS request; non-2xx raises :class:`ERSError` naming the path and ISE's messages."""
        write = method in ("POST", "PUT", "DELETE")
        attempts = 1 if write else 1 + GET_RETRIES
        csrf_refreshed = False
        query = httpx.QueryParams(tuple(params)) if params else None
        for attempt in range(attempts):
            # on every write, DELETE included (no body): ISE's media-type check runs on writes (ciscoisesdk does so)
            headers = {"Content-Type": JSON} if body is not None or write else {}
            if write and self.config.csrf:
                headers["X-CSRF-TOKEN"] = await self._csrf()
            try:
                async with self._limit:
                    resp = await self._http.request(method, path, params=query, json=body, headers=headers)
            except httpx.HTTPError as exc:
                if attempt + 1 < attempts:
                    await asyncio.sleep(0.2 * 2**attempt)
                    continue
                raise ERSError(None, method, path, [f"{type(exc).__name__}: {exc}"]) from exc
            if resp.status_code >= 500 and attempt + 1 < attempts:
                await asyncio.sleep(0.2 * 2**attempt)
                continue
            if resp.status_code == 403 and write and self.config.csrf and not csrf_refreshed:
                # the token dies with the ISE session (about 60 s idle): fetch a new one once and resend
                csrf_refreshed = True
                self._csrf_token = None
                headers["X-CSRF-TOKEN"] = await self._csrf()
                async with self._limit:
                    resp = await self._http.request(method, path, params=query, json=body, headers=headers)
            if resp.status_code >= 400:
                raise error_for(resp.status_code, method, path, _json_or_none(resp))
            if len(resp.content) > MAX_BODY_BYTES:
                raise ERSError(resp.status_code, method, path, [f"reply larger than {MAX_BODY_BYTES} bytes"])
            return resp
        raise AssertionError("unreachable")  # pragma: no cover

    async def _csrf(self) -> str:
        async with self._csrf_lock:
            if self._csrf_token is None:
                path = "/ers/config/sgt/versioninfo"
                async with self._limit:
                    resp = await self._http.get(path, headers={"X-CSRF-TOKEN": "fetch"})
                if resp.status_code >= 400:
                    raise error_for(resp.status_code, "GET", path, _json_or_none(resp))
                token = resp.headers.get("X-CSRF-Token")
                if not token:
                    raise ERSError(resp.status_code, "GET", path, ["CSRF is on but ISE sent no X-CSRF-Token"])
                self._csrf_token = token
            return self._csrf_token

    async def get_json(self, path: str, root: str, params: list[tuple[str, str]] | None = None) -> dict[str, Any]:
        resp = await self.request("GET", path, params=params)
        body = _json_or_none(resp)
        if not isinstance(body, dict) or not isinstance(body.get(root), dict):
            raise ERSError(resp.status_code, "GET", path, [f"reply is not JSON with root key {root!r}"])
        inner: dict[str, Any] = body[root]
        return inner

    # ------------------------------------------------------------------ reads
    async def get(self, resource: str, ise_id: str) -> dict[str, Any]:
        """One object by id, unwrapped from its root key (``{"Sgt": {...}}`` -> ``{...}``)."""
        return await self.get_json(f"/ers/config/{resource}/{ise_id}", ROOT_KEYS[resource])

    async def search(
        self, resource: str, filters: Iterable[str] = (), filter_type: str = "and"
    ) -> AsyncIterator[dict[str, Any]]:
        """Every SearchResult resource (id, name, description, link), following ``nextPage.href``."""
        first = [("size", str(self.config.page_size)), ("page", "1"), *(("filter", f) for f in filters)]
        if filter_type != "and":
            first.append(("filtertype", filter_type))
        params: list[tuple[str, str]] | None = first
        path = f"/ers/config/{resource}"
        seen = 0
        pages = 0
        while True:
            result = await self.get_json(path, "SearchResult", params)
            total, resources, nxt = _search_page(result, path)
            if total > MAX_RESOURCES:
                raise ERSError(200, "GET", path, [f"{total} {resource} resources exceed the limit {MAX_RESOURCES}"])
            for item in resources:
                seen += 1
                yield item
            pages += 1
            if not nxt or not resources:
                return
            if pages > math.ceil(total / self.config.page_size) + 1:
                raise ERSError(200, "GET", path, ["nextPage keeps going past total: refusing to loop"])
            path, params = _same_host_path(nxt), None

    async def _details(self, resource: str) -> list[dict[str, Any]]:
        """List ids, then GET each (the list carries only id/name/description), limited by the semaphore."""
        ids = [str(item["id"]) async for item in self.search(resource)]
        return await _gather_all([self.get(resource, i) for i in ids])

    async def security_groups(self) -> list[SecurityGroup]:
        return [_checked(parse_sgt, o, SGT) for o in await self._details(SGT)]

    async def sgacls(self) -> list[Sgacl]:
        return [_checked(parse_sgacl, o, SGACL) for o in await self._details(SGACL)]

    async def egress_cells(
        self, sgts: list[SecurityGroup] | None = None, acls: list[Sgacl] | None = None
    ) -> list[EgressCell]:
        """Cells with SGT tag numbers and SGACL names (ERS gives UUIDs; resolved through the other two lists)."""
        sgts = await self.security_groups() if sgts is None else sgts
        acls = await self.sgacls() if acls is None else acls
        sgt_values = {sg.ise_id: sg.value for sg in sgts if sg.ise_id} | {ANY_SGT_ID: ANY_SGT_VALUE}
        names = {a.ise_id: a.name for a in acls if a.ise_id}
        return [_checked(parse_cell, o, CELL, sgt_values, names) for o in await self._details(CELL)]

    async def read_trustsec(self) -> TrustSecConfig:
        sgts, acls = await asyncio.gather(self.security_groups(), self.sgacls())
        return TrustSecConfig(sgts, acls, await self.egress_cells(sgts, acls))

    # ------------------------------------------------------------------ writes
    async def _write(self, plan: PlannedRequest, dry_run: bool, target: str | None) -> WriteResult:
        if dry_run:
            return WriteResult(plan, sent=False, ise_id=target)
        resp = await self.request(plan.method, plan.path, body=plan.body)
        if plan.method == "POST":
            location = resp.headers.get("Location", "")
            new_id = location.rstrip("/").rsplit("/", 1)[-1] or None
            return WriteResult(plan, sent=True, status=resp.status_code, ise_id=new_id)
        body = _json_or_none(resp) or {}
        fields = ((body.get("UpdatedFieldsList") or {}).get("updatedField") or []) if isinstance(body, dict) else []
        return WriteResult(plan, sent=True, status=resp.status_code, ise_id=target, updated_fields=tuple(fields))

    async def create_sgacl(self, sgacl: Sgacl, *, dry_run: bool = False) -> WriteResult:
        plan = PlannedRequest("POST", f"/ers/config/{SGACL}", sgacl_body(sgacl, with_id=False))
        return await self._write(plan, dry_run, None)

    async def update_sgacl(self, sgacl: Sgacl, *, dry_run: bool = False) -> WriteResult:
        body = sgacl_body(sgacl, with_id=True)
        return await self._write(
            PlannedRequest("PUT", f"/ers/config/{SGACL}/{sgacl.ise_id}", body), dry_run, sgacl.ise_id
        )

    async def put_sgacl(self, sgacl: Sgacl, config: TrustSecConfig, *, dry_run: bool = False) -> WriteResult:
        """Update the SGACL of that name if ISE has one (names are unique there), else create it."""
        existing = next((a for a in config.sgacls if a.name == sgacl.name), None)
        if existing is not None:
            updated = Sgacl(sgacl.name, sgacl.aces, existing.ise_id, sgacl.ip_version, sgacl.description)
            return await self.update_sgacl(updated, dry_run=dry_run)
        return await self.create_sgacl(sgacl, dry_run=dry_run)

    async def create_egress_cell(
        self, cell: EgressCell, config: TrustSecConfig, *, dry_run: bool = False
    ) -> WriteResult:
        plan = PlannedRequest("POST", f"/ers/config/{CELL}", cell_body(cell, config, with_id=False))
        return await self._write(plan, dry_run, None)

    async def update_egress_cell(
        self, cell: EgressCell, config: TrustSecConfig, *, dry_run: bool = False
    ) -> WriteResult:
        body = cell_body(cell, config, with_id=True)
        return await self._write(PlannedRequest("PUT", f"/ers/config/{CELL}/{cell.ise_id}", body), dry_run, cell.ise_id)

    async def put_egress_cell(self, cell: EgressCell, config: TrustSecConfig, *, dry_run: bool = False) -> WriteResult:
        """Create or update the one cell of (src, dst): ISE allows one per pair, so look before creating."""
        existing = config.cell(cell.src_sgt, cell.dst_sgt)
        if existing is not None:
            return await self.update_egress_cell(_with_id(cell, existing.ise_id), config, dry_run=dry_run)
        return await self.create_egress_cell(cell, config, dry_run=dry_run)


def _with_id(cell: EgressCell, ise_id: str | None) -> EgressCell:
    return EgressCell(cell.src_sgt, cell.dst_sgt, cell.sgacls, cell.default_rule, cell.status, ise_id)


def _search_page(result: dict[str, Any], path: str) -> tuple[int, list[dict[str, Any]], str | None]:
    """total, resources and the next page's href of one SearchResult, checked: ISE's shape or a clear ERSError."""

    def bad(what: str) -> ERSError:
        return ERSError(200, "GET", path, [f"malformed SearchResult: {what}"])

    total = result.get("total", 0)
    if type(total) is not int or total < 0:
        raise bad(f"total is {total!r}, expected a non-negative integer")
    resources = result.get("resources") or []
    if not isinstance(resources, list):
        raise bad(f"resources is {type(resources).__name__}, expected a list")
    for i, item in enumerate(resources):
        if not isinstance(item, dict) or not isinstance(item.get("id"), str) or not item["id"]:
            raise bad(f"resources[{i}] has no id string")
    nxt = result.get("nextPage")
    if nxt is not None and not (isinstance(nxt, dict) and isinstance(nxt.get("href", ""), str)):
        raise bad("nextPage is not an object with an href string")
    href = (nxt or {}).get("href") or None
    return total, resources, href


def _same_host_path(href: str) -> str:
    """nextPage hrefs name ISE's own FQDN; keep only path and query so credentials never go to another host."""
    parts = urlsplit(href)
    if not parts.path.startswith("/ers/config/"):
        raise ERSError(200, "GET", href, ["nextPage href is not an /ers/config/ path"])
    return parts.path + (f"?{parts.query}" if parts.query else "")


def _json_or_none(resp: httpx.Response) -> Any:
    if not resp.content or "json" not in resp.headers.get("content-type", ""):
        return None
    try:
        return resp.json()
    except ValueError:
        return None


def _checked(parse: Any, obj: dict[str, Any], resource: str, *args: Any) -> Any:
    try:
        return parse(obj, *args)
    except ValueError as exc:
        raise ERSError(200, "GET", f"/ers/config/{resource}/{obj.get('id')}", [str(exc)]) from exc


async def _gather_all(calls: list[Awaitable[T]]) -> list[T]:
    """All or nothing: the first failure cancels the rest and is raised as itself."""
    tasks: list[asyncio.Task[T]] = []
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(_as_coro(c)) for c in calls]
    except BaseExceptionGroup as eg:
        raise eg.exceptions[0] from None
    return [t.result() for t in tasks]


async def _as_coro(awaitable: Awaitable[T]) -> T:
    return await awaitable
