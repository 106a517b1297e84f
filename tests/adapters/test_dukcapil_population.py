"""The sandbox population: deterministic, valid NIKs and KKs, families, statuses."""

from __future__ import annotations

from collections import Counter, defaultdict

import pytest

from adapters.dukcapil.population import (
    REFERENCE_DATE,
    Person,
    demo_kelurahan,
    generate_population,
    is_valid_nik,
)
from hub.normalise import make_nik, nik_birth_date
from hub.schemas import SchemaRegistry
from hub.wilayah import demo_csv_text, read_csv

KELAHIRAN = SchemaRegistry.load().get("kelahiran")
HUB_NIK = make_nik(KELAHIRAN.fields["nik_ibu"])
HUB_KK = make_nik(KELAHIRAN.fields["no_kk"], kk=True)
PEOPLE = generate_population(1, 2000)


def test_same_seed_same_people_other_seed_other_people():
    assert generate_population(1, 2000) == PEOPLE
    assert generate_population(2, 2000) != PEOPLE
    assert generate_population(1, 300) == generate_population(1, 300)


@pytest.mark.parametrize("size", [0, 1, 7, 2000])
def test_exact_size(size):
    assert len(generate_population(5, size)) == size


def test_niks_are_valid_unique_and_match_the_person():
    assert len({p.nik for p in PEOPLE}) == len(PEOPLE)
    for person in PEOPLE:
        assert HUB_NIK(person.nik) == (person.nik, ())
        assert HUB_KK(person.no_kk) == (person.no_kk, ())
        assert is_valid_nik(person.nik)
        assert is_valid_nik(person.no_kk, kk=True)
        kecamatan = person.kode_wilayah.replace(".", "")[:6]
        assert person.nik.startswith(kecamatan)
        assert person.no_kk.startswith(kecamatan)
        assert nik_birth_date(person.nik, REFERENCE_DATE) == (
            person.tanggal_lahir,
            person.jenis_kelamin,
        )
        assert person.nik[12:] != "0000"
        assert person.tanggal_lahir <= REFERENCE_DATE


def test_serials_start_at_0001():
    assert Counter(p.nik[12:] for p in PEOPLE).most_common(1)[0][0] == "0001"


def test_families_share_card_address_and_region():
    families: dict[str, list[Person]] = defaultdict(list)
    for person in PEOPLE:
        families[person.no_kk].append(person)
    assert len(families) < len(PEOPLE) / 2
    assert sum(len(members) >= 3 for members in families.values()) > len(families) / 3
    for members in families.values():
        assert len({(p.alamat, p.rt, p.rw, p.kode_wilayah) for p in members}) == 1


def test_fields_look_like_siak():
    for person in PEOPLE:
        assert person.nama == person.nama.upper()
        assert person.nama.strip()
        assert person.tempat_lahir.isupper()
        assert len(person.rt) == len(person.rw) == 3
        assert person.rt.isdigit()
        assert person.rw.isdigit()
        assert person.jenis_kelamin in {"L", "P"}
        assert person.kode_wilayah in demo_kelurahan()
    genders = Counter(p.jenis_kelamin for p in PEOPLE)
    assert min(genders.values()) > 800
    assert len({p.nama for p in PEOPLE}) > 500


def test_status_shares():
    statuses = Counter(p.status for p in PEOPLE)
    assert 20 <= statuses["meninggal"] <= 120  # 3 % of 2,000
    assert 5 <= statuses["nonaktif"] <= 50  # 1 %
    assert set(statuses) == {"hidup", "meninggal", "nonaktif"}
    assert {p.status for p in generate_population(1, 200, deceased_share=0, inactive_share=0)} == {
        "hidup"
    }
    everyone_dead = generate_population(1, 50, deceased_share=1.0, inactive_share=0.0)
    assert {p.status for p in everyone_dead} == {"meninggal"}


def test_status_does_not_change_the_people():
    other = generate_population(1, 2000, deceased_share=0, inactive_share=0)
    assert [p.nik for p in other] == [p.nik for p in PEOPLE]


def test_chosen_wilayah():
    people = generate_population(3, 100, ["11.01.01.2001", "91.05.02.3002"])
    assert {p.kode_wilayah for p in people} == {"11.01.01.2001", "91.05.02.3002"}
    assert all(p.nik[:6] in {"110101", "910502"} for p in people)


@pytest.mark.parametrize(
    "wilayah", [[], ["32.73.01"], ["3273011001"], ["99.73.01.1001"], ["32.73.01.10a1"]]
)
def test_bad_wilayah(wilayah):
    with pytest.raises(ValueError, match="wilayah|code|provinsi"):
        generate_population(1, 10, wilayah)


@pytest.mark.parametrize(
    "kwargs",
    [{"size": -1}, {"deceased_share": 1.5}, {"deceased_share": 0.6, "inactive_share": 0.6}],
)
def test_bad_arguments(kwargs):
    with pytest.raises(ValueError):  # noqa: PT011
        generate_population(**{"seed": 1, "size": 10, **kwargs})


def test_demo_kelurahan_are_the_level_4_rows_of_the_demo_csv():
    expected = tuple(w.kode for w in read_csv(demo_csv_text().splitlines()) if w.level == 4)
    assert demo_kelurahan() == expected
    assert len(expected) > 10


@pytest.mark.parametrize(
    "nik",
    [
        "3273015708900001",
        "3273011708900001",
        "3273016902000001",
        "3273012902000001",
        "3273015708900000",
        "3273013213900001",
        "3273017213900001",
        "3273012902010001",
        "9973011708900001",
        "327301170890001",
        "32730117089000a1",
        "3273011713900001",
    ],
)
def test_is_valid_nik_agrees_with_the_hub(nik):
    assert is_valid_nik(nik) is (HUB_NIK(nik)[0] is not None)
    assert is_valid_nik(nik, kk=True) is (
        make_nik(KELAHIRAN.fields["no_kk"], kk=True)(nik)[0] is not None
    )


def test_elements_use_wire_names():
    person = PEOPLE[0]
    elements = person.elements()
    assert elements["NIK"] == person.nik
    assert elements["TGL_LHR"] == person.tanggal_lahir.strftime("%d-%m-%Y")
    assert elements["JENIS_KLMIN"] in {"Laki-Laki", "Perempuan"}
    assert ".".join(elements[k] for k in ("NO_PROP", "NO_KAB", "NO_KEC", "NO_KEL")) == (
        person.kode_wilayah
    )
