"""Who is calling: a person (operator, verifikator, admin, auditor) or a system, with a region.

Regions are dotted prefixes of Kemendagri codes: `32.73.01.1001` (one kelurahan),
`32.73.01` (a kecamatan), `32.73` (a kota), `32` (a provinsi), `""` (nasional). A principal
covers a code when the code equals its prefix or continues it at a dot, so `32.7` covers
nothing and `32.73` does not cover `32.74.01`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final, Literal

Role = Literal["operator", "verifikator", "admin", "auditor", "system"]
ROLES: Final[tuple[Role, ...]] = ("operator", "verifikator", "admin", "auditor", "system")

#: Every scope the API knows. People get theirs from their role; systems from registration.
SCOPES: Final = frozenset(
    {
        "batches:read",
        "batches:write",
        "records:read",
        "records:write",
        "records:approve",
        "pii:read",
        "nik:verify",
        "stats:read",
        "deliveries:read",
        "deliveries:write",
        "audit:read",
    }
)

ROLE_SCOPES: Final[dict[str, frozenset[str]]] = {
    "operator": frozenset(
        {
            "batches:read",
            "batches:write",
            "records:read",
            "records:write",
            "pii:read",
            "nik:verify",
            "stats:read",
        }  # fmt: skip
    ),
    "verifikator": frozenset(
        {
            "batches:read",
            "records:read",
            "records:approve",
            "pii:read",
            "nik:verify",
            "stats:read",
        }  # fmt: skip
    ),
    "admin": SCOPES,
    "auditor": frozenset({"audit:read", "stats:read", "batches:read", "records:read"}),
    "system": frozenset(),  # exactly the scopes the client was registered with
}

#: The widest region each role may be given (number of dotted parts; 0 = nasional).
ROLE_LEVEL: Final[dict[str, int]] = {"operator": 4, "verifikator": 3}


def covers(prefix: str, kode: str) -> bool:
    """True when region `prefix` contains `kode` (whole dotted parts only)."""
    return prefix == "" or kode == prefix or kode.startswith(prefix + ".")


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller. `subject` is `user:<name>` or `client:<client_id>`."""

    subject: str
    role: Role
    wilayah: str
    scopes: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def for_role(
        cls, subject: str, role: Role, wilayah: str, scopes: frozenset[str] = frozenset()
    ) -> Principal:
        granted = scopes if role == "system" else ROLE_SCOPES[role]
        return cls(subject, role, wilayah, frozenset(granted) & SCOPES)

    def covers(self, kode: str) -> bool:
        return covers(self.wilayah, kode)

    def may(self, scope: str) -> bool:
        return scope in self.scopes
