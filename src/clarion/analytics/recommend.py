"""SGT recommendation per cluster: keep the SGT most members already carry, or propose a new one.

Reusing an existing SGT keeps the deployed policy matrix small; a new SGT is proposed only when
no SGT is carried by a clear majority (``sgt_majority``) of the cluster. SGT 0 (Unknown) never
counts as carried.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence

from clarion.analytics.model import Recommendation

UNKNOWN_SGT = 0
MAX_SGT_NAME = 32  # ISE refuses longer security group names


def sgt_name_from_word(word: str, taken: Iterable[str]) -> str:
    """``"print spoolers"`` -> ``Print_Spoolers``; suffixed ``_2``, ``_3``... when the name is taken."""
    parts = [p for p in re.split(r"[^A-Za-z0-9]+", word) if p]
    base = "_".join(p[:1].upper() + p[1:] for p in parts)[:MAX_SGT_NAME] or "Cluster"
    if base[0].isdigit():
        base = ("SGT_" + base)[:MAX_SGT_NAME]
    taken_lower = {t.lower() for t in taken}
    name, i = base, 2
    while name.lower() in taken_lower:
        suffix = f"_{i}"
        name = base[: MAX_SGT_NAME - len(suffix)] + suffix
        i += 1
    return name


def recommend_sgt(
    members: Sequence[str],
    member_sgts: Sequence[int | None],
    word: str,
    sgt_names: dict[int, str],
    taken_names: set[str],
    majority: float = 0.5,
) -> Recommendation:
    """The recommendation for one cluster; adds a proposed new name to ``taken_names``."""
    carried = Counter(s for s in member_sgts if s is not None and s != UNKNOWN_SGT)
    if carried and members:
        sgt, count = min(carried.items(), key=lambda kv: (-kv[1], kv[0]))
        share = count / len(members)
        if share >= majority:
            disagreeing = sorted(d for d, s in zip(members, member_sgts, strict=True) if s != sgt)
            return Recommendation(
                sgt=sgt,
                sgt_name=sgt_names.get(sgt, f"SGT_{sgt}"),
                is_new=False,
                confidence=round(share, 4),
                disagreeing=disagreeing,
            )
    name = sgt_name_from_word(word, taken_names | set(sgt_names.values()))
    taken_names.add(name)
    return Recommendation(sgt=None, sgt_name=name, is_new=True, confidence=0.0, disagreeing=sorted(members))
