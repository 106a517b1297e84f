"""A deterministic, seeded sandbox population for the Dukcapil simulator.

Families share a No. KK, an address, an RT/RW and a desa; every NIK and No. KK is valid by
the Dukcapil rules (kecamatan prefix, birth or registration date, women's day + 40, serial
from 0001). The same seed always gives the same people: everything is drawn from one
`random.Random(seed)`. All people are invented; any likeness to real persons is chance.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import functools
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Final, Literal

Status = Literal["hidup", "meninggal", "nonaktif"]

#: Nobody in the sandbox is born or registered after this day, whatever today is.
REFERENCE_DATE: Final = dt.date(2025, 6, 30)
PROVINCES: Final = frozenset(
    [*range(11, 20), 21, *range(31, 37), *range(51, 54), *range(61, 66), *range(71, 77)]
    + [81, 82, *range(91, 97)]
)

_MALE: Final = tuple(
    "AGUS ASEP BUDI CECEP DADANG DEDE DENI DIDIN ENDANG FAJAR GILANG HENDRA IWAN JAJANG KOMAR"
    " RIDWAN RUDI SUPRIADI UJANG WAWAN YAYAN YUSUF ADE RIZKY DIMAS ILHAM TAUFIK ENCEP ARIF".split()
)
_FEMALE: Final = tuple(
    "AI ANI CUCU DEWI EUIS FITRI IDA IMAS LILIS NENG NENENG NURUL POPON RINA SITI SRI TATI"
    " TITIN YANI YULI WULAN INTAN SALSA NADIA AYU RATNA LINA ELIS KOKOM".split()
)
_MALE_SECOND: Final = tuple(
    "SAPUTRA HIDAYAT PERMANA NUGRAHA KURNIAWAN SETIAWAN RAMDANI SOPIAN SUNARYA GUNAWAN"
    " SURYANA MULYANA HERMAWAN FIRMANSYAH RAHMAN SUHERMAN SUPRIATNA KUSNADI".split()
)
_FEMALE_SECOND: Final = tuple(
    "LESTARI RAHMAWATI WULANDARI NURHAYATI SUMIATI KURNIASIH MARLINA HERAWATI SULASTRI"
    " AMINAH SUSANTI PERTIWI FAUZIAH NURJANAH".split()
)
#: Birthplaces `NAME:weight`, weighted towards the city the demo regions lie in.
_PLACES: Final = tuple(
    (place, int(weight))
    for place, weight in (
        item.split(":")
        for item in (
            "BANDUNG:40 CIMAHI:8 GARUT:6 TASIKMALAYA:5 SUMEDANG:5 CIANJUR:5 SUKABUMI:4 BOGOR:4"
            " CIAMIS:4 KUNINGAN:3 MAJALENGKA:3 SUBANG:3 PURWAKARTA:3 KARAWANG:2 CIREBON:3"
            " INDRAMAYU:2 SOREANG:2 LEMBANG:2 JAKARTA:4 SEMARANG:1"
        ).split()
    )
)
_STREETS: Final = tuple(
    "JL. SETIABUDI|JL. GEGERKALONG HILIR|JL. SARIJADI|JL. SUKAJADI|JL. CIPAGANTI|JL. DAGO"
    "|JL. SEKELOA|JL. CIHAMPELAS|JL. PASTEUR|JL. CIROYOM|JL. ANDIR|JL. KEBON JERUK"
    "|JL. GARUDA|JL. PAJAJARAN|JL. SUKARASA|JL. ISOLA|GG. MESJID|GG. SAUYUNAN|GG. H. ACHMAD"
    "|GG. MARGALUYU|KOMP. SARIJADI BLOK C".split("|")
)
_FAMILY_SIZES: Final = ((1, 8), (2, 17), (3, 22), (4, 26), (5, 17), (6, 10))
_DEMO_CSV: Final = "data/wilayah_demo.csv"  # inside the `hub` package


@dataclass(frozen=True)
class Person:
    """One resident as the national register knows them (names upper-case, as in SIAK)."""

    nik: str
    no_kk: str
    nama: str
    tempat_lahir: str
    tanggal_lahir: dt.date
    jenis_kelamin: Literal["L", "P"]
    alamat: str
    rt: str
    rw: str
    kode_wilayah: str
    status: Status = "hidup"

    def elements(self) -> dict[str, str]:
        """This person as Dukcapil request elements (wire names), region parts included."""
        prop, kab, kec, kel = self.kode_wilayah.split(".")
        return {
            "NIK": self.nik,
            "NO_KK": self.no_kk,
            "NAMA_LGKP": self.nama,
            "TMPT_LHR": self.tempat_lahir,
            "TGL_LHR": self.tanggal_lahir.strftime("%d-%m-%Y"),
            "JENIS_KLMIN": "Laki-Laki" if self.jenis_kelamin == "L" else "Perempuan",
            "ALAMAT": self.alamat,
            "NO_RT": self.rt,
            "NO_RW": self.rw,
            "NO_PROP": prop,
            "NO_KAB": kab,
            "NO_KEC": kec,
            "NO_KEL": kel,
        }


@functools.cache
def demo_kelurahan() -> tuple[str, ...]:
    """Dotted desa/kelurahan codes of the hub's bundled demo subset, in file order."""
    text = resources.files("hub").joinpath(_DEMO_CSV).read_text(encoding="utf-8-sig")
    return tuple(row["kode"] for row in csv.DictReader(text.splitlines()) if row["level"] == "desa")


def is_valid_nik(nik: str, *, kk: bool = False) -> bool:
    """Whether `nik` (or a No. KK, with `kk=True`) follows the Dukcapil format rules."""
    if len(nik) != 16 or not (nik.isascii() and nik.isdigit()):
        return False
    if int(nik[:2]) not in PROVINCES or nik[12:] == "0000":
        return False
    day, month, yy = int(nik[6:8]), int(nik[8:10]), int(nik[10:12])
    if not kk and day > 40:
        day -= 40
    try:
        dt.date(2000 + yy, month, day)  # a leap year whenever yy % 4 == 0, as 19yy is too
    except ValueError:
        return False
    return True


def _region_prefix(kode: str) -> str:
    parts = kode.split(".")
    if (
        len(parts) != 4
        or [len(p) for p in parts] != [2, 2, 2, 4]
        or not kode.replace(".", "").isdigit()
    ):
        raise ValueError(f"not a dotted desa/kelurahan code: {kode!r}")
    if int(parts[0]) not in PROVINCES:
        raise ValueError(f"unknown provinsi in {kode!r}")
    return "".join(parts[:3])


class _Numbers:
    """Hands out serials per prefix + date, so every NIK and No. KK is unique."""

    def __init__(self) -> None:
        self._next: dict[str, int] = {}

    def take(self, stem: str) -> str | None:
        serial = self._next.get(stem, 1)
        if serial > 9999:
            return None
        self._next[stem] = serial + 1
        return f"{stem}{serial:04d}"


def _random_date(rng: random.Random, start: dt.date, end: dt.date) -> dt.date:
    return start + dt.timedelta(days=rng.randint(0, max(0, (end - start).days)))


class _Builder:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.niks = _Numbers()
        self.kks = _Numbers()
        self.places = [place for place, _ in _PLACES]
        self.place_weights = [weight for _, weight in _PLACES]

    def name(self, gender: str, family: str | None = None) -> str:
        rng = self.rng
        first = rng.choice(_MALE if gender == "L" else _FEMALE)
        if family is not None and rng.random() < 0.5:
            return f"{first} {family}"
        if rng.random() < 0.15:
            return first  # many Sundanese elders have one name only
        return f"{first} {rng.choice(_MALE_SECOND if gender == 'L' else _FEMALE_SECOND)}"

    def nik(self, prefix: str, birth: dt.date, gender: str) -> str | None:
        day = birth.day + (40 if gender == "P" else 0)
        return self.niks.take(f"{prefix}{day:02d}{birth:%m%y}")

    def family(self, kode: str, size: int) -> list[Person]:
        rng = self.rng
        prefix = _region_prefix(kode)
        registered = _random_date(rng, dt.date(2004, 1, 1), REFERENCE_DATE)
        no_kk = self.kks.take(f"{prefix}{registered:%d%m%y}")
        if no_kk is None:
            return []
        alamat = f"{rng.choice(_STREETS)} NO. {rng.randint(1, 180)}"
        rt, rw = f"{rng.randint(1, 15):03d}", f"{rng.randint(1, 12):03d}"
        head_birth = _random_date(rng, dt.date(1945, 1, 1), dt.date(1998, 12, 31))
        head_gender: Literal["L", "P"] = "L" if size == 1 or rng.random() < 0.9 else "P"
        members: list[tuple[str, dt.date, Literal["L", "P"], str]] = []
        head_name = self.name(head_gender)
        family_name = head_name.split(" ")[-1] if " " in head_name else None
        members.append((head_name, head_birth, head_gender, self.place()))
        if size >= 2:
            spouse_gender: Literal["L", "P"] = "P" if head_gender == "L" else "L"
            spouse_birth = head_birth + dt.timedelta(days=rng.randint(-6 * 365, 3 * 365))
            members.append((self.name(spouse_gender), spouse_birth, spouse_gender, self.place()))
        for _ in range(size - len(members)):
            start = head_birth + dt.timedelta(days=20 * 365)
            end = min(head_birth + dt.timedelta(days=42 * 365), REFERENCE_DATE)
            birth = _random_date(rng, start, end)
            gender: Literal["L", "P"] = rng.choice(("L", "P"))
            place = "BANDUNG" if rng.random() < 0.8 else self.place()
            members.append((self.name(gender, family_name), birth, gender, place))
        people = []
        for nama, birth, gender, place in members:
            nik = self.nik(prefix, birth, gender)
            if nik is None:
                continue  # 9,999 people of one kecamatan share this birthday: skip one more
            people.append(Person(nik, no_kk, nama, place, birth, gender, alamat, rt, rw, kode))
        return people

    def place(self) -> str:
        return self.rng.choices(self.places, self.place_weights)[0]


def generate_population(
    seed: int,
    size: int,
    wilayah: Sequence[str] | None = None,
    *,
    deceased_share: float = 0.03,
    inactive_share: float = 0.01,
) -> list[Person]:
    """`size` invented residents of `wilayah` (dotted desa codes; default: `demo_kelurahan()`).

    About `deceased_share` of them are `"meninggal"` and `inactive_share` `"nonaktif"`. The
    same arguments always give the same list, in the same order.
    """
    if size < 0:
        raise ValueError("size must not be negative")
    if not (0 <= deceased_share <= 1 and 0 <= inactive_share <= 1):
        raise ValueError("shares must lie between 0 and 1")
    if deceased_share + inactive_share > 1:
        raise ValueError("deceased_share + inactive_share must not exceed 1")
    regions = list(demo_kelurahan() if wilayah is None else wilayah)
    if not regions:
        raise ValueError("wilayah must name at least one desa/kelurahan")
    for kode in regions:
        _region_prefix(kode)
    rng = random.Random(seed)
    builder = _Builder(rng)
    sizes = [n for n, _ in _FAMILY_SIZES]
    weights = [w for _, w in _FAMILY_SIZES]
    people: list[Person] = []
    while len(people) < size:
        family_size = min(rng.choices(sizes, weights)[0], size - len(people))
        people.extend(builder.family(rng.choice(regions), family_size))
    return [_with_status(rng, p, deceased_share, inactive_share) for p in people]


def _with_status(rng: random.Random, person: Person, deceased: float, inactive: float) -> Person:
    draw = rng.random()
    if draw < deceased:
        return _replace_status(person, "meninggal")
    if draw < deceased + inactive:
        return _replace_status(person, "nonaktif")
    return person


def _replace_status(person: Person, status: Status) -> Person:
    return dataclasses.replace(person, status=status)


def index_by_nik(people: Sequence[Person]) -> Mapping[str, list[Person]]:
    """NIK -> every person registered under it (more than one is a duplicate record)."""
    found: dict[str, list[Person]] = {}
    for person in people:
        found.setdefault(person.nik, []).append(person)
    return found


def person_from_nik(
    nik: str,
    nama: str,
    no_kk: str,
    kode_wilayah: str = "32.73.01.1001",
    *,
    status: Status = "hidup",
    tempat_lahir: str = "BANDUNG",
    alamat: str = "-",
) -> Person:
    """A resident whose birth date and sex are read from the NIK itself (sandbox fixtures:
    the demo's people, test data). Names are stored upper-case, as SIAK does."""
    if not is_valid_nik(nik):
        raise ValueError("not a valid NIK")
    day, month, yy = int(nik[6:8]), int(nik[8:10]), int(nik[10:12])
    gender: Literal["L", "P"] = "P" if day > 40 else "L"
    year = 2000 + yy if 2000 + yy <= REFERENCE_DATE.year else 1900 + yy
    born = dt.date(year, month, day - 40 if day > 40 else day)
    return Person(
        nik, no_kk, nama.upper(), tempat_lahir, born, gender, alamat.upper(), "001", "001",
        kode_wilayah, status,
    )  # fmt: skip
