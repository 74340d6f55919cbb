"""Mail (issue 6) through a real mugaid and the real `mugai sanitize-mail`:
every message of the corpus ends in one recorded outcome and, when
delivered, is a message Python's email package and GMime both parse, with
only safe parts; Japanese charsets come out as the right UTF-8; malware in
any layer holds the whole message; attachments come back as their
derivatives, and the notice says what was changed."""

import base64
import email
import email.policy
import hashlib
import io
import sqlite3
import json
import os
import struct
import subprocess
import unittest
import zipfile
import zlib
from email.header import Header
from email.message import EmailMessage

from test_daemon import CORPUS, EICAR, TESTFILES, DaemonTestCase, codes

# The only MIME types a delivered message may contain.
SAFE_TYPES = {"multipart/mixed", "text/plain", "application/pdf", "image/png", "image/jpeg", "application/zip"}
# The only headers a delivered message may have: the kept ones, Mugai's,
# and MIME's own.
KEPT_HEADERS = {"from", "to", "cc", "reply-to", "subject", "date", "message-id", "in-reply-to", "references",
                "x-mugai-sanitized", "x-mugai-id", "mime-version", "content-type", "content-transfer-encoding"}
GMIME_CHECK = os.path.join(os.path.dirname(os.path.abspath(__file__)), "gmime_check.py")
MAIL_CORPUS = os.path.join(CORPUS, "mail")
NOTICE_MARK = "【無害化通知 / Mugai sanitization notice】"


def corpus_messages():
    paths = []
    for root, _, files in os.walk(MAIL_CORPUS):
        paths += [os.path.join(root, f) for f in files]
    return sorted(paths)


def parse(data):
    return email.message_from_bytes(data, policy=email.policy.default)


def texts(message):
    """The decoded text of every text/plain part, in order."""
    return [p.get_content() for p in message.walk() if p.get_content_type() == "text/plain"]


def gmime_check(paths):
    r = subprocess.run(["/usr/bin/python3", GMIME_CHECK, *paths], capture_output=True, timeout=300)
    if r.returncode != 0:
        raise AssertionError(r.stderr.decode())
    return json.loads(r.stdout)


def attachment_names(message):
    return [p.get_filename() for p in message.walk() if p.get_filename()]


class MailCase(DaemonTestCase):
    def sanitize_mail(self, path):
        """Returns (exit code, report, the delivered message's bytes or None).
        The message is written in the daemon's directory, never beside
        `path` (which may be in the shared corpus)."""
        out = self.output_path(path)
        r = self.daemon.cli("sanitize-mail", path, "-o", out, "--json")
        if r.returncode == 1:
            raise AssertionError(f"mugai failed on {path}: {r.stderr.decode()}\n{self.daemon.log_text()[-4000:]}")
        report = json.loads(r.stdout)
        delivered = None
        if report["outcome"] in ("delivered", "delivered_with_removals"):
            with open(out, "rb") as f:
                delivered = f.read()
        return r.returncode, report, delivered

    def output_path(self, path):
        return os.path.join(self.daemon.dir, "out-" + hashlib.sha256(path.encode()).hexdigest()[:16] + ".eml")

    def sanitize_message(self, message, name="message.eml"):
        data = message if isinstance(message, bytes) else message.as_bytes(policy=email.policy.SMTP)
        return self.sanitize_mail(self.daemon.write(name, data))

    def assert_safe_message(self, data, report, where=""):
        """A delivered message: what the report says, parsed cleanly by
        Python's email package, nothing but safe parts."""
        (derivative,) = report["item"]["derivatives"]
        self.assertEqual(derivative["sha256"], hashlib.sha256(data).hexdigest(), where)
        self.assertEqual(derivative["media_type"], "message/rfc822", where)
        message = parse(data)
        self.assertTrue(set(k.lower() for k in message.keys()) <= KEPT_HEADERS, f"{where}: {message.keys()}")
        self.assertEqual(message["X-Mugai-Id"], report["item_id"], where)
        self.assertTrue(message["X-Mugai-Sanitized"], where)
        for part in message.walk():
            self.assertEqual(part.defects, [], f"{where}: {part.get_content_type()}")
            self.assertIn(part.get_content_type(), SAFE_TYPES, where)
            if part.get_content_type() == "text/plain":
                part.get_content()  # decodes
        return message

    def original_kept(self, item_id):
        """Whether the store kept the original of `item_id` (the vault)."""
        with sqlite3.connect(os.path.join(self.daemon.dir, "data", "mugai.db")) as db:
            (kept,) = db.execute("SELECT has_original FROM items WHERE id = ?", (item_id,)).fetchone()
        return bool(kept)

    def delivered(self, message, name="message.eml"):
        rc, report, data = self.sanitize_message(message, name)
        self.assertEqual(rc, 0, json.dumps(report, ensure_ascii=False))
        return report, self.assert_safe_message(data, report, name)

    def held(self, message, name="message.eml"):
        rc, report, data = self.sanitize_message(message, name)
        self.assertEqual(rc, 2, json.dumps(report, ensure_ascii=False))
        self.assertEqual(report["outcome"], "quarantined")
        self.assertIsNone(data)
        rc, item = self.daemon.quarantine("show", report["item_id"])
        self.assertEqual(rc, 0)
        self.assertEqual(item["sha256"], report["item"]["sha256"])
        return report


def simple_message(subject="テスト", body="本文です。\n"):
    m = EmailMessage()
    m["From"] = "差出人 <sender@example.jp>"
    m["To"] = "受取人 <user@city.example.lg.jp>"
    m["Subject"] = subject
    m["Message-ID"] = "<test-1@example.jp>"
    m.set_content(body)
    return m


def tiny_png():
    """A 2x2 red PNG."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    rows = b"".join(b"\x00" + b"\xff\x00\x00" * 2 for _ in range(2))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 2, 2, 8, 2, 0, 0, 0)) +
            chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def encoded_word(text, charset):
    """An RFC 2047 B-encoded word in `charset`, as Japanese mailers write them."""
    codec = {"Shift_JIS": "cp932"}.get(charset, charset)
    return f"=?{charset}?B?{base64.b64encode(text.encode(codec)).decode()}?="


def raw_message(headers, body):
    """A message from literal header lines and body bytes (what a Japanese
    mailer writes, charsets and all)."""
    head = "".join(h + "\r\n" for h in ["From: sender@example.jp", "To: user@city.example.lg.jp",
                                         "Message-ID: <raw@example.jp>", "MIME-Version: 1.0", *headers])
    return head.encode("ascii") + b"\r\n" + body


class MailCorpusTest(MailCase):
    """Every file under corpus/mail (messages, and the .msg/.tnef files that
    are not messages): one recorded outcome each, the daemon never down,
    every delivered message safe and parsed by GMime too."""

    def test_every_corpus_message(self):
        paths = corpus_messages()
        self.assertGreater(len(paths), 100)
        outcomes, ids, delivered_paths = {}, set(), []
        for path in paths:
            with self.subTest(os.path.relpath(path, MAIL_CORPUS)):
                rc, report, data = self.sanitize_mail(path)
                self.assertIn(report["outcome"], ("delivered", "delivered_with_removals", "quarantined", "rejected"))
                self.assertNotIn(report["item_id"], ids)
                ids.add(report["item_id"])
                outcomes[report["outcome"]] = outcomes.get(report["outcome"], 0) + 1
                if data is not None:
                    message = self.assert_safe_message(data, report, path)
                    self.assertNotIn("text/html", [p.get_content_type() for p in message.walk()])
                    delivered_paths.append(self.output_path(path))
                self.assertIsNone(self.daemon.proc.poll(), self.daemon.log_text()[-4000:])
        print("corpus mail outcomes:", outcomes)
        self.assertGreater(outcomes.get("delivered", 0) + outcomes.get("delivered_with_removals", 0), 80)
        for path, result in gmime_check(delivered_paths).items():
            with self.subTest("gmime " + path):
                self.assertTrue(result["parsed"], path)
                self.assertTrue(set(result["types"]) <= SAFE_TYPES, result["types"])
        self.assert_alive()

    def test_outlook_msg_is_not_a_message(self):
        rc, report, _ = self.sanitize_mail(os.path.join(MAIL_CORPUS, "outlook-msg", "poi_quick.msg"))
        self.assertEqual(rc, 2)
        self.assertEqual(report["outcome"], "rejected")
        self.assertEqual(codes(report), ["mail.not_a_message"])


class JapaneseMailTest(MailCase):
    """ISO-2022-JP (with the Windows extensions), Shift_JIS and EUC-JP
    bodies and headers come out as the right UTF-8."""

    def body_text(self, message):
        return "\n".join(t for t in texts(message) if NOTICE_MARK not in t)

    def test_iso_2022_jp_body_and_subject(self):
        report, out = self.delivered(raw_message(
            [f"Subject: {encoded_word('会議のお知らせ', 'ISO-2022-JP')}",
             f"Cc: {encoded_word('差出人', 'ISO-2022-JP')} <cc@example.jp>",
             "Content-Type: text/plain; charset=ISO-2022-JP", "Content-Transfer-Encoding: 7bit"],
            "本日の会議は第二会議室で行います。\r\n".encode("iso-2022-jp")))
        self.assertEqual(out["Subject"], "会議のお知らせ")
        self.assertIn("本日の会議は第二会議室で行います。", self.body_text(out))
        self.assertEqual(out["Cc"].addresses[0].display_name, "差出人")

    def test_iso_2022_jp_with_windows_extensions(self):
        # ① and ㈱ (NEC row 13) inside ISO-2022-JP, as Outlook writes them.
        body = b"\x1b$B-!-j\x1b(B test\r\n"
        report, out = self.delivered(raw_message(
            ["Subject: =?ISO-2022-JP?B?GyRCLSEbKEI=?=", "Content-Type: text/plain; charset=ISO-2022-JP",
             "Content-Transfer-Encoding: 7bit"], body))
        self.assertIn("①㈱ test", self.body_text(out))
        self.assertEqual(out["Subject"], "①")

    def test_shift_jis_8bit_body(self):
        text = "請求書を送付します。①②③ 髙橋\r\n"
        report, out = self.delivered(raw_message(
            [f"Subject: {encoded_word('請求書', 'Shift_JIS')}",
             "Content-Type: text/plain; charset=Shift_JIS", "Content-Transfer-Encoding: 8bit"],
            text.encode("cp932")))
        self.assertIn("請求書を送付します。①②③ 髙橋", self.body_text(out))
        self.assertEqual(out["Subject"], "請求書")

    def test_euc_jp_body(self):
        report, out = self.delivered(raw_message(
            [f"Subject: {encoded_word('住民票', 'EUC-JP')}", "Content-Type: text/plain; charset=EUC-JP",
             "Content-Transfer-Encoding: base64"],
            base64.encodebytes("住民票の写しについて\n".encode("euc-jp"))))
        self.assertIn("住民票の写しについて", self.body_text(out))
        self.assertEqual(out["Subject"], "住民票")

    def test_utf16_body(self):
        report, out = self.delivered(raw_message(
            ["Subject: utf-16", "Content-Type: text/plain; charset=UTF-16", "Content-Transfer-Encoding: base64"],
            base64.encodebytes("ご案内：窓口は9時からです。\n".encode("utf-16"))))
        self.assertIn("ご案内：窓口は9時からです。", self.body_text(out))

    def test_mislabelled_charset_is_recovered(self):
        text = "こんにちは、市役所です。\n"
        report, out = self.delivered(raw_message(
            ["Subject: x", "Content-Type: text/plain; charset=iso-8859-1", "Content-Transfer-Encoding: 8bit"],
            text.encode("cp932")))
        self.assertIn("こんにちは、市役所です。", self.body_text(out))
        self.assertIn("mail.charset_fallback", codes(report))

    def test_corpus_japanese_subjects_and_bodies(self):
        expected = {
            "mikel_japanese_iso_2022.eml": ("まみむめも", "すみません。"),
            "mikel_japanese_shift_jis.eml": ("test", "このメールはテスト用のメールです。"),
            "mimekit_japanese.eml": ("日本語メールテスト (testing Japanese emails)", "正常に"),
        }
        for name, (subject, line) in expected.items():
            with self.subTest(name):
                rc, report, data = self.sanitize_mail(os.path.join(MAIL_CORPUS, "japanese", name))
                out = self.assert_safe_message(data, report, name)
                self.assertEqual(out["Subject"], subject)
                self.assertIn(line, self.body_text(out))

    def test_rfc2231_shift_jis_attachment_name(self):
        name = "見積書.txt"
        quoted = "".join(f"%{b:02X}" for b in name.encode("cp932"))
        body = (b"--b\r\nContent-Type: text/plain; charset=ISO-2022-JP\r\n\r\n" + "添付します".encode("iso-2022-jp") +
                b"\r\n--b\r\nContent-Type: text/plain; charset=Shift_JIS\r\n"
                b"Content-Disposition: attachment; filename*=shift_jis''" + quoted.encode() +
                b"\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
                base64.b64encode("見積金額は10万円です。\n".encode("cp932")) + b"\r\n--b--\r\n")
        report, out = self.delivered(raw_message(
            ["Subject: estimate", 'Content-Type: multipart/mixed; boundary="b"'], body))
        self.assertEqual(attachment_names(out), [name])
        (part,) = [p for p in out.walk() if p.get_filename() == name]
        self.assertEqual(part.get_content(), "見積金額は10万円です。\n")
        self.assertIn(b"filename*=", out.as_bytes())
        self.assertIn("CNV_TEXT", out["X-Mugai-Sanitized"])

    def test_html_only_shift_jis_mail_is_readable_text_with_links_defanged(self):
        html = ('<html><head><meta charset="Shift_JIS"></head><body><p>詳細は<a href="https://evil.example.jp/login">'
                'こちら</a>をご覧ください。</p><p><a href="http://phish.example/x">https://www.city.example.lg.jp/</a>'
                '</p><script>alert(1)</script></body></html>')
        report, out = self.delivered(raw_message(
            [f"Subject: {encoded_word('お知らせ', 'ISO-2022-JP')}",
             "Content-Type: text/html; charset=Shift_JIS", "Content-Transfer-Encoding: 8bit"], html.encode("cp932")))
        body = self.body_text(out)
        self.assertIn("詳細はこちら", body)
        self.assertIn("hxxps://evil[.]example[.]jp/login", body)
        self.assertNotIn("alert", body)
        everything = "\n".join(texts(out))
        self.assertNotIn("http://", everything.lower())
        self.assertNotIn("https://", everything.lower())
        self.assertIn("CHG_TEXT", out["X-Mugai-Sanitized"])
        self.assertIn("DEFANG_LINK", out["X-Mugai-Sanitized"])
        self.assertIn("mail.deceptive_link", codes(report))
        notice = [t for t in texts(out) if NOTICE_MARK in t]
        self.assertEqual(len(notice), 1)
        self.assertIn("phish[.]example", notice[0])
        self.assertIn(report["item_id"], notice[0])


class MalwareMailTest(MailCase):
    """A detection in the message or in any layer of any part holds the
    whole message."""

    def with_attachment(self, name, data, maintype="application", subtype="octet-stream"):
        m = simple_message()
        m.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
        return m

    def test_zip_in_zip_with_eicar(self):
        inner = io.BytesIO()
        with zipfile.ZipFile(inner, "w") as z:
            z.writestr("eicar.com", EICAR)
        outer = io.BytesIO()
        with zipfile.ZipFile(outer, "w") as z:
            z.writestr("inner.zip", inner.getvalue())
        report = self.held(self.with_attachment("documents.zip", outer.getvalue(), "application", "zip"))
        self.assertIn("av.detected", codes(report))

    def test_clam_tnef_as_winmail_dat(self):
        with open(os.path.join(TESTFILES, "clam.tnef"), "rb") as f:
            report = self.held(self.with_attachment("winmail.dat", f.read(), "application", "ms-tnef"))
        self.assertIn("av.detected", codes(report))

    def test_clamav_testfiles_mail(self):
        for name in ("clam.mail", "clam.exe.mbox.base64"):
            with self.subTest(name):
                rc, report, data = self.sanitize_mail(os.path.join(TESTFILES, name))
                self.assertEqual(report["outcome"], "quarantined", report)
                self.assertIn("av.detected", codes(report))
                self.assertIsNone(data)


class StripInfectedTest(MailCase):
    """infected = "strip": the infected attachment goes, the rest arrives."""

    config_extra = '[mail]\ninfected = "strip"\n'

    def test_infected_attachment_is_removed_and_listed(self):
        m = simple_message()
        m.add_attachment(EICAR, maintype="application", subtype="octet-stream", filename="eicar.com")
        m.add_attachment("議事録です。\n".encode("utf-8"), maintype="text", subtype="plain", filename="議事録.txt")
        report, out = self.delivered(m)
        self.assertEqual(report["outcome"], "delivered_with_removals")
        self.assertEqual(attachment_names(out), ["議事録.txt"])
        self.assertIn("DEL_INFECTED", out["X-Mugai-Sanitized"])
        notice = [t for t in texts(out) if NOTICE_MARK in t][0]
        self.assertIn("eicar.com", notice)
        self.assertIn("av.detected", notice)


class AttachmentMailTest(MailCase):
    """Attachments become their derivatives; what cannot be made safe is
    removed and listed; inline images are removed by default."""

    def test_pdf_attachment_is_flattened(self):
        with open(os.path.join(CORPUS, "pdf", "text", "crazyones-pdfa.pdf"), "rb") as f:
            pdf = f.read()
        m = simple_message()
        m.add_attachment(pdf, maintype="application", subtype="pdf", filename="資料.pdf")
        report, out = self.delivered(m)
        (part,) = [p for p in out.walk() if p.get_content_type() == "application/pdf"]
        self.assertEqual(part.get_filename(), "資料.pdf")
        self.assertNotEqual(part.get_content(), pdf)
        self.assertIn("CNV_PDF", out["X-Mugai-Sanitized"])
        self.assertEqual(report["item"]["children"][0]["action"], "convert_pdf")

    def test_executable_is_removed_and_listed(self):
        m = simple_message()
        # A DOS stub with a PE signature: libmagic's application/x-dosexec.
        m.add_attachment(b"MZ\x90\x00\x03" + b"\x00" * 55 + b"\x40\x00\x00\x00PE\x00\x00" + b"\x00" * 64,
                         maintype="application", subtype="octet-stream", filename="請求書.pdf.exe")
        m.add_attachment("議事録です。\n".encode("utf-8"), maintype="text", subtype="plain", filename="議事録.txt")
        report, out = self.delivered(m)
        self.assertEqual(report["outcome"], "delivered_with_removals")
        self.assertEqual(attachment_names(out), ["議事録.txt"])
        self.assertIn("DEL_ATTACH", out["X-Mugai-Sanitized"])
        notice = [t for t in texts(out) if NOTICE_MARK in t][0]
        self.assertIn("請求書.pdf.exe", notice)
        self.assertIn("type.blocked", notice)

    def test_stub_named_exe_is_what_its_bytes_are(self):
        # mimedefang's test.exe is two bytes of text: its name is no reason
        # to remove it, and its bytes are no executable.
        rc, report, data = self.sanitize_mail(os.path.join(MAIL_CORPUS, "attachments", "mimedefang_exe.eml"))
        out = self.assert_safe_message(data, report)
        self.assertEqual(attachment_names(out), ["test.txt"])
        self.assertIn("type.mismatch", codes({"item": report["item"]["children"][0]}))

    def test_inline_image_is_removed(self):
        m = simple_message()
        m.set_content("see the logo")
        m.add_alternative('<p>logo: <img src="cid:logo@x"></p>', subtype="html")
        m.get_payload()[1].add_related(tiny_png(), maintype="image", subtype="png", cid="<logo@x>")
        report, out = self.delivered(m)
        self.assertEqual(report["outcome"], "delivered_with_removals")
        self.assertIn("DEL_INLINE", out["X-Mugai-Sanitized"])
        self.assertEqual([p for p in out.walk() if p.get_content_type().startswith("image/")], [])

    def test_the_original_is_kept_when_more_than_the_body_changed(self):
        m = simple_message()
        m.add_attachment("メモ\n".encode("utf-8"), maintype="text", subtype="plain", filename="メモ.txt")
        report, _ = self.delivered(m)
        self.assertTrue(self.original_kept(report["item_id"]))
        report, _ = self.delivered(simple_message(body="本文だけ\n"))
        self.assertFalse(self.original_kept(report["item_id"]))

    def test_plain_text_mail_is_one_text_part(self):
        report, out = self.delivered(simple_message(body="こんにちは\n"))
        self.assertEqual(report["outcome"], "delivered")
        self.assertEqual(out.get_content_type(), "text/plain")
        self.assertEqual(out.get_content(), "こんにちは\n")
        self.assertEqual(out["X-Mugai-Sanitized"], "NONE")
        self.assertEqual(out["Message-ID"], "<test-1@example.jp>")


class MailPolicyTest(MailCase):
    """The other [mail] settings: links removed, inline images attached,
    every original kept."""

    config_extra = '[mail]\nlinks = "remove"\ninline_images = "attach"\nkeep_original = "always"\n'

    def test_links_removed_inline_images_attached_original_kept(self):
        m = simple_message(body="詳細は https://www.example.jp/a をご覧ください。\n")
        m.add_alternative('<p>詳細は<a href="https://www.example.jp/a">こちら</a> <img src="cid:logo@x"></p>',
                          subtype="html")
        m.get_payload()[1].add_related(tiny_png(), maintype="image", subtype="png", cid="<logo@x>")
        report, out = self.delivered(m)
        body = "\n".join(texts(out))
        self.assertIn("[URL削除 / link removed]", body)
        self.assertNotIn("example.jp/a", body)
        self.assertIn("DEL_LINK", out["X-Mugai-Sanitized"])
        self.assertEqual([p.get_content_type() for p in out.walk() if p.get_content_type().startswith("image/")],
                         ["image/png"])
        self.assertIn("CNV_IMG", out["X-Mugai-Sanitized"])
        self.assertTrue(self.original_kept(report["item_id"]))
        report, _ = self.delivered(simple_message(body="本文だけ\n"))
        self.assertTrue(self.original_kept(report["item_id"]))


class MimeLimitsTest(MailCase):
    """MIME bombs stop at their limit, with its code, and hold the message."""

    config_extra = "[limits]\nmax_file_bytes = 4000000\n"

    def test_deep_nesting(self):
        depth = 40

        def part(level):
            if level == depth:
                return b"Content-Type: text/plain\r\n\r\ninnermost\r\n"
            return (f'Content-Type: multipart/mixed; boundary="b{level}"\r\n\r\n--b{level}\r\n'.encode() +
                    part(level + 1) + f"\r\n--b{level}--\r\n".encode())

        report = self.held(raw_message(["Subject: deep", 'Content-Type: multipart/mixed; boundary="b0"'],
                                       b"--b0\r\n" + part(1) + b"\r\n--b0--\r\n"))
        self.assertIn("limit.mime_depth", codes(report))

    def test_thousands_of_parts(self):
        parts = b"".join(b"--b\r\nContent-Type: text/plain\r\n\r\npart\r\n" for _ in range(3000))
        report = self.held(raw_message(["Subject: many", 'Content-Type: multipart/mixed; boundary="b"'],
                                       parts + b"--b--\r\n"))
        self.assertIn("limit.mime_parts", codes(report))

    def test_huge_header(self):
        filler = "".join(f"X-Filler-{i}: {'x' * 900}\r\n" for i in range(400))
        report = self.held(raw_message(["Subject: big", filler.rstrip("\r\n")], b"body\r\n"))
        self.assertIn("limit.header_size", codes(report))

    def test_oversized_message_is_rejected(self):
        rc, report, data = self.sanitize_message(simple_message(body="x" * 5_000_000))
        self.assertEqual(rc, 2)
        self.assertEqual(report["outcome"], "rejected")
        self.assertEqual(codes(report), ["limit.message_size"])
        self.assert_alive()


if __name__ == "__main__":
    unittest.main()
