"""Learning templates from template and options-template sets: definition, refresh, withdrawal, limits.

A learned template releases the data sets that waited for it; a byte-identical template set only
refreshes the templates it defined.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from clarion_edge.netflow.fields import Field, Plan
from clarion_edge.netflow.group import bump
from clarion_edge.netflow.state import ExporterState, Template, TemplateKey
from clarion_edge.netflow.templates import (
    BadSetError,
    TemplateSpec,
    min_record_length,
    parse_ipfix_templates,
    parse_v9_options_templates,
    parse_v9_templates,
)

if TYPE_CHECKING:
    from clarion_edge.netflow.decoder import Decoder

#: Compiled templates kept (shared by every exporter sending the same layout).
PLAN_CACHE_SIZE = 4096
#: Byte-identical template sets remembered per exporter (see ``learn_template_set``).
MAX_TEMPLATE_SETS = 64


def learn_template_set(
    decoder: Decoder, state: ExporterState, version: int, domain: int, set_id: int, payload: bytes, now: int,
    stats: dict[str, int],
) -> None:  # fmt: skip
    """Learn a template set. Exporters resend the same set every few datagrams: a byte-identical set
    whose templates are all still in place only refreshes them, without parsing."""
    cache_key = (version, domain, set_id, payload)
    known = state.template_sets.get(cache_key)
    if known is not None and all(state.templates.get(k) is t for k, t in known):
        for _, t in known:
            t.refreshed_ms = now
        return
    if version == 9:
        specs = parse_v9_templates(payload) if set_id == 0 else parse_v9_options_templates(payload)
    else:
        specs = parse_ipfix_templates(payload, set_id == 3)
    learned: list[tuple[TemplateKey, Template]] = []
    cacheable = True  # not after a withdrawal, refusal or flood
    try:
        for spec in specs:
            key = _learn(decoder, spec, state, version, domain, now, stats)
            template = state.templates.get(key) if key is not None else None
            if key is None or template is None:
                cacheable = False
            else:
                learned.append((key, template))
    except BadSetError as bad:
        bump(stats, bad.reason)
        return
    if not cacheable:
        return
    if len(state.template_sets) >= MAX_TEMPLATE_SETS:
        state.template_sets.clear()
    state.template_sets[cache_key] = learned


def _learn(
    decoder: Decoder,
    spec: TemplateSpec,
    state: ExporterState,
    version: int,
    domain: int,
    now: int,
    stats: dict[str, int],
) -> TemplateKey | None:
    """Learn or refresh one template; returns its key, or None when it was refused or withdrawn."""
    tid = spec.template_id
    if not spec.fields and version == 10:
        _withdraw(spec, state, version, domain, stats)
        return None
    if tid < 256 or min_record_length(spec.fields) == 0:
        bump(stats, "bad_template")
        return None
    key = (version, domain, tid)
    plan = _plan(decoder, spec.fields)
    existing = state.templates.get(key)
    if existing is not None and existing.plan is plan and existing.options == spec.options:
        existing.refreshed_ms = now
        return key
    if existing is None and len(state.templates) >= decoder._max_templates:
        if now - state.last_purge_ms > 1000:
            decoder._purge(state, now, stats)
        if len(state.templates) >= decoder._max_templates:
            bump(stats, "template_flood")
            return None
    state.put(key, Template(plan, spec.options, now, state.domain(version, domain)))
    bump(stats, "templates")
    if state.pending:
        before = state.pending_bytes
        waiting = state.take_pending(key)
        decoder._pending_bytes -= before - state.pending_bytes
        for p in waiting:
            if now - p.received_ms <= decoder._pending_ttl_ms:
                bump(stats, "pending_decoded")
                decoder._data(key, p.payload, p.export_ms, p.uptime_ms, state, now, stats)
            else:
                bump(stats, "pending_expired")
    return key


def _withdraw(spec: TemplateSpec, state: ExporterState, version: int, domain: int, stats: dict[str, int]) -> None:
    """IPFIX withdrawal: one template, or all (options) templates when the id equals the set id."""
    tid = spec.template_id
    if tid in (2, 3):
        doomed = [k for k, t in state.templates.items() if k[:2] == (version, domain) and t.options == spec.options]
    elif tid >= 256:
        doomed = [(version, domain, tid)] if (version, domain, tid) in state.templates else []
    else:
        bump(stats, "bad_template")
        return
    for k in doomed:
        state.drop(k)
    bump(stats, "template_withdrawn", len(doomed))


def _plan(decoder: Decoder, fields: tuple[Field, ...]) -> Plan:
    """Compiled templates are shared: many exporters send the same layout."""
    plan = decoder._plans.get(fields)
    if plan is None:
        if len(decoder._plans) >= PLAN_CACHE_SIZE:
            del decoder._plans[next(iter(decoder._plans))]
        plan = decoder._plans[fields] = Plan(fields)
    return plan
