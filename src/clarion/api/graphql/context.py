"""Per-request context: the store, the caller, and DataLoaders that batch lookups."""

from __future__ import annotations

from typing import Any

from fastapi.concurrency import run_in_threadpool
from strawberry.dataloader import DataLoader
from strawberry.fastapi import BaseContext

from clarion.api.auth import Principal
from clarion.config import Settings
from clarion.jobs.runner import JobRunner
from clarion.store.port import GraphStore, Row


class Context(BaseContext):
    def __init__(
        self, store: GraphStore, settings: Settings, principal: Principal | None, jobs: JobRunner | None = None
    ) -> None:
        super().__init__()
        self.store = store
        self._jobs = jobs
        self.settings = settings
        self.principal = principal
        self.switch_loader: DataLoader[str, Row | None] = DataLoader(load_fn=self._load_switches)

    @property
    def jobs(self) -> JobRunner:
        if self._jobs is None:
            raise RuntimeError("this server runs no background jobs")
        return self._jobs

    async def read(self, statement: str, params: dict[str, Any] | None = None) -> list[Row]:
        """Run a named read statement off the event loop."""
        return await run_in_threadpool(self.store.read, statement, params or {})

    async def _load_switches(self, ids: list[str]) -> list[Row | None]:
        rows = await self.read("query/switches_by_id", {"ids": list(ids)})
        by_id = {r["switch"]["switch_id"]: r["switch"] for r in rows}
        return [by_id.get(i) for i in ids]
