"""The portal's words: Bahasa Indonesia first, English second.

The language is chosen, in this order, by `?bahasa=id|en` (remembered in a cookie), the
`hub_bahasa` cookie, then the browser's `Accept-Language`; Indonesian otherwise. Messages the
pipeline writes for operators (row issues, rejection reasons) are Indonesian in both.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final, Literal

Language = Literal["id", "en"]
LANGUAGES: Final[tuple[Language, ...]] = ("id", "en")
LANGUAGE_COOKIE: Final = "hub_bahasa"

#: key -> (Indonesian, English)
TEXTS: Final[Mapping[str, tuple[str, str]]] = {
    "app": ("Portal LAMPID", "LAMPID portal"),
    "skip": ("Langsung ke isi", "Skip to content"),
    "nav": ("Menu utama", "Main menu"),
    "nav.upload": ("Unggah laporan", "Upload a report"),
    "nav.approvals": ("Persetujuan", "Approvals"),
    "nav.deliveries": ("Pengiriman", "Deliveries"),
    "nav.stats": ("Statistik", "Statistics"),
    "nav.audit": ("Jejak audit", "Audit trail"),
    "logout": ("Keluar", "Log out"),
    "language": ("Bahasa", "Language"),
    "signed_in_as": ("Masuk sebagai", "Signed in as"),
    "role.operator": ("Operator kelurahan", "Kelurahan operator"),
    "role.verifikator": ("Verifikator kecamatan", "Kecamatan verifier"),
    "role.admin": ("Admin", "Admin"),
    "role.auditor": ("Auditor", "Auditor"),
    "role.system": ("Sistem", "System"),
    "nasional": ("Nasional", "National"),
    # login
    "login.title": ("Masuk", "Log in"),
    "login.username": ("Nama pengguna", "Username"),
    "login.password": ("Kata sandi", "Password"),
    "login.submit": ("Masuk", "Log in"),
    "login.wrong": (
        "Nama pengguna atau kata sandi salah. Periksa lalu coba lagi.",
        "The username or password is not correct. Check them and try again.",
    ),
    "login.locked": (
        "Akun terkunci karena terlalu banyak percobaan yang salah. "
        "Coba lagi dalam {minutes} menit.",
        "The account is locked after too many failed attempts. Try again in {minutes} minutes.",
    ),
    "login.missing": (
        "Isi nama pengguna dan kata sandi.",
        "Enter your username and password.",
    ),
    "login.expired": (
        "Sesi Anda berakhir. Silakan masuk lagi.",
        "Your session has ended. Please log in again.",
    ),
    "logged_out": ("Anda telah keluar.", "You have logged out."),
    # errors
    "error.title": ("Terjadi masalah", "Something went wrong"),
    "error.403": ("Akses ditolak", "Access denied"),
    "error.403.text": (
        "Halaman ini di luar peran atau wilayah Anda. Penolakan ini dicatat.",
        "This page is outside your role or region. The refusal is recorded.",
    ),
    "error.404": ("Tidak ditemukan", "Not found"),
    "error.404.text": ("Halaman atau data ini tidak ada.", "This page or item does not exist."),
    "error.csrf": (
        "Formulir sudah kedaluwarsa atau tidak sah. Muat ulang halaman lalu coba lagi.",
        "The form has expired or is not valid. Reload the page and try again.",
    ),
    "error.back": ("Kembali ke beranda", "Back to the start page"),
    # upload
    "upload.title": ("Unggah laporan", "Upload a report"),
    "upload.intro": (
        "Pilih jenis laporan, lalu seret berkas ke kotak di bawah atau pilih berkas. "
        "Berkas CSV, Excel (.xlsx, .xls) atau OpenDocument (.ods).",
        "Choose the report type, then drag the file onto the box below or pick a file. "
        "CSV, Excel (.xlsx, .xls) or OpenDocument (.ods).",
    ),
    "upload.type": ("Jenis laporan", "Report type"),
    "upload.file": ("Berkas laporan", "Report file"),
    "upload.drop": (
        "Seret dan lepas berkas di sini, atau klik untuk memilih",
        "Drag and drop the file here, or click to choose",
    ),
    "upload.submit": ("Unggah", "Upload"),
    "upload.sending": ("Mengunggah…", "Uploading…"),
    "upload.processing": ("Memproses baris…", "Processing rows…"),
    "upload.done": ("Selesai. Membuka hasil…", "Done. Opening the result…"),
    "upload.failed": ("Unggahan gagal", "Upload failed"),
    "upload.need_js": (
        "Halaman ini memerlukan JavaScript untuk mengunggah.",
        "This page needs JavaScript to upload.",
    ),
    "upload.recent": ("Unggahan terakhir", "Recent uploads"),
    "upload.none": ("Belum ada unggahan.", "No uploads yet."),
    "upload.progress": ("Kemajuan", "Progress"),
    "upload.again_title": (
        "Unggah ulang berkas yang sudah diperbaiki",
        "Upload the corrected file",
    ),
    "upload.again_intro": (
        "Unggah berkas yang sudah Anda perbaiki. Hanya baris baru atau yang berubah yang diproses; "
        "baris yang sudah diterima dikenali dan tidak dikirim dua kali.",
        "Upload the file you corrected. Only new or changed rows are processed; rows already "
        "accepted are recognised and never sent twice.",
    ),
    # kinds
    "type.kelahiran": ("Kelahiran", "Birth"),
    "type.kematian": ("Kematian", "Death"),
    "type.pindah": ("Pindah", "Moving out"),
    "type.datang": ("Datang", "Moving in"),
    # result
    "result.title": ("Hasil unggahan", "Upload result"),
    "result.file": ("Berkas", "File"),
    "result.status": ("Status", "Status"),
    "status.queued": ("Menunggu", "Queued"),
    "status.processing": ("Diproses", "Processing"),
    "status.done": ("Selesai", "Done"),
    "status.failed": ("Gagal", "Failed"),
    "count.rows": ("Total baris", "Rows"),
    "count.valid": ("Diterima", "Accepted"),
    "count.invalid": ("Ditolak", "Rejected"),
    "count.duplicates": ("Duplikat", "Duplicates"),
    "count.warnings": ("Peringatan", "Warnings"),
    "count.corrected": ("Diperbaiki", "Corrected"),
    "result.download": ("Unduh Excel beranotasi", "Download the annotated Excel"),
    "result.reupload": ("Unggah ulang berkas yang diperbaiki", "Upload the corrected file"),
    "result.problems": ("Masalah per baris", "Problems by row"),
    "result.filter": ("Saring menurut kode", "Filter by code"),
    "result.all": ("Semua kode", "All codes"),
    "result.apply": ("Terapkan", "Apply"),
    "result.none": ("Tidak ada masalah.", "No problems."),
    "result.row": ("Baris", "Row"),
    "result.sheet": ("Lembar", "Sheet"),
    "result.column": ("Kolom", "Column"),
    "result.value": ("Nilai", "Value"),
    "result.message": ("Pesan", "Message"),
    "result.code": ("Kode", "Code"),
    "result.more": ("Halaman berikutnya", "Next page"),
    "result.shown": ("Menampilkan {n} dari {total} masalah.", "Showing {n} of {total} problems."),
    "result.failed": ("Berkas ini tidak dapat diproses:", "This file could not be processed:"),
    "result.changes": ("Apa yang berubah", "What changed"),
    "result.compared": (
        "Dibandingkan dengan unggahan #{id} ({file}):",
        "Compared with upload #{id} ({file}):",
    ),
    "change.already": (
        "{n} baris sudah diterima sebelumnya (tidak diproses ulang)",
        "{n} rows were accepted before (not processed again)",
    ),
    "change.new": ("{n} baris baru diterima", "{n} new rows accepted"),
    "change.corrected": (
        "{n} baris diperbaiki (versi baru dikirim ulang)",
        "{n} rows corrected (the new version is sent again)",
    ),
    "change.still": ("{n} baris masih ditolak", "{n} rows are still rejected"),
    "change.before": (
        "Sebelumnya: {invalid} baris ditolak dari {rows}.",
        "Before: {invalid} of {rows} rows rejected.",
    ),
    "change.rows": ("Baris per hasil", "Rows by outcome"),
    "change.kind.new": ("baru", "new"),
    "change.kind.corrected": ("diperbaiki", "corrected"),
    "change.kind.already": ("sudah diterima", "already accepted"),
    # approvals
    "approvals.title": ("Persetujuan", "Approvals"),
    "approvals.intro": (
        "Data kelurahan di wilayah Anda yang menunggu keputusan, "
        "dengan jawaban verifikasi Dukcapil.",
        "Records of the kelurahan in your region waiting for a decision, with Dukcapil's answers.",
    ),
    "approvals.none": ("Tidak ada data yang menunggu.", "Nothing is waiting."),
    "approvals.select": ("Pilih", "Select"),
    "approvals.select_all": ("Pilih semua", "Select all"),
    "approvals.record": ("Data", "Record"),
    "approvals.region": ("Kelurahan", "Kelurahan"),
    "approvals.subject": ("Nama", "Name"),
    "approvals.date": ("Tanggal peristiwa", "Event date"),
    "approvals.checks": ("Verifikasi Dukcapil", "Dukcapil verification"),
    "approvals.check_ok": ("Cocok", "Match"),
    "approvals.reason": (
        "Alasan penolakan (wajib untuk menolak)",
        "Reason for rejecting (required)",
    ),
    "approvals.note": ("Catatan", "Note"),
    "approvals.approve": ("Setujui yang dipilih", "Approve selected"),
    "approvals.reject": ("Tolak yang dipilih", "Reject selected"),
    "approvals.approve_one": ("Setujui", "Approve"),
    "approvals.reject_one": ("Tolak", "Reject"),
    "approvals.new": ("{n} data baru menunggu persetujuan.", "{n} new records wait for approval."),
    "approvals.show": ("Tampilkan", "Show"),
    "approvals.done": (
        "{approved} disetujui, {rejected} ditolak, {skipped} dilewati.",
        "{approved} approved, {rejected} rejected, {skipped} skipped.",
    ),
    "approvals.need_reason": ("Tulis alasan penolakan.", "Write the reason for rejecting."),
    "approvals.need_ids": ("Pilih minimal satu data.", "Select at least one record."),
    "approvals.live": ("Pembaruan langsung aktif", "Live updates on"),
    # deliveries
    "deliveries.title": ("Pengiriman", "Deliveries"),
    "deliveries.connector": ("Konektor", "Connector"),
    "deliveries.queued": ("Antre", "Queued"),
    "deliveries.in_flight": ("Sedang dikirim", "In flight"),
    "deliveries.delivered": ("Terkirim", "Delivered"),
    "deliveries.dead": ("Gagal (surat mati)", "Dead"),
    "deliveries.breaker": ("Pemutus", "Breaker"),
    "deliveries.quota": ("Sisa kuota hari ini", "Quota left today"),
    "deliveries.state": ("Keadaan", "State"),
    "deliveries.scope_note": (
        "Angka per konektor mencakup seluruh antrean hub; daftar surat mati hanya wilayah Anda.",
        "Counts per connector cover the hub's whole queue; dead letters list your region only.",
    ),
    "deliveries.dead_title": ("Surat mati", "Dead letters"),
    "deliveries.none": ("Tidak ada surat mati.", "No dead letters."),
    "deliveries.message": ("Pesan", "Message"),
    "deliveries.record": ("Data", "Record"),
    "deliveries.attempts": ("Percobaan", "Attempts"),
    "deliveries.error": ("Kesalahan terakhir", "Last error"),
    "deliveries.replay": ("Kirim ulang", "Replay"),
    "deliveries.replayed": ("Pesan {ids} diantrekan lagi.", "Message {ids} queued again."),
    "deliveries.unlimited": ("tanpa batas", "unlimited"),
    # stats
    "stats.title": ("Statistik", "Statistics"),
    "stats.type": ("Jenis peristiwa", "Event type"),
    "stats.all_types": ("Semua jenis", "All types"),
    "stats.show": ("Tampilkan", "Show"),
    "stats.by_month": ("Per bulan", "By month"),
    "stats.by_region": ("Per wilayah", "By region"),
    "stats.by_type": ("Per jenis dan wilayah", "By type and region"),
    "stats.total": ("Jumlah", "Total"),
    "stats.none": ("Belum ada data.", "No data yet."),
    "stats.region": ("Wilayah", "Region"),
    "stats.up": ("Naik satu tingkat", "One level up"),
    "stats.drill": ("Rinci", "Details"),
    "stats.no_month": ("tanpa tanggal", "no date"),
    "level.1": ("Provinsi", "Province"),
    "level.2": ("Kabupaten/kota", "Regency/city"),
    "level.3": ("Kecamatan", "District"),
    "level.4": ("Kelurahan/desa", "Village"),
    # audit
    "audit.title": ("Jejak audit", "Audit trail"),
    "audit.record": ("Nomor data", "Record number"),
    "audit.user": ("Pengguna", "User"),
    "audit.from": ("Dari tanggal", "From date"),
    "audit.to": ("Sampai tanggal", "To date"),
    "audit.action": ("Tindakan", "Action"),
    "audit.search": ("Cari", "Search"),
    "audit.when": ("Waktu (UTC)", "Time (UTC)"),
    "audit.actor": ("Pelaku", "Actor"),
    "audit.entity": ("Objek", "Entity"),
    "audit.details": ("Rincian", "Details"),
    "audit.none": ("Tidak ada kejadian yang cocok.", "No matching events."),
    "audit.chain_ok": (
        "Rantai hash utuh ({n} kejadian diperiksa).",
        "Hash chain intact ({n} events checked).",
    ),
    "audit.chain_bad": (
        "Rantai hash RUSAK mulai kejadian #{id}.",
        "Hash chain BROKEN from event #{id}.",
    ),
    "audit.bad_input": (
        "Isian pencarian tidak sah: {message}",
        "Search input not valid: {message}",
    ),
}


def text(key: str, language: Language, **values: object) -> str:
    """The text of `key` in `language`, with `{name}` placeholders filled in."""
    pair = TEXTS.get(key)
    if pair is None:
        return key
    template = pair[0] if language == "id" else pair[1]
    return template.format(**values) if values else template


def choose(query: str | None, cookie: str | None, accept_language: str | None) -> Language:
    """The language of a request (see the module docstring)."""
    for given in (query, cookie):
        if given in LANGUAGES:
            return "en" if given == "en" else "id"
    for part in (accept_language or "").split(","):
        tag = part.split(";")[0].strip().lower()
        if tag.startswith(("id", "ms")):
            return "id"
        if tag.startswith("en"):
            return "en"
    return "id"
