"""The bad-input catalogue (issue 10): one test class per known attack
class, each sending hostile input through a real mugaid (its sandboxed
workers, the Office worker and the ClamAV scanner) with the real
`mugai sanitize-file` and `mugai sanitize-mail`, and asserting the outcome
and the stable finding codes (sanitizers/core/findings.h).

Inputs are built here with the standard library, or read by path from the
shared corpus and /usr/share/clamav-testfiles (never copied into the tree).
Every class runs with the default limits of samples/mugai.toml: each bomb
is built to pass them cheaply (a 1 GiB zip of zeros is written as it is
compressed and is 1 MiB on disk)."""

import io
import os
import re
import sqlite3
import struct
import tarfile
import tempfile
import time
import unittest
import zipfile
import zlib

import archive_samples
from test_archives import ArchiveCase
from test_daemon import CORPUS, TESTFILES, codes
from test_mail import MailCase, attachment_names, raw_message, simple_message, tiny_png

# A DOS stub with a PE signature: libmagic's application/x-dosexec.
PE_STUB = b"MZ\x90\x00\x03" + b"\x00" * 55 + b"\x40\x00\x00\x00PE\x00\x00" + b"\x00" * 64
BIDI = set("\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
DELIVERED = ("delivered", "delivered_with_removals")
WINDOWS_DEVICES = {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(1, 10)), *(f"LPT{i}" for i in range(1, 10))}


def corpus(*parts):
    path = os.path.join(CORPUS, *parts)
    if not os.path.exists(path):
        raise unittest.SkipTest(f"corpus file {path} not present")
    return path


def read(path):
    with open(path, "rb") as f:
        return f.read()


def stored_zip(members):
    """A zip of `members` ({name: bytes}) stored, not deflated, so that
    their bytes appear as they are in the zip."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return out.getvalue()


def zip_with_raw_names(names, content=lambda i: b"member %d\n" % i):
    """A zip whose member names are exactly `names` (bytes, NUL included:
    zipfile cuts a name at NUL, so each goes in as a stand-in of the same
    length, replaced afterwards in the local and central headers)."""
    out = io.BytesIO()
    stand_ins = [(b"@%d@" % i).ljust(len(n), b"#") for i, n in enumerate(names)]
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for i, stand_in in enumerate(stand_ins):
            z.writestr(stand_in.decode("ascii"), content(i))
    data = out.getvalue()
    for stand_in, name in zip(stand_ins, names):
        assert len(stand_in) == len(name) and data.count(stand_in) == 2, name
        data = data.replace(stand_in, name)
    return data


def png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_bomb(width, height):
    """A PNG declaring width x height RGB pixels whose IDAT holds the
    first rows only: a few hundred bytes claiming gigabytes once decoded."""
    rows = b"".join(b"\x00" + bytes(width * 3) for _ in range(4))
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)) +
            png_chunk(b"IDAT", zlib.compress(rows, 9)) + png_chunk(b"IEND", b""))


def nested_copies_zip(levels, copies, bottom):
    """42.zip's shape: each level holds `copies` copies of the level below;
    the bottom is `bottom` (bytes) deflated. copies ** levels leaves."""
    data, name = bottom, "0.bin"
    for level in range(levels):
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
            for c in range(copies):
                z.writestr(f"{c}-{name}", data)
        data, name = out.getvalue(), f"level{level + 1}.zip"
    return data


class CatalogueCase(MailCase, ArchiveCase):
    def setUp(self):
        self.reports = []

    def tearDown(self):
        # Every item the client got a report for has its one durable
        # record, with that outcome and those findings.
        database = os.path.join(self.daemon.dir, "data", "mugai.db")
        with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as db:
            for report in self.reports:
                row = db.execute("SELECT outcome, finding_codes FROM items WHERE id = ?",
                                 (report["item_id"],)).fetchone()
                self.assertIsNotNone(row, report["item_id"])
                self.assertEqual(row[0], report["outcome"], report["item_id"])
                self.assertLessEqual(set(codes(report)), set(row[1].split()), report["item_id"])

    def sanitize_path(self, path, out=None):
        rc, report = self.daemon.sanitize(path, out)
        self.assertEqual(rc, 0 if report["outcome"] in DELIVERED else 2, report)
        self.reports.append(report)
        return report

    def sanitize_mail(self, path):
        rc, report, delivered = super().sanitize_mail(path)
        self.reports.append(report)
        return rc, report, delivered

    def sanitize_file(self, name, data):
        """Sanitizes `data` as a file named `name`; returns (report,
        {derivative name: bytes}). Each item gets its own directories."""
        folder = tempfile.mkdtemp(dir=self.daemon.dir)
        path = os.path.join(folder, name)
        with open(path, "wb") as f:
            f.write(data)
        out = os.path.join(folder, "out")
        report = self.sanitize_path(path, out)
        derivatives = {}
        for d in report["item"]["derivatives"]:
            derivatives[d["name"]] = read(os.path.join(out, d["name"]))
        if report["outcome"] not in DELIVERED:
            self.assertEqual(derivatives, {}, report)
        return report, derivatives

    def assert_outcome(self, report, outcome, *expected_codes):
        self.assertEqual(report["outcome"], outcome, report["item"]["findings"])
        for code in expected_codes:
            self.assertIn(code, codes(report), report["item"]["findings"])

    def assert_attachment_removed(self, message, name, code):
        """An attachment that cannot be delivered is removed and listed
        (DESIGN, mail step 3): the rest of `message` arrives without it."""
        report, out = self.delivered(message, "attachment.eml")
        self.assertEqual(report["outcome"], "delivered_with_removals")
        self.assertNotIn(name, attachment_names(out))
        (child,) = [c for c in report["item"]["children"] if c["claimed_name"] == name]
        self.assertEqual(child["outcome"], "quarantined")
        self.assertIn(code, codes({"item": child}), child["findings"])
        self.assertIn("DEL_ATTACH", out["X-Mugai-Sanitized"])
        return report

    def assert_absent(self, payload, derivatives, where):
        """No derivative holds `payload` (bytes), and something was delivered."""
        self.assertTrue(derivatives, where)
        for name, data in derivatives.items():
            self.assertNotIn(payload, data, f"{where}: {name}")


class PolyglotTest(CatalogueCase):
    """A file that is two formats at once is sanitized as the type its
    bytes start as; what the other format carries reaches no derivative."""

    def polyglot(self, name, front, back, detected, media_prefix, action, marker):
        report, derivatives = self.sanitize_file(name, front + back)
        self.assert_outcome(report, "delivered")
        self.assertEqual(report["item"]["detected_type"], detected)
        self.assertEqual(report["item"]["action"], action)
        (derivative,) = report["item"]["derivatives"]
        self.assertTrue(derivative["media_type"].startswith(media_prefix), derivative)
        self.assert_absent(marker, derivatives, name)
        if back:
            self.assert_absent(back, derivatives, name)
        if len(back) > 64:
            self.assert_absent(back[-64:], derivatives, name)  # the zip's end of central directory
        return derivatives

    def test_polyglots(self):
        marker = b"MUGAI-POLYGLOT-PAYLOAD-5d1c"
        script = b"<html><script>alert('" + marker + b"')</script></html>"
        payload_zip = stored_zip({"index.html": script, "Exploit.class": b"\xca\xfe\xba\xbe" + marker})
        with self.subTest("PDF + ZIP"):
            pdf = read(corpus("pdf", "text", "crazyones-pdfa.pdf"))
            self.polyglot("paper.pdf", pdf, payload_zip, "application/pdf", "application/pdf", "convert_pdf", marker)
        with self.subTest("JPEG + ZIP"):
            jpeg = read(corpus("dangerzone-test-docs", "test_docs", "sample-jpg.jpg"))
            self.polyglot("photo.jpg", jpeg, payload_zip, "image/jpeg", "image/", "convert_image", marker)
        with self.subTest("GIFAR"):
            gif = read(corpus("dangerzone-test-docs", "test_docs", "sample-gif.gif"))
            self.polyglot("avatar.gif", gif, payload_zip, "image/gif", "image/", "convert_image", marker)
        with self.subTest("PNG + trailing HTML"):
            self.polyglot("logo.png", tiny_png(), script, "image/png", "image/png", "convert_image", marker)
        with self.subTest("PNG with a script in a text chunk"):
            png = tiny_png()
            png = png[:-12] + png_chunk(b"tEXt", b"Comment\x00" + script) + png[-12:]
            self.polyglot("chunk.png", png, b"", "image/png", "image/png", "convert_image", marker)
        self.assert_alive()


class TypeMismatchTest(CatalogueCase):
    """A name that lies about the type: the bytes decide, the lie is
    recorded as type.mismatch, and the derivative is named for what it is."""

    def test_extension_and_type_mismatch(self):
        for name, data in (("invoice.pdf", PE_STUB), ("report.pdf", read("/bin/true")),
                           ("scan.jpg", read(os.path.join(TESTFILES, "clam.exe")))):
            with self.subTest(name):
                report, _ = self.sanitize_file(name, data)
                self.assert_outcome(report, "quarantined", "type.mismatch")
                self.assertTrue({"type.blocked", "av.detected"} & set(codes(report)), report["item"]["findings"])

        with self.subTest("a .docx that is a zip of a script"):
            # A .docx is a zip to shared-mime-info, so the name is no lie
            # (no type.mismatch); it is unpacked as the zip it is.
            fake = stored_zip({"notes.txt": b"hello\n", "run.sh": b"#!/bin/sh\nrm -rf ~\n"})
            report, derivatives = self.sanitize_file("report.docx", fake)
            self.assert_outcome(report, "delivered_with_removals")
            self.assertIn("type.blocked", [f["code"] for c in report["item"]["children"] for f in c["findings"]])
            self.assertEqual(report["item"]["detected_type"], "application/zip")
            self.assertEqual(list(derivatives), ["report.zip"])
            with zipfile.ZipFile(io.BytesIO(derivatives["report.zip"])) as z:
                self.assertEqual(sorted(z.namelist()), ["MUGAI_NOTICE.txt", "notes.txt"])

        with self.subTest("a .docx whose document is an executable"):
            fake = stored_zip({"[Content_Types].xml": b'<?xml version="1.0"?><Types/>', "word/document.xml": PE_STUB})
            # Its members make it an Office document, which LibreOffice
            # cannot load: held, never passed on as it came.
            report, derivatives = self.sanitize_file("letter.docx", fake)
            self.assert_outcome(report, "quarantined", "parse.failed")

        with self.subTest("a PDF named .jpg"):
            report, derivatives = self.sanitize_file("photo.jpg", read(corpus("pdf", "text", "crazyones-pdfa.pdf")))
            self.assert_outcome(report, "delivered", "type.mismatch")
            self.assertEqual(report["item"]["action"], "convert_pdf")
            self.assertEqual(list(derivatives), ["photo.pdf"])
            self.assertTrue(derivatives["photo.pdf"].startswith(b"%PDF-"))

        with self.subTest("a JPEG named .pdf"):
            jpeg = read(corpus("dangerzone-test-docs", "test_docs", "sample-jpg.jpg"))
            report, derivatives = self.sanitize_file("contract.pdf", jpeg)
            self.assert_outcome(report, "delivered", "type.mismatch")
            self.assertEqual(report["item"]["action"], "convert_image")
            self.assertEqual(list(derivatives), ["contract.jpg"])
        self.assert_alive()


# Names that show one extension and are another, with what the derivative
# of a text file under that name must be called.
DECEPTIVE_NAMES = {
    "invoice\u202efdp.exe": "invoicefdp.txt",
    "report.pdf.exe": "report.pdf.txt",
    "report.exe.": "report.txt",
    "report.exe . .": "report.txt",
    "report.exe   ": "report.txt",
    "\u202e\u2066photo\u2069gpj.scr": "photogpj.txt",
}


class DeceptiveNameTest(CatalogueCase):
    """RTLO, double extensions and trailing dots or spaces, as the name of
    a submitted file, of a mail attachment and of an archive member: no
    bidi control survives, no name ends in a dot or a space, and the final
    extension is the derivative's own. Names Windows reads specially
    (drives, alternate data streams, devices) are made plain names."""

    def assert_safe_name(self, name, where):
        self.assertFalse(BIDI & set(name), f"{where}: {name!r}")
        self.assertFalse(name.endswith((".", " ")), f"{where}: {name!r}")
        self.assertFalse(name.lower().endswith((".exe", ".scr")), f"{where}: {name!r}")

    def test_windows_special_names(self):
        # names.h: a member's path is "made safe to recreate anywhere", and
        # the receivers are Windows PCs: "x.txt:y" writes an alternate data
        # stream, "D:x" a file in drive D's current folder, and a device name
        # (with any extension) opens the device.
        names = {"notes.txt:hidden.exe": "notes.txt_hidden.txt", "D:report.txt": "D_report.txt",
                 "CON.txt": "_CON.txt", "aux.pdf": "_aux.txt", "nul": "_nul.txt", "COM1.txt": "_COM1.txt",
                 "lpt9.log": "_lpt9.txt"}

        def assert_windows_safe(name, where):
            self.assertNotIn(":", name, where)
            self.assertFalse(name.split(".")[0].upper() in WINDOWS_DEVICES, f"{where}: {name!r} is a device")

        for claimed, expected in names.items():
            with self.subTest(file=claimed):
                report, derivatives = self.sanitize_file(claimed, b"just text\n")
                self.assertIn(report["outcome"], DELIVERED, report["item"]["findings"])
                self.assertEqual(list(derivatives), [expected])
                assert_windows_safe(expected, claimed)
                self.assertIn("name.unsafe", codes(report))
        with self.subTest("archive members"):
            report, derivatives = self.sanitize_file("devices.zip", zip_with_raw_names([n.encode() for n in names]))
            with zipfile.ZipFile(io.BytesIO(derivatives["devices.zip"])) as z:
                for name in z.namelist():
                    assert_windows_safe(name, "member")
        with self.subTest("mail attachments"):
            m = simple_message()
            for claimed in names:
                m.add_attachment(b"just text\n", maintype="text", subtype="plain", filename=claimed)
            report, out = self.delivered(m, "devices.eml")
            for name in attachment_names(out):
                assert_windows_safe(name, "attachment")

    def test_deceptive_names(self):
        for claimed, expected in DECEPTIVE_NAMES.items():
            with self.subTest(file=claimed):
                report, derivatives = self.sanitize_file(claimed, b"just text\n")
                self.assertIn(report["outcome"], DELIVERED, report["item"]["findings"])
                self.assertEqual(list(derivatives), [expected])
                self.assert_safe_name(expected, claimed)
                self.assertEqual(derivatives[expected], b"just text\n")
                # Text under an executable's name (as Windows reads it): the
                # name lies, and was made safe where it had to be.
                # shared-mime-info knows no .scr.
                self.assertEqual("type.mismatch" in codes(report), expected != "photogpj.txt", codes(report))
                self.assertEqual("name.unsafe" in codes(report), claimed != "report.pdf.exe", codes(report))
            with self.subTest(executable=claimed):
                report, derivatives = self.sanitize_file(claimed, PE_STUB)
                self.assert_outcome(report, "quarantined", "type.blocked")

        with self.subTest("mail attachments"):
            m = simple_message()
            for claimed in DECEPTIVE_NAMES:
                m.add_attachment(b"just text\n", maintype="application", subtype="octet-stream", filename=claimed)
            m.add_attachment(PE_STUB, maintype="application", subtype="octet-stream", filename="請求書\u202efdp.exe")
            report, out = self.delivered(m, "names.eml")
            self.assertEqual(report["outcome"], "delivered_with_removals")
            names = attachment_names(out)
            self.assertEqual(len(names), len(DECEPTIVE_NAMES), names)
            for name in names:
                self.assert_safe_name(name, "attachment")
            # Names made the same are numbered: "report (2).txt".
            self.assertEqual(sorted(re.sub(r" \(\d\)", "", n) for n in names), sorted(DECEPTIVE_NAMES.values()))
            self.assertIn("type.blocked", [f["code"] for c in report["item"]["children"] for f in c["findings"]])

        with self.subTest("archive members"):
            names = [n.encode("utf-8") for n in DECEPTIVE_NAMES]
            report, derivatives = self.sanitize_file("names.zip", zip_with_raw_names(names, lambda i: b"just text\n"))
            self.assertIn(report["outcome"], DELIVERED, report["item"]["findings"])
            with zipfile.ZipFile(io.BytesIO(derivatives["names.zip"])) as z:
                members = [n for n in z.namelist() if n != "MUGAI_NOTICE.txt"]
            for name in members:
                self.assert_safe_name(name, "member")
            # Two members may make the same safe name; UniquePath numbers them.
            self.assertEqual(len(members), len(DECEPTIVE_NAMES), members)
        self.assert_alive()


def nested_multipart(depth):
    def part(level):
        if level == depth:
            return b"Content-Type: text/plain\r\n\r\ninnermost\r\n"
        return (f'Content-Type: multipart/mixed; boundary="b{level}"\r\n\r\n--b{level}\r\n'.encode() +
                part(level + 1) + f"\r\n--b{level}--\r\n".encode())
    return raw_message(["Subject: deep", 'Content-Type: multipart/mixed; boundary="b0"'],
                       b"--b0\r\n" + part(1) + b"\r\n--b0--\r\n")


def nested_rfc822(depth):
    message = simple_message(body="innermost\n")
    for level in range(depth):
        outer = simple_message(subject=f"level {level}", body="forwarded\n")
        outer.add_attachment(message)
        message = outer
    return message


class MimeBombTest(CatalogueCase):
    """Deep nesting past [mail] max_depth (16), more parts than max_parts
    (1000), one header block past max_header_bytes (256 KiB): each holds the
    message with its limit's code. Thousands of small headers within the
    limit are delivered, with only the kept ones."""

    def test_mime_bombs(self):
        cases = {
            "multipart 40 deep": (nested_multipart(40), "limit.mime_depth"),
            "message/rfc822 40 deep": (nested_rfc822(40), "limit.mime_depth"),
            "3000 parts": (raw_message(["Subject: many", 'Content-Type: multipart/mixed; boundary="b"'],
                                       b"--b\r\nContent-Type: text/plain\r\n\r\npart\r\n" * 3000 + b"--b--\r\n"),
                           "limit.mime_parts"),
            "a 300 KB Subject": (raw_message(["Subject: " + "x" * 300_000], b"body\r\n"), "limit.header_size"),
            "30000 headers": (raw_message([f"X-H{i}: v" for i in range(30_000)], b"body\r\n"), "limit.header_size"),
            "a 300 KB part header": (raw_message(
                ['Content-Type: multipart/mixed; boundary="b"'],
                b"--b\r\nContent-Type: text/plain\r\nX-Big: " + b"y" * 300_000 + b"\r\n\r\npart\r\n--b--\r\n"),
                "limit.header_size"),
        }
        for name, (message, code) in cases.items():
            with self.subTest(name):
                report = self.held(message, "bomb.eml")
                self.assertIn(code, codes(report), report["item"]["findings"])

        with self.subTest("5000 headers within the size limit"):
            report, out = self.delivered(raw_message([f"X-H{i}: v" for i in range(5000)] + ["Subject: ok"],
                                                     b"body\r\n"))
            self.assertFalse([k for k in out.keys() if k.lower().startswith("x-h")])
        self.assert_alive()


class DecompressionBombTest(CatalogueCase):
    """Bombs stop at their limit, in seconds, with its code."""

    def sanitize_file(self, name, data):
        started = time.monotonic()
        result = super().sanitize_file(name, data)
        self.assertLess(time.monotonic() - started, 15, name)
        return result

    def test_decompression_bombs(self):
        with self.subTest("1 GiB of zeros in a zip"):
            path = os.path.join(self.daemon.dir, "zeros.zip")
            archive_samples.zeros_zip(path, 1024)
            started = time.monotonic()
            report = self.sanitize_path(path)
            self.assertLess(time.monotonic() - started, 15)
            self.assert_outcome(report, "quarantined", "limit.ratio")
        with self.subTest("zips in zips 40 deep"):
            report, _ = self.sanitize_file("nested.zip", archive_samples.nested_zip(40))
            self.assert_outcome(report, "quarantined", "limit.depth")
        with self.subTest("42.zip's shape: 16 copies, 4 levels, 1 MiB of zeros each"):
            report, _ = self.sanitize_file("42.zip", nested_copies_zip(4, 16, bytes(1 << 20)))
            self.assert_outcome(report, "quarantined", "limit.ratio")
        with self.subTest("a PNG declaring 20000 x 20000 pixels"):
            report, _ = self.sanitize_file("bomb.png", png_bomb(20000, 20000))
            self.assert_outcome(report, "quarantined", "limit.pixels")
        with self.subTest("the PNG bomb in a zip"):
            report, _ = self.sanitize_file("images.zip", stored_zip({"bomb.png": png_bomb(20000, 20000)}))
            self.assert_outcome(report, "quarantined", "limit.pixels")
        with self.subTest("the PNG bomb attached to a mail"):
            m = simple_message()
            m.add_attachment(png_bomb(20000, 20000), maintype="image", subtype="png", filename="map.png")
            self.assert_attachment_removed(m, "map.png", "limit.pixels")
        self.assert_alive()


# Member names that would leave the folder they are unpacked in, or name
# another volume, another host or a truncated name.
TRAVERSAL_NAMES = [b"../../etc/passwd", b"/etc/shadow", b"..\\..\\win.ini", b"C:\\Windows\\system.ini",
                   b"C:/boot.ini", b"docs/../../../escape.txt", b"\\\\server\\share\\unc.txt",
                   b"ok.txt\x00.exe", b"./././dot.txt", b"D:relative.txt"]


class PathTraversalTest(CatalogueCase):
    """No member name reaches a derivative as a path out of the archive:
    every name of the zip that comes back is relative, with "/" only, no
    "." or ".." component, no drive, no NUL."""

    def assert_contained(self, names):
        for name in names:
            self.assertFalse(name.startswith("/"), name)
            self.assertNotIn("\\", name)
            self.assertNotIn("\x00", name)
            # "D:x" is relative to drive D's folder on Windows.
            self.assertNotIn(":", name)
            self.assertFalse({".", ".."} & set(name.split("/")), name)

    def test_path_traversal(self):
        with self.subTest("zip"):
            data = zip_with_raw_names(TRAVERSAL_NAMES)
            report, derivatives = self.sanitize_file("traversal.zip", data)
            self.assertIn(report["outcome"], DELIVERED, report["item"]["findings"])
            with zipfile.ZipFile(io.BytesIO(derivatives["traversal.zip"])) as z:
                members = {i.filename: z.read(i) for i in z.infolist()}
            self.assert_contained(members)
            contents = sorted(v for k, v in members.items() if k != "MUGAI_NOTICE.txt")
            self.assertEqual(contents, sorted(b"member %d\n" % i for i in range(len(TRAVERSAL_NAMES))))
            # libarchive ends a name at NUL: "ok.txt\0.exe" is claimed as
            # "ok.txt", a safe name; every other one was made safe.
            claimed = {c["claimed_name"]: codes({"item": c}) for c in report["item"]["children"]}
            self.assertEqual(claimed.pop("ok.txt"), [])
            for name, found in claimed.items():
                self.assertIn("name.unsafe", found, name)
            self.assertEqual(len(claimed), len(TRAVERSAL_NAMES) - 1)
        with self.subTest("tar"):
            out = io.BytesIO()
            with tarfile.open(fileobj=out, mode="w", format=tarfile.GNU_FORMAT) as t:
                for i, name in enumerate(n for n in TRAVERSAL_NAMES if b"\x00" not in n):
                    info = tarfile.TarInfo(name.decode())
                    body = b"member %d\n" % i
                    info.size = len(body)
                    t.addfile(info, io.BytesIO(body))
            report, derivatives = self.sanitize_file("traversal.tar", out.getvalue())
            self.assertIn(report["outcome"], DELIVERED, report["item"]["findings"])
            with zipfile.ZipFile(io.BytesIO(derivatives["traversal.zip"])) as z:
                self.assert_contained(z.namelist())
        with self.subTest("mail attachment names"):
            m = simple_message()
            for i, name in enumerate(TRAVERSAL_NAMES):
                m.add_attachment(b"member %d\n" % i, maintype="text", subtype="plain",
                                 filename=name.decode().replace("\x00", ""))
            report, out = self.delivered(m, "traversal.eml")
            names = attachment_names(out)
            self.assertEqual(len(names), len(TRAVERSAL_NAMES), names)
            for name in names:
                self.assertNotIn("/", name)
                self.assertNotIn("\\", name)
                self.assertNotIn(":", name)
                self.assertFalse(name.startswith("."), name)
        self.assert_alive()


class EncryptedContainerTest(CatalogueCase):
    """What cannot be opened without a password cannot be inspected: held,
    with archive.encrypted or document.encrypted."""

    def test_encrypted_containers(self):
        rows = [(("archive", "encrypted", name), "archive.encrypted") for name in (
            "zipWithEncryption.zip", "test_read_format_zip_winzip_aes256.zip", "test_read_format_7zip_encryption.7z",
            "test_read_format_7zip_encryption_header.7z", "test_read_format_rar4_encrypted.rar",
            "test_read_format_rar5_encrypted.rar")]
        rows += [(("pdf", "encrypted", "libreoffice-writer-password.pdf"), "document.encrypted"),
                 (("office", "encrypted", "bug53475-password-is-pass.docx"), "document.encrypted"),
                 (("office", "encrypted", "password.xls"), "document.encrypted")]
        for parts, code in rows:
            with self.subTest(parts[-1]):
                report = self.sanitize_path(corpus(*parts))
                self.assert_outcome(report, "quarantined", code)
        encrypted = read(corpus("archive", "encrypted", "zip-aes-256.zip"))
        with self.subTest("an encrypted zip inside a plain zip"):
            report, _ = self.sanitize_file("outer.zip", stored_zip({"inner.zip": encrypted, "memo.txt": b"hi\n"}))
            self.assert_outcome(report, "quarantined", "archive.encrypted")
        with self.subTest("an encrypted zip attached to a mail"):
            m = simple_message()
            m.add_attachment(encrypted, maintype="application", subtype="zip", filename="書類.zip")
            self.assert_attachment_removed(m, "書類.zip", "archive.encrypted")
        self.assert_alive()


class TruncatedFileTest(CatalogueCase):
    """Files cut in half are held as parse.failed: a PDF, a zip, a DOCX,
    and images too (libvips would fill the missing rows, and the receiver
    would get another picture with nothing said)."""

    def test_truncated_files(self):
        sources = {
            "paper.pdf": read(corpus("pdf", "text", "crazyones-pdfa.pdf")),
            "image.png": read(corpus("dangerzone-test-docs", "test_docs", "sample-png.png")),
            "photo.jpg": read(corpus("dangerzone-test-docs", "test_docs", "sample-jpg.jpg")),
            "bundle.zip": stored_zip({f"file{i}.txt": b"line of text %d\n" % i * 200 for i in range(20)}),
            "letter.docx": read(corpus("dangerzone-test-docs", "test_docs", "sample-docx.docx")),
        }
        for name, data in sources.items():
            with self.subTest(name):
                half = data[:len(data) // 2]
                report, derivatives = self.sanitize_file(name, half)
                self.assert_outcome(report, "quarantined", "parse.failed")
        with self.subTest("a mail cut in its base64 attachment"):
            # GMime reads what is there (mail.malformed); the half PDF is
            # removed and listed, the rest of the message arrives.
            m = simple_message()
            m.add_attachment(read(corpus("pdf", "text", "crazyones-pdfa.pdf")), maintype="application",
                             subtype="pdf", filename="資料.pdf")
            data = m.as_bytes()
            start = data.index(b"filename")
            report = self.assert_attachment_removed(data[:start + (len(data) - start) // 2], "資料.pdf", "parse.failed")
            self.assertIn("mail.malformed", codes(report))
        self.assert_alive()


if __name__ == "__main__":
    unittest.main()
