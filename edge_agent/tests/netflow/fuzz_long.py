"""Long fuzz run of the NetFlow decoders (on demand, not part of the suite).

    .venv/bin/python edge_agent/tests/netflow/fuzz_long.py [--seconds 300] [--seed N]

Feeds random structured datagrams (random templates with random fields, enterprise and
variable-length ones included, and records that fit them), mutations of them, and plain noise
to one long-lived decoder from many exporters with an advancing clock. Fails on any exception
or internal error, on a datagram taking over half a CPU-second (a hang), on state beyond its limits, or when
resident memory keeps growing after warm-up.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import nfbuild as b

from clarion_edge.netflow.decoder import Decoder
from clarion_edge.netflow.records import FLOW_DTYPE

IES = [1, 2, 4, 6, 7, 8, 10, 11, 12, 14, 21, 22, 27, 28, 32, 34, 48, 50, 56, 57, 58, 59, 80, 81, 85, 86, 139, 150,
       151, 152, 153, 154, 155, 158, 159, 160, 302, 305, 306, 309, 310, 82, 96, 34000, 34001, 0, 9999]  # fmt: skip
LIMITS = {"max_templates_per_exporter": 64, "pending_max_datagrams": 32, "max_exporters": 256}


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def random_fields(rng: random.Random, ipfix: bool) -> list[tuple[int, ...]]:
    fields: list[tuple[int, ...]] = []
    for _ in range(rng.randint(1, 24)):
        ie = rng.choice(IES)
        length = rng.choice([0, 1, 2, 3, 4, 6, 8, 16, rng.randint(1, 40)] + ([b.VARLEN] if ipfix else []))
        if ipfix and ie >= 32768:
            fields.append((ie & 0x7FFF, length, 9))
        elif ipfix and rng.random() < 0.1:
            fields.append((rng.randint(1, 0x7FFF), length, rng.randint(1, 1 << 32 - 1)))
        else:
            fields.append((ie if ipfix is False or ie < 32768 else ie & 0x7FFF, length))
    return fields


def random_record(rng: random.Random, fields: list[tuple[int, ...]]) -> bytes:
    out = b""
    for f in fields:
        if f[1] == b.VARLEN:
            out += b.varlen(rng.randbytes(rng.choice([0, 1, 5, 254, 255, 300])))
        else:
            out += rng.randbytes(f[1])
    return out


def structured(rng: random.Random, version: int | None = None) -> bytes:
    version = version or rng.choice([5, 9, 10])
    tid = rng.randint(250, 400)
    if version == 5:
        recs = [b.v5_record("10.0.0.1", "10.0.0.2", packets=rng.randint(0, 99)) for _ in range(rng.randint(0, 31))]
        return b.v5(recs, sampling=rng.randint(0, 0xFFFF), uptime=rng.randint(0, 1 << 32 - 1))
    ipfix = version == 10
    fields = random_fields(rng, ipfix)
    records = b"".join(random_record(rng, fields) for _ in range(rng.randint(0, 20)))
    sets = []
    if rng.random() < 0.7:
        if ipfix:
            options = rng.random() < 0.3
            body = (
                b.ipfix_options_template(tid, rng.randint(0, len(fields)), fields)  # type: ignore[arg-type]
                if options
                else b.ipfix_template(tid, fields)  # type: ignore[arg-type]
            )
            sets.append(b.flowset(3 if options else 2, body))
        elif rng.random() < 0.3:
            k = rng.randint(0, len(fields))
            sets.append(b.flowset(1, b.v9_options_template(tid, fields[:k], fields[k:])))  # type: ignore[arg-type]
        else:
            sets.append(b.flowset(0, b.v9_template(tid, fields)))  # type: ignore[arg-type]
    if rng.random() < 0.1 and ipfix:
        sets.append(b.flowset(2, b.u(rng.choice([2, 3, tid]), 2) + b.u(0, 2)))  # withdrawal
    sets.append(b.flowset(tid, records, pad=rng.random() < 0.5))
    rng.shuffle(sets)
    if ipfix:
        return b.ipfix(sets, domain=rng.randint(0, 3))
    return b.v9(sets, source_id=rng.randint(0, 3))


def mutate(rng: random.Random, data: bytes) -> bytes:
    buf = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        op = rng.randrange(5)
        if op == 0 and buf:
            buf[rng.randrange(len(buf))] = rng.randrange(256)
        elif op == 1 and buf:
            del buf[rng.randrange(len(buf)) :]
        elif op == 2:
            buf += rng.randbytes(rng.randint(1, 64))
        elif op == 3 and len(buf) > 6:
            pos = rng.randrange(2, len(buf) - 2)
            buf[pos : pos + 2] = rng.choice([b"\x00\x00", b"\xff\xff", b"\x00\x04", b"\x01\x00", b"\x00\x01"])
        elif op == 4 and len(buf) > 8:
            a, c = sorted(rng.sample(range(len(buf)), 2))
            buf[a:a] = buf[a:c]
    return bytes(buf[:65535])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=300)
    parser.add_argument("--seed", type=int, default=int(time.time()))
    args = parser.parse_args()
    rng = random.Random(args.seed)
    decoder = Decoder(**LIMITS)  # type: ignore[arg-type]
    exporters = [f"10.9.{i // 256}.{i % 256}:2055" for i in range(40)]
    start = time.monotonic()
    clock_ms, datagrams, flows, slowest, warm_rss = 0, 0, 0, 0.0, 0.0
    while time.monotonic() - start < args.seconds:
        batch = []
        # A third of the batches come from one exporter and are v5 (mutated or not): the decoder's joined v5 path.
        one = rng.choice(exporters) if rng.random() < 0.33 else None
        for _ in range(rng.choice([1, 1, 4, 32])):
            r = rng.random()
            v = 5 if one else None
            data = structured(rng, v) if r < 0.5 else mutate(rng, structured(rng, v)) if r < 0.9 else rng.randbytes(99)
            exporter = one or (rng.choice(exporters) if rng.random() < 0.99 else f"spoof-{rng.randrange(1 << 30)}")
            clock_ms += rng.choice([0, 1, 10, 1000, 60_000])
            batch.append((data, exporter, clock_ms))
        t0 = time.process_time()  # CPU time: the machine may be shared, wall time says little about a hang
        out = decoder.decode_batch(batch)
        slowest = max(slowest, (time.process_time() - t0) / len(batch))
        assert out.dtype == FLOW_DTYPE
        datagrams += len(batch)
        flows += len(out)
        if slowest > 0.5:
            raise SystemExit(f"a datagram took {slowest:.2f} CPU-s to decode (seed {args.seed})")
        if datagrams % 20_000 < len(batch):
            errors = sum(c.get("internal_error", 0) for c in decoder.stats.values())
            assert errors == 0, f"internal errors (seed {args.seed}): see the log"
            assert decoder.template_count <= LIMITS["max_templates_per_exporter"] * LIMITS["max_exporters"]
            assert decoder.pending_count <= LIMITS["pending_max_datagrams"] * LIMITS["max_exporters"]
            if not warm_rss and time.monotonic() - start > min(30, args.seconds / 5):
                warm_rss = rss_mb()
    growth = rss_mb() - warm_rss if warm_rss else 0.0
    result = {
        "seed": args.seed, "seconds": round(time.monotonic() - start, 1), "datagrams": datagrams, "flows": flows,
        "slowest_datagram_cpu_ms": round(slowest * 1000, 2), "max_rss_mb": round(rss_mb(), 1),
        "rss_growth_after_warmup_mb": round(growth, 1), "templates": decoder.template_count,
        "pending": decoder.pending_count, "exporters_with_stats": len(decoder.stats),
        "internal_errors": sum(c.get("internal_error", 0) for c in decoder.stats.values()),
    }  # fmt: skip
    print(json.dumps(result))
    if growth > 64:
        print("resident memory kept growing after warm-up", file=sys.stderr)
        return 1
    return 1 if result["internal_errors"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
