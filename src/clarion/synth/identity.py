"""Users and Active Directory groups of the synthetic campus, with nested groups.

The groups drive SGTs the way a real deployment does (Engineering staff get Developers,
contractors get Contractors), so identity-aware analytics have something to find.
"""

from __future__ import annotations

import numpy as np

from clarion.synth.model import SynthGroup, SynthUser

DOMAIN_DN = "DC=campus,DC=example"
DOMAIN_UPN = "campus.example"

#: group -> groups it is a direct member of. Leaves hold the users.
GROUP_PARENTS: dict[str, tuple[str, ...]] = {
    "Domain Users": (),
    "Staff": (),
    "VPN-Users": (),
    "Server-Admins": (),
    "Engineering": ("Staff",),
    "Team-A": ("Engineering",),
    "Team-B": ("Engineering",),
    "Team-C": ("Engineering",),
    "Finance": ("Staff",),
    "Accounts-Payable": ("Finance",),
    "Payroll": ("Finance",),
    "Sales": ("Staff", "VPN-Users"),
    "Sales-EMEA": ("Sales",),
    "Sales-Americas": ("Sales",),
    "HR": ("Staff",),
    "Marketing": ("Staff",),
    "Operations": ("Staff",),
    "IT": ("Staff",),
    "IT-Admins": ("IT", "VPN-Users", "Server-Admins"),
    "Helpdesk": ("IT",),
    "Facilities": ("Staff",),
    "Security-Officers": ("Facilities",),
    "Executives": ("Staff", "VPN-Users"),
    "Contractors": (),
}

#: leaf group -> share of users in it
LEAF_SHARES: tuple[tuple[str, float], ...] = (
    ("Team-A", 0.12),
    ("Team-B", 0.10),
    ("Team-C", 0.08),
    ("Accounts-Payable", 0.05),
    ("Payroll", 0.03),
    ("Sales-EMEA", 0.08),
    ("Sales-Americas", 0.08),
    ("HR", 0.05),
    ("Marketing", 0.08),
    ("Operations", 0.10),
    ("IT-Admins", 0.03),
    ("Helpdesk", 0.04),
    ("Facilities", 0.04),
    ("Security-Officers", 0.02),
    ("Executives", 0.02),
    ("Contractors", 0.08),
)

_FIRST = [
    "Alice",
    "Aaron",
    "Amira",
    "Ben",
    "Bruno",
    "Carla",
    "Chen",
    "Chloe",
    "Daniel",
    "Dara",
    "Elena",
    "Emil",
    "Fatima",
    "Felix",
    "Grace",
    "Hana",
    "Hugo",
    "Ines",
    "Ivan",
    "Jana",
    "Jonas",
    "Kai",
    "Karim",
    "Laura",
    "Leo",
    "Lina",
    "Mara",
    "Marco",
    "Mei",
    "Nadia",
    "Noah",
    "Nora",
    "Olga",
    "Omar",
    "Paula",
    "Pedro",
    "Priya",
    "Quinn",
    "Rahul",
    "Rosa",
    "Sam",
    "Sara",
    "Sofia",
    "Tariq",
    "Tess",
    "Uma",
    "Victor",
    "Wen",
    "Yara",
    "Yusuf",
    "Zoe",
]
_LAST = [
    "Adams",
    "Alvarez",
    "Bauer",
    "Becker",
    "Brown",
    "Chen",
    "Costa",
    "Dubois",
    "Evans",
    "Fischer",
    "Garcia",
    "Gomez",
    "Hansen",
    "Hoffmann",
    "Ito",
    "Jansen",
    "Kim",
    "Klein",
    "Kowalski",
    "Larsen",
    "Lee",
    "Lopez",
    "Martin",
    "Meyer",
    "Moreau",
    "Muller",
    "Nakamura",
    "Nguyen",
    "Novak",
    "Okafor",
    "Olsen",
    "Patel",
    "Perez",
    "Petrov",
    "Quinn",
    "Rossi",
    "Sato",
    "Schmidt",
    "Silva",
    "Smith",
    "Suzuki",
    "Tanaka",
    "Thomas",
    "Varga",
    "Wagner",
    "Walker",
    "Weber",
    "Wong",
    "Young",
    "Zhang",
]


def domain_sid(rng: np.random.Generator) -> str:
    parts = rng.integers(1_000_000_000, 4_000_000_000, size=3)
    return "S-1-5-21-" + "-".join(str(int(p)) for p in parts)


def make_groups(dom_sid: str) -> list[SynthGroup]:
    """All groups with SIDs and DNs; Domain Users keeps its well-known RID 513."""
    groups = []
    for i, (name, parents) in enumerate(GROUP_PARENTS.items()):
        rid = 513 if name == "Domain Users" else 5_000 + i
        container = "CN=Users" if name == "Domain Users" else "OU=Groups,OU=Campus"
        groups.append(SynthGroup(name, f"{dom_sid}-{rid}", f"CN={name},{container},{DOMAIN_DN}", parents))
    return groups


def department_of(leaf: str) -> str:
    """The top-level group under Staff a leaf belongs to (Contractors stand alone)."""
    name = leaf
    while True:
        parents = [p for p in GROUP_PARENTS[name] if p not in ("VPN-Users", "Server-Admins")]
        if not parents or parents[0] == "Staff":
            return name
        name = parents[0]


def make_users(count: int, rng: np.random.Generator, dom_sid: str) -> list[SynthUser]:
    """``count`` users with unique usernames, each in one leaf group plus Domain Users."""
    leaves = [name for name, _ in LEAF_SHARES]
    shares = np.array([s for _, s in LEAF_SHARES])
    leaf_idx = rng.choice(len(leaves), size=count, p=shares / shares.sum())
    first = rng.integers(0, len(_FIRST), size=count)
    last = rng.integers(0, len(_LAST), size=count)
    taken: dict[str, int] = {}
    users = []
    for i in range(count):
        given, family = _FIRST[int(first[i])], _LAST[int(last[i])]
        base = (given[0] + family).lower()
        n = taken.get(base, 0) + 1
        taken[base] = n
        username = base if n == 1 else f"{base}{n}"
        display = f"{given} {family}" if n == 1 else f"{given} {family} ({n})"
        leaf = leaves[int(leaf_idx[i])]
        users.append(
            SynthUser(
                username=username,
                display_name=display,
                sid=f"{dom_sid}-{1_100 + i}",
                upn=f"{username}@{DOMAIN_UPN}",
                dn=f"CN={display},OU=Users,OU=Campus,{DOMAIN_DN}",
                department=department_of(leaf),
                groups=("Domain Users", leaf),
            )
        )
    return users


def all_groups_of(user: SynthUser) -> set[str]:
    """Transitive group membership (what an LDAP matching-rule-in-chain query returns)."""
    seen: set[str] = set()
    todo = list(user.groups)
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(GROUP_PARENTS[name])
    return seen
