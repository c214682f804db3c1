"""``python -m clarion.synth OUT_DIR``: write a synthetic campus's EdgeGraphs as JSON files.

The files feed ``clarion-edge send FILE`` demos; the summary printed is the campus's totals,
which the server's counters must match once every file is applied.
"""

from __future__ import annotations

import argparse
import json
import sys

from clarion.synth.campus import generate_campus, write_edge_graphs
from clarion.synth.model import CampusSpec


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m clarion.synth", description=__doc__)
    parser.add_argument("out_dir", help="directory to write <agent_id>-<seq>.json files into")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--switches", type=int, default=8)
    parser.add_argument("--devices", type=int, default=2_000)
    parser.add_argument("--remote-hosts", type=int, default=200)
    parser.add_argument("--days", type=int, default=1)
    parser.add_argument("--window-ms", type=int, default=3_600_000)
    parser.add_argument("--flows-per-device-per-day", type=float, default=40.0)
    parser.add_argument("--mac-dropout", type=float, default=0.0, help="chance a MAC is missing in a window")
    parser.add_argument("--agent-id-prefix", default="edge-")
    args = parser.parse_args(argv)
    try:
        spec = CampusSpec(
            seed=args.seed,
            switches=args.switches,
            devices=args.devices,
            remote_hosts=args.remote_hosts,
            days=args.days,
            window_ms=args.window_ms,
            flows_per_device_per_day=args.flows_per_device_per_day,
            mac_dropout=args.mac_dropout,
        )
        campus = generate_campus(spec)
        paths = write_edge_graphs(campus, args.out_dir, agent_id_prefix=args.agent_id_prefix)
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps({"files": len(paths), **campus.stats()}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
