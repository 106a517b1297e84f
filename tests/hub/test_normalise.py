from __future__ import annotations

import datetime as dt

import pytest

from hub.messages import Messages
from hub.normalise import (
    clean_text,
    make_cm,
    make_code,
    make_grams,
    make_integer,
    make_nik,
    nik_birth_date,
    normalise_date,
    normalise_rt,
    normalise_time,
    normalise_wilayah_text,
    split_rt_rw,
)
from hub.schemas import SchemaRegistry

KELAHIRAN = SchemaRegistry.load().get("kelahiran")


def codes(result):
    return [code for code, _, _ in result[1]]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("17/08/2025", "2025-08-17"),
        ("17-08-2025", "2025-08-17"),
        ("17.08.2025", "2025-08-17"),
        ("03/04/2025", "2025-04-03"),  # day first, never March 4
        ("17 Agustus 2025", "2025-08-17"),
        ("17 Agu 2025", "2025-08-17"),
        ("17-Agt-2025", "2025-08-17"),
        ("17-Aug-2025", "2025-08-17"),
        ("3 Nopember 2020", "2020-11-03"),
        ("03 Mei1990", "1990-05-03"),
        ("Senin, 17 Agustus 2025", "2025-08-17"),
        ("2025-08-17", "2025-08-17"),
        ("2025-08-17 00:00:00", "2025-08-17"),
        ("45886", "2025-08-17"),  # Excel serial exported as text
        (45886.0, "2025-08-17"),  # Excel serial in a number cell
        (dt.date(2025, 8, 17), "2025-08-17"),
        (dt.datetime(2025, 8, 17, 10, 30, tzinfo=dt.UTC), "2025-08-17"),
        ("\u00a017/08/2025\u200b", "2025-08-17"),
        ("29/02/2024", "2024-02-29"),
    ],
)
def test_dates_in_every_form(raw, expected):
    assert normalise_date(raw) == (expected, ())


@pytest.mark.parametrize(
    "raw",
    [
        "31/02/2025",
        "29/02/2025",
        "32/01/2025",
        "17/13/2025",
        "17/08/25",
        "17 Agustos 2025",
        "kemarin",
        "17/08/1850",
        dt.time(8, 0),
        True,
    ],
)
def test_unreadable_dates_are_errors_not_guesses(raw):
    value, problems = normalise_date(raw)
    assert value is None
    assert [p[0] for p in problems] == ["date_invalid"]
    assert problems[0][2]["detail"]  # tells the operator what to write


@pytest.mark.parametrize("raw", ["", "-", "NULL", "n/a", None, "  "])
def test_blank_markers(raw):
    assert normalise_date(raw) == (None, ())
    assert clean_text(raw) is None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("08:30", "08:30"),
        ("8.30", "08:30"),
        ("08:30:00", "08:30"),
        ("0830", "08:30"),
        ("14.05 WIB", "14:05"),
        (dt.time(7, 15), "07:15"),
        (0.75, "18:00"),
    ],
)
def test_times(raw, expected):
    assert normalise_time(raw) == (expected, ())


@pytest.mark.parametrize("raw", ["24:00", "8:75", "pagi", "12345"])
def test_bad_times(raw):
    assert codes(normalise_time(raw)) == ["time_invalid"]


NIK = make_nik(KELAHIRAN.fields["nik_ibu"])
KK = make_nik(KELAHIRAN.fields["no_kk"], kk=True)


@pytest.mark.parametrize(
    "raw",
    [
        "3273014507900001",
        "'3273014507900001",
        " 3273 0145 0790 0001 ",
        "3273.0145.0790.0001",
        "\u00a03273014507900001\u200b",
        "\ufeff3273014507900001",
    ],
)
def test_nik_cleaning_is_harmless(raw):
    assert NIK(raw) == ("3273014507900001", ())


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("3.27302E+15", "nik_scientific"),
        ("3,27301E+15", "nik_scientific"),
        ("327301450790001", "nik_format"),  # 15 digits
        ("32730145079000011", "nik_format"),  # 17 digits
        ("32730145079O0001", "nik_format"),  # letter O
        ("3273013207900001", "nik_format"),  # day 32
        ("3273017207900001", "nik_format"),  # day 72 (32 + 40)
        ("3273014513900001", "nik_format"),  # month 13
        ("3273014502910001", "nik_format"),  # 5 Feb ok but ...
        ("3273014507900000", "nik_format"),  # serial 0000
        ("9973014507900001", "nik_format"),  # province 99
        ("3273016902910001", "nik_format"),  # 29 Feb 1991 (woman)
    ],
)
def test_bad_niks(raw, code):
    if raw == "3273014502910001":
        assert NIK(raw) == (raw, ())
        return
    assert codes(NIK(raw)) == [code]


def test_nik_from_numeric_cell_is_a_warning():
    assert NIK(3273014507900001.0) == (
        "3273014507900001",
        (("nik_numeric_cell", "warning", {"value": "3273014507900001"}),),
    )
    value, problems = NIK(3273014507900000.0)  # the 16th digit Excel turned into 0
    assert value is None
    assert codes((value, problems)) == ["nik_format", "nik_numeric_cell"]
    assert codes(NIK(3.5)) == ["nik_format"]


@pytest.mark.parametrize(
    ("raw", "detail"),
    [
        ("Halaman1dari2", "mengandung karakter selain angka"),  # a page footer, 13 characters
        ("Halaman1", "mengandung karakter selain angka"),
        ("3273O145", "mengandung karakter selain angka"),
        ("32730145079O0001", "mengandung karakter selain angka"),
        ("3273014507900001 x", "mengandung karakter selain angka"),
        ("3273,0145,0790,0001", "mengandung karakter selain angka"),
        ("\uff13273014507900001", "mengandung karakter selain angka"),  # a full-width digit
        ("'", "tidak berisi angka"),
        ("327301450790001", "15 digit, seharusnya 16"),
        ("3273.0145.0790.001", "15 digit, seharusnya 16"),
        ("32730145079000011", "17 digit, seharusnya 16"),
    ],
)
@pytest.mark.parametrize(("normalise", "code"), [(NIK, "nik_format"), (KK, "kk_format")])
def test_bad_identifier_detail_counts_digits_only_when_all_are_digits(normalise, code, raw, detail):
    value, problems = normalise(raw)
    assert value is None
    assert problems == ((code, "error", {"value": clean_text(raw), "detail": detail}),)


@pytest.mark.parametrize(
    ("raw", "digits"),
    [
        ("3273014507900001.0", "3273014507900001"),  # a numeric cell exported as text
        ("3273014507900001.00", "3273014507900001"),
        (" 3273014507900001.0 ", "3273014507900001"),
    ],
)
def test_nik_text_of_a_numeric_cell_is_that_numeric_cell(raw, digits):
    assert NIK(raw) == (digits, (("nik_numeric_cell", "warning", {"value": raw.strip()}),))
    assert codes(NIK(raw)) == codes(NIK(float(digits)))


def test_text_of_a_numeric_cell_keeps_what_the_operator_typed_in_its_messages():
    # m07 row 4: the dot is no separator, the NIK is not 32730103064400030 (17 digits)
    assert NIK("3273010306440003.0") == (
        "3273010306440003",
        (("nik_numeric_cell", "warning", {"value": "3273010306440003.0"}),),
    )
    # 15 digits, as a 15-digit numeric cell: a format error and the numeric-cell warning
    assert NIK("327301030644000.0") == (
        None,
        (
            (
                "nik_format",
                "error",
                {"value": "327301030644000.0", "detail": "15 digit, seharusnya 16"},
            ),
            ("nik_numeric_cell", "warning", {"value": "327301030644000.0"}),
        ),
    )
    assert codes(NIK(327301030644000)) == ["nik_format", "nik_numeric_cell"]
    # dropping the dot made 15 digits and the 0 of ".0" a different, valid NIK 3273014507900010
    assert codes(NIK("327301450790001.0")) == ["nik_format", "nik_numeric_cell"]
    # the 16th digit a numeric cell turned into 0 is still an error, never repaired
    assert codes(NIK("3273014507900000.0")) == ["nik_format", "nik_numeric_cell"]
    assert KK("3273011203150004.0") == (
        "3273011203150004",
        (("nik_numeric_cell", "warning", {"value": "3273011203150004.0"}),),
    )
    assert codes(KK("327301120315000.0")) == ["kk_format", "nik_numeric_cell"]


@pytest.mark.parametrize(
    "raw",
    [
        "32730145079000011.0",  # 17 digits
        "32730145079001.0",  # 14 digits
        "3273014507900001.5",  # a fraction
        "3273014507900001,0",  # a decimal comma
        "3273.0145.0790.0001.0",
        "'3273014507900001.0",
    ],
)
def test_other_dotted_values_are_not_read_as_numeric_cells(raw):
    value, problems = NIK(raw)
    assert value is None
    assert codes((value, problems)) == ["nik_format"]
    assert problems[0][2]["value"] == raw


def test_kk_format():
    assert KK("3273011203150004") == ("3273011203150004", ())
    assert codes(KK("3273015203150004")) == ["kk_format"]  # day 52 is not a registration date
    assert codes(KK("3.27301E+15")) == ["kk_format"]
    assert codes(KK("12345")) == ["kk_format"]


@pytest.mark.parametrize(
    ("field", "raw", "says", "never"),
    [
        ("no_kk", 3273011505151401, "Periksa Nomor KK ini", "NIK"),  # d03 row 2, column NO_KK
        ("no_kk", "3273011505151401.0", "Periksa Nomor KK ini", "NIK"),
        ("nik_ibu", 3273014507900001, "Periksa NIK ibu ini", "Nomor KK"),
    ],
)
def test_numeric_cell_message_names_the_field_it_is_about(field, raw, says, never):
    spec = KELAHIRAN.fields[field]
    normalise = make_nik(spec, kk=spec.kind == "kk")
    ((code, severity, params),) = normalise(raw)[1]
    assert (code, severity) == ("nik_numeric_cell", "warning")
    message = Messages.load().format(code, label=spec.title, **params)
    assert message.startswith(f"{spec.title} disimpan sebagai angka")
    assert says in message
    assert never not in message


def test_non_digit_message_reads_as_indonesian():
    ((code, _, params),) = NIK("Halaman1dari2")[1]
    message = Messages.load().format(code, label="NIK", **params)
    assert message.startswith("NIK tidak valid: mengandung karakter selain angka.")
    assert "digit" not in message


def test_nik_birth_date_and_gender():
    assert nik_birth_date("3273014507900001", dt.date(2025, 1, 1)) == (dt.date(1990, 7, 5), "P")
    assert nik_birth_date("3273010101200001", dt.date(2025, 1, 1)) == (dt.date(2020, 1, 1), "L")


@pytest.mark.parametrize(
    ("raw", "grams"),
    [
        ("3200", 3200),
        ("3.200", 3200),
        ("3,2 kg", 3200),
        ("3.2", 3200),
        ("3,25", 3250),
        ("2900 gr", 2900),
        (3100, 3100),
        (3.4, 3400),
    ],
)
def test_birth_weight(raw, grams):
    assert make_grams(KELAHIRAN.fields["berat_bayi"])(raw) == (grams, ())


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("80 kg", "range"),
        ("250", "range"),
        ("berat", "type"),
        ("3,2 ons", "type"),
        (-1.8e305, "range"),  # kilograms that overflow a float as grams (found by hypothesis)
        ("1" + "0" * 307 + " kg", "range"),
    ],
)
def test_bad_birth_weight(raw, code):
    assert codes(make_grams(KELAHIRAN.fields["berat_bayi"])(raw)) == [code]


def test_integer_range_and_type():
    kelahiran_ke = make_integer(KELAHIRAN.fields["kelahiran_ke"])
    assert kelahiran_ke("2") == (2, ())
    assert kelahiran_ke(2.0) == (2, ())
    assert codes(kelahiran_ke("25")) == ["range"]
    assert codes(kelahiran_ke("0")) == ["range"]
    assert codes(kelahiran_ke("dua")) == ["type"]
    assert codes(kelahiran_ke("1.5")) == ["type"]


@pytest.mark.parametrize(
    ("field", "raw", "code"),
    [
        ("jenis_kelamin", "Lk", "L"),
        ("jenis_kelamin", "PEREMPUAN", "P"),
        ("jenis_kelamin", "Wanita", "P"),
        ("jenis_kelamin", 1.0, "L"),
        ("jenis_kelamin", "2", "P"),
        ("penolong_kelahiran", "Bidan", 2),
        ("penolong_kelahiran", "bidan/perawat", 2),
        ("penolong_kelahiran", "1", 1),
        ("tempat_dilahirkan", "RS/RB", 1),
        ("jenis_kelahiran", "kembar 2", 2),
    ],
)
def test_code_labels(field, raw, code):
    assert make_code(KELAHIRAN.fields[field])(raw) == (code, ())


def test_unknown_code_lists_allowed_values():
    value, problems = make_code(KELAHIRAN.fields["penolong_kelahiran"])("Mantri")
    assert value is None
    assert problems[0][0] == "enum"
    assert "2 (Bidan/Perawat)" in problems[0][2]["allowed"]


def test_rt_rw():
    assert normalise_rt("3") == ("003", ())
    assert normalise_rt("8.0") == ("008", ())
    assert normalise_rt(8.0) == ("008", ())
    assert normalise_rt("RT 05") == ("005", ())
    assert codes(normalise_rt("1000")) == ["type"]
    assert codes(normalise_rt("0")) == ["range"]
    assert split_rt_rw("003/001") == ("003", "001")
    assert split_rt_rw("3 / 1") == ("3", "1")
    assert split_rt_rw("RT 3 RW 1") == ("rt 3", "1")


def test_region_codes():
    assert normalise_wilayah_text("3273011001") == ("32.73.01.1001", ())
    assert normalise_wilayah_text("32 73 01 1001") == ("32.73.01.1001", ())
    assert normalise_wilayah_text(3273011001.0) == ("32.73.01.1001", ())
    assert normalise_wilayah_text("32-73-1-1001") == ("32.73.01.1001", ())
    assert normalise_wilayah_text("32.73") == ("32.73", ())
    assert codes(normalise_wilayah_text("Sukarasa")) == ["wilayah_unknown"]


@pytest.mark.parametrize(
    ("raw", "cm"),
    [("50", 50), ("49,5", 49.5), ("50 cm", 50), ("49.5cm", 49.5), (48, 48), (48.25, 48.2)],
)
def test_birth_length(raw, cm):
    assert make_cm(KELAHIRAN.fields["panjang_bayi"])(raw) == (cm, ())


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("150", "range"),
        ("10 cm", "range"),
        ("lima puluh", "type"),
        ("50 m", "type"),
        (True, "type"),
    ],
)
def test_bad_birth_length(raw, code):
    assert codes(make_cm(KELAHIRAN.fields["panjang_bayi"])(raw)) == [code]
