"""Issue 7 end to end: a real Postfix (a private instance of the Debian
package, loopback only) in front of the real mugai-milter and mugaid,
relaying to an SMTP sink; mail sent with smtplib and Postfix's sendmail,
what arrives parsed with Python's email package.

(a) a Japanese HTML mail arrives as UTF-8 plain text with X-Mugai-Sanitized;
(b) a PDF attachment arrives flattened;
(c) EICAR in a zip does not arrive: the recipients get a notice naming the
    item (default), or the sender a 550 (quarantined = "reject"); the
    message is in the quarantine;
(d) with mugaid stopped the mail is tempfailed (451 4.3.0) and stays queued
    (in a sending MTA's queue, and in the relay's own maildrop for mail
    submitted on the host); when mugaid is back and the queues are flushed
    it arrives, sanitized, once;
(e) 200 messages sent at once all arrive sanitized or as notices, each
    exactly once, and the quarantine holds exactly the infected ones; the
    messages per second through Postfix are printed.

"""

import base64
import concurrent.futures
import hashlib
import io
import os
import re
import shutil
import smtplib
import subprocess
import tempfile
import threading
import time
import tomllib
import unittest
import zipfile
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from postfix_harness import (CORPUS, DEPLOY, EICAR, MAIN_SNIPPET, MASTER_SNIPPET, MILTER_BIN, SAMPLES, E2EDaemon,
                             Milter, Postfix, SmtpSink, check_environment, free_port, wait_for)

RECIPIENT = "user@city.example.lg.jp"
NOTICE_MARK = "【無害化通知 / Mugai sanitization notice】"
SAFE_TYPES = {"multipart/mixed", "text/plain", "application/pdf", "image/png", "image/jpeg", "application/zip"}
LOAD_MESSAGES = 200


# --------------------------------------------------------------------------
# Messages


def encoded_word(text, label, codec):
    """An RFC 2047 B-encoded word, as Japanese mailers write them."""
    return f"=?{label}?B?{base64.b64encode(text.encode(codec)).decode()}?="


def japanese_html(charset, token, sender):
    """An HTML-only Japanese mail, as Japanese mailers send them: in
    ISO-2022-JP (7bit) or in Shift_JIS (Windows' CP932, base64), headers as
    encoded words in the same charset."""
    label, codec = {"iso-2022-jp": ("ISO-2022-JP", "iso-2022-jp"), "shift_jis": ("Shift_JIS", "cp932")}[charset]
    special = "①②③ 髙橋様" if charset == "shift_jis" else "第三会議室 高橋様"  # CP932 extensions
    html = ("<html><head><title>お知らせ</title><script>alert('x')</script>"
            "<style>p { color: red }</style></head><body>"
            f"<p>市民課からのお知らせです。{token}</p>"
            "<p>詳細は<a href=\"https://www.example.jp/info\">こちら</a>をご覧ください。</p>"
            f"<p>{special}、よろしくお願いいたします。</p></body></html>\r\n")
    body = html.encode(codec)
    if charset == "shift_jis":
        cte, body = "base64", base64.encodebytes(body).replace(b"\n", b"\r\n")
    else:
        cte = "7bit"
    headers = [
        f"From: {encoded_word('市民課', label, codec)} <{sender}>",
        f"To: {encoded_word('受取人', label, codec)} <{RECIPIENT}>",
        f"Subject: {encoded_word(f'会議のお知らせ {token}', label, codec)}",
        f"Date: {formatdate(localtime=True)}",
        f"Message-ID: {make_msgid(domain='example.jp')}",
        "X-Original-Only: this header must not survive",
        "MIME-Version: 1.0",
        f'Content-Type: text/html; charset="{label}"',
        f"Content-Transfer-Encoding: {cte}",
    ]
    return "".join(h + "\r\n" for h in headers).encode("ascii") + b"\r\n" + body


def plain_message(subject, body, sender):
    m = EmailMessage()
    m["From"] = f"差出人 <{sender}>"
    m["To"] = f"受取人 <{RECIPIENT}>"
    m["Subject"] = subject
    m["Date"] = formatdate(localtime=True)
    m["Message-ID"] = make_msgid(domain="example.jp")
    m.set_content(body)
    return m


def with_pdf(sender, pdf, name="crazyones.pdf"):
    m = plain_message("資料送付 PDF", "資料を添付します。\n", sender)
    m.add_attachment(pdf, maintype="application", subtype="pdf", filename=name)
    return m.as_bytes()


def eicar_zip():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("readme.txt", "請求書です。\n")
        z.writestr("invoice.com", EICAR)
    return buf.getvalue()


def with_eicar_zip(sender, token="EICAR"):
    m = plain_message(f"請求書 {token}", f"請求書を添付します。{token}\n", sender)
    m.add_attachment(eicar_zip(), maintype="application", subtype="zip", filename="invoice.zip")
    return m.as_bytes()


def texts(message):
    return [p.get_content() for p in message.walk() if p.get_content_type() == "text/plain"]


def body_text(message):
    return "\n".join(t for t in texts(message) if NOTICE_MARK not in t)


def strip_relay_trace(data):
    """The message without the Received: fields Postfix itself put on top
    (the relay's trace is not part of what mugaid wrote)."""
    while data.startswith(b"Received:"):
        end = data.find(b"\n")
        while end != -1 and data[end + 1:end + 2] in (b" ", b"\t"):
            end = data.find(b"\n", end + 1)
        field = data[:end + 1]
        if b"(Postfix" not in field or end == -1:
            break
        data = data[end + 1:]
    return data


# --------------------------------------------------------------------------
# The setup every suite shares


class PostfixCase(unittest.TestCase):
    """mugaid, mugai-milter in front of it, a private Postfix in front of
    the milter relaying to the sink."""

    quarantined = "notice"
    milter_timeout = None
    # True: mugaid's ingress is TCP with mutual TLS (certificates from
    # deploy/make-test-certs.sh), and the milter presents its own.
    tls = False

    @classmethod
    def setUpClass(cls):
        check_environment()
        daemon_config, milter_config = "", ""
        if cls.tls:
            cls.certs = tempfile.mkdtemp(prefix="mugai-e2e-certs-")
            cls.addClassCleanup(shutil.rmtree, cls.certs, ignore_errors=True)
            subprocess.run(["bash", os.path.join(DEPLOY, "make-test-certs.sh"), cls.certs], check=True,
                           capture_output=True)
            daemon_config = (f'[listeners.ingress_tls]\ncert_file = "{cls.certs}/ingress.crt"\n'
                             f'key_file = "{cls.certs}/ingress.key"\nclient_ca_file = "{cls.certs}/internet-ca.crt"\n')
            milter_config = cls.milter_tls("milter")
        cls.daemon = E2EDaemon(daemon_config)
        if cls.tls:
            # An IP literal: a name would go through c-ares, whose resolver
            # leaks a few bytes at exit that LeakSanitizer reports.
            cls.daemon.ingress = f"127.0.0.1:{free_port()}"
        cls.addClassCleanup(cls.daemon.cleanup)
        cls.daemon.start()
        cls.milter = Milter(cls.daemon.ingress, quarantined=cls.quarantined, timeout_seconds=cls.milter_timeout,
                            extra=milter_config)
        cls.addClassCleanup(cls.milter.cleanup)
        cls.milter.start()
        cls.sink = SmtpSink().start()
        cls.addClassCleanup(cls.sink.stop)
        cls.postfix = Postfix("boundary", cls.sink.port, milter=cls.milter.postfix_address)
        cls.addClassCleanup(cls.postfix.cleanup)
        cls.postfix.start()

    @classmethod
    def milter_tls(cls, client):
        """[milter] lines for TLS to mugaid, as `client` (a certificate of
        make-test-certs.sh) or, for None, with no certificate of its own."""
        lines = f'tls_ca_file = "{cls.certs}/ca.crt"\n'
        if client:
            lines += f'tls_cert_file = "{cls.certs}/{client}.crt"\ntls_key_file = "{cls.certs}/{client}.key"\n'
        return lines

    @classmethod
    def tearDownClass(cls):
        # Stopped in order, each checked, every problem reported together;
        # addClassCleanup removes the directories (and stops whatever is
        # still running after a failure).
        problems = []
        try:
            cls.postfix.stop()
        except AssertionError as e:
            problems.append(str(e))
        rc = cls.milter.stop()
        if rc != 0:
            problems.append(f"mugai-milter exited with {rc} on SIGTERM (expected 0):\n{cls.milter.log_text()[-2000:]}")
        rc = cls.daemon.stop()
        if rc != 0:
            problems.append(f"mugaid exited with {rc} on SIGTERM:\n{cls.daemon.log_text()[-3000:]}")
        if problems:
            raise AssertionError("\n".join(problems))

    def logs(self):
        return (f"\n--- Postfix maillog:\n{self.postfix.log_text()[-6000:]}"
                f"\n--- mugai-milter:\n{self.milter.log_text()[-4000:]}"
                f"\n--- mugaid:\n{self.daemon.log_text()[-3000:]}")

    def arrived(self, sender, count=1, timeout=120):
        """The messages from `sender` in the sink, once `count` are there;
        then a second more to catch a duplicate."""
        found = self.sink.wait_count(lambda m: m.mail_from == sender, count, timeout)
        if len(found) < count:
            self.fail(f"{len(found)} of {count} message(s) from {sender} arrived in {timeout} s" + self.logs())
        time.sleep(1)
        found = self.sink.from_sender(sender)
        self.assertEqual(len(found), count, f"duplicates from {sender}: {found}")
        return found

    def item(self, item_id):
        rows = {r[0]: r for r in self.daemon.db_rows()}
        self.assertIn(item_id, rows, "X-Mugai-Id is no item mugaid recorded")
        return rows[item_id]

    def assert_sanitized(self, received, where=""):
        """A delivered message: exactly the message mugaid wrote (its sha256 is
        the derivative's in the item's report), with only safe parts, every
        part parsing without defects."""
        message = received.message
        item_id = message["X-Mugai-Id"]
        self.assertTrue(item_id, f"{where}: no X-Mugai-Id")
        self.assertTrue(message["X-Mugai-Sanitized"], f"{where}: no X-Mugai-Sanitized")
        self.assertEqual(received.rcpt_to, [RECIPIENT], where)
        _, outcome, report = self.item(item_id)
        self.assertIn(outcome, ("delivered", "delivered_with_removals"), where)
        # What mugaid wrote has LF line ends; SMTP carries CRLF.
        relayed = strip_relay_trace(received.data.replace(b"\r\n", b"\n"))
        self.assertIn(hashlib.sha256(relayed).hexdigest().encode(), report,
                      f"{where}: the relayed message is not the derivative mugaid recorded:\n"
                      f"{received.data[:3000].decode(errors='replace')}")
        self.assertNotIn(b"X-Original-Only", received.data, where)
        for part in message.walk():
            self.assertEqual(part.defects, [], f"{where}: {part.get_content_type()}")
            self.assertIn(part.get_content_type(), SAFE_TYPES, where)
            if part.get_content_type() == "text/plain":
                self.assertEqual(part.get_content_charset(), "utf-8", where)
        return message

    def assert_notice(self, received, where=""):
        """A quarantined message replaced by the notice: short text/plain
        naming the item, nothing of the original; the item is quarantined."""
        message = received.message
        item_id = message["X-Mugai-Id"]
        self.assertTrue(item_id, f"{where}: no X-Mugai-Id on the notice")
        self.assertIn("Mugai", message["Subject"], where)
        self.assertEqual(message.get_content_type(), "text/plain", where)
        self.assertEqual([p.get_content_type() for p in message.walk()], ["text/plain"], where)
        text = message.get_content()
        self.assertIn(item_id, text, where)
        self.assertNotIn(b"EICAR-STANDARD-ANTIVIRUS-TEST-FILE", received.data, where)
        self.assertLess(len(received.data), 16384, where)
        self.assertEqual(self.item(item_id)[1], "quarantined", where)
        return item_id

    def milter_logged(self, queue_id, item_id):
        """mugai-milter logs the Postfix queue id ({i}) with the item id."""
        lines = [line for line in self.milter.log_text().splitlines() if queue_id in line and item_id in line]
        self.assertTrue(lines, f"mugai-milter logged no line with queue id {queue_id} and item {item_id}:\n"
                        f"{self.milter.log_text()[-3000:]}")


# --------------------------------------------------------------------------
# (a), (b), (c) with the default notice


class PostfixMailTest(PostfixCase):
    def test_a_japanese_html_mail_arrives_as_utf8_text(self):
        for charset in ("iso-2022-jp", "shift_jis"):
            with self.subTest(charset):
                sender = f"html-{charset}@example.jp"
                token = f"TOKEN-{charset.upper()}"
                queue_id = self.postfix.send(japanese_html(charset, token, sender), sender, [RECIPIENT])
                self.assertTrue(queue_id)
                (received,) = self.arrived(sender)
                message = self.assert_sanitized(received, charset)
                self.assertEqual(message["Subject"], f"会議のお知らせ {token}")
                self.assertEqual(message["From"].addresses[0].display_name, "市民課")
                self.assertNotIn("text/html", [p.get_content_type() for p in message.walk()])
                text = body_text(message)
                self.assertIn(f"市民課からのお知らせです。{token}", text)
                self.assertIn("詳細はこちら", text)
                self.assertIn("hxxps://www[.]example[.]jp/info", text)
                if charset == "shift_jis":
                    self.assertIn("①②③ 髙橋様", text)
                for gone in ("<p>", "<html", "alert(", "color: red", "https://"):
                    self.assertNotIn(gone, text)
                self.assertIn("CHG_TEXT", message["X-Mugai-Sanitized"])
                self.milter_logged(queue_id, message["X-Mugai-Id"])

    def test_b_pdf_attachment_arrives_flattened(self):
        path = os.path.join(CORPUS, "pdf", "text", "crazyones-pdfa.pdf")
        if not os.path.exists(path):
            self.fail(f"the corpus PDF {path} is missing (MUGAI_CORPUS_DIR={CORPUS!r})")
        with open(path, "rb") as f:
            original = f.read()
        sender = "pdf@example.jp"
        self.postfix.send(with_pdf(sender, original), sender, [RECIPIENT])
        (received,) = self.arrived(sender)
        message = self.assert_sanitized(received, "pdf")
        (part,) = [p for p in message.walk() if p.get_content_type() == "application/pdf"]
        self.assertEqual(part.get_filename(), "crazyones.pdf")
        pdf = part.get_content()
        self.assertTrue(pdf.startswith(b"%PDF-"))
        self.assertNotEqual(pdf, original)
        # Flattened: one image per page, nothing else — no fonts, no text.
        self.assertIn(b"/Image", pdf)
        for marker in (b"/Font", b"/JavaScript", b"/OpenAction", b"/Metadata", b"/Annots"):
            self.assertNotIn(marker, pdf)
        self.assertEqual(self.pages(pdf), self.pages(original))
        self.assertIn("CNV_PDF", message["X-Mugai-Sanitized"])

    def test_b_a_rebuilt_message_over_message_size_limit_is_refused_not_relayed(self):
        # Flattening makes this PDF about ten times larger. With a
        # message_size_limit the original fits under but the rebuilt message
        # does not, Postfix refuses the message (552) at the end of DATA:
        # nothing is relayed, neither the original nor a cut-short message.
        path = os.path.join(CORPUS, "pdf", "text", "pdflatex-4-pages.pdf")
        if not os.path.exists(path):
            self.fail(f"the corpus PDF {path} is missing (MUGAI_CORPUS_DIR={CORPUS!r})")
        with open(path, "rb") as f:
            data = with_pdf("too-big@example.jp", f.read(), "pdflatex.pdf")
        limit = self.postfix.postconf("-h", "message_size_limit").strip()
        self.addCleanup(self.postfix.reload_with, message_size_limit=limit)
        self.postfix.reload_with(message_size_limit=str(len(data) + 4096))
        with self.assertRaises(smtplib.SMTPDataError) as caught:
            self.postfix.send(data, "too-big@example.jp", [RECIPIENT])
        self.assertEqual(caught.exception.smtp_code, 552, caught.exception.smtp_error)
        self.assertIn(b"5.3.4", caught.exception.smtp_error)
        self.assertIn("queue file size limit exceeded", self.postfix.log_text())
        time.sleep(2)
        self.assertEqual(self.sink.from_sender("too-big@example.jp"), [])
        self.assertEqual(self.postfix.queue(), [])

    def pages(self, pdf):
        r = subprocess.run(["pdfinfo", "-"], input=pdf, capture_output=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        return int(re.search(rb"^Pages:\s+(\d+)", r.stdout, re.M).group(1))

    def test_c_eicar_in_a_zip_becomes_a_notice_and_is_quarantined(self):
        sender = "eicar-notice@example.jp"
        queue_id = self.postfix.send(with_eicar_zip(sender), sender, [RECIPIENT])
        (received,) = self.arrived(sender)
        item_id = self.assert_notice(received, "eicar notice")
        self.assertIn(item_id, self.daemon.quarantined_ids())
        rc, shown = self.daemon.quarantine("show", item_id)
        self.assertEqual(rc, 0)
        self.assertIn("av.detected", shown["finding_codes"])
        self.milter_logged(queue_id, item_id)


# --------------------------------------------------------------------------
# The deploy files themselves (no daemon, no milter, no root needed)


class DeployFilesTest(unittest.TestCase):
    """deploy/postfix/*.snippet parse cleanly with Postfix's own postconf
    and say what issue 7 asks; the systemd units verify."""

    def postconf(self, config_dir, *args):
        r = subprocess.run(["/usr/sbin/postconf", "-c", config_dir, *args], capture_output=True, text=True,
                           timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertNotIn("warning", r.stderr)
        return r.stdout

    def test_postfix_snippets(self):
        if not os.path.exists("/usr/sbin/postconf"):
            self.fail("Postfix is not installed (run deploy/setup.sh install)")
        with tempfile.TemporaryDirectory() as d:
            with open(MAIN_SNIPPET) as f, open(os.path.join(d, "main.cf"), "w") as out:
                out.write(f.read())
            with open(MASTER_SNIPPET) as f, open(os.path.join(d, "master.cf"), "w") as out:
                out.write(f.read())
            main = {name.strip(): value.strip() for name, _, value in
                    (line.partition("=") for line in self.postconf(d, "-n").splitlines())}
            master = self.postconf(d, "-P")
        with open(os.path.join(SAMPLES, "mugai.toml"), "rb") as f:
            milter = tomllib.load(f)["milter"]
        self.assertEqual(main["milter_default_action"], "tempfail")
        self.assertEqual(main["milter_protocol"], "6")
        self.assertEqual(main["smtpd_milters"], main["non_smtpd_milters"])
        self.assertTrue(main["smtpd_milters"].startswith("inet:127.0.0.1:"))
        seconds = int(main["milter_content_timeout"].rstrip("s"))
        self.assertGreater(seconds, milter["timeout_seconds"], "milter_content_timeout must exceed the milter's own")
        self.assertGreater(int(main["message_size_limit"]), milter["max_message_bytes"],
                           "no room for a rebuilt message larger than the largest original")
        self.assertGreaterEqual(int(main["mailbox_size_limit"]), int(main["message_size_limit"]))
        self.assertIn("i", main["milter_mail_macros"].split())
        self.assertIn("i", main["milter_end_of_data_macros"].split())
        self.assertNotIn("soft_bounce", main)
        self.assertIn(f"smtp/inet/smtpd_milters = {main['smtpd_milters']}", master)
        self.assertIn("smtp/inet/milter_default_action = tempfail", master)

    def test_systemd_units_verify(self):
        if not shutil.which("systemd-analyze"):
            self.skipTest("systemd-analyze is not installed")
        with tempfile.TemporaryDirectory() as d:
            names = []
            for name in ("mugaid.service", "mugai-milter.service"):
                with open(os.path.join(DEPLOY, "systemd", name)) as f:
                    unit = f.read()
                for key in ("RuntimeDirectory=mugai", "NoNewPrivileges=yes", "ProtectSystem=strict",
                            "PrivateTmp=yes", "Restart=on-failure", "Type=simple"):
                    self.assertIn(key + "\n", unit, name)
                # verify checks that ExecStart's program exists: point it at
                # one that does.
                unit = re.sub(r"ExecStart=/usr/local/bin/\S+", "ExecStart=/bin/true", unit)
                with open(os.path.join(d, name), "w") as f:
                    f.write(unit)
                names.append(os.path.join(d, name))
            r = subprocess.run(["systemd-analyze", "verify", "--man=no", *names], capture_output=True, text=True,
                               timeout=60)
            self.assertEqual((r.returncode, r.stderr), (0, ""))
        with open(os.path.join(DEPLOY, "systemd", "mugai-milter.service")) as f:
            milter_unit = f.read()
        self.assertIn("After=network.target mugaid.service", milter_unit)
        self.assertIn("Wants=mugaid.service", milter_unit)


# --------------------------------------------------------------------------
# (c) with quarantined = "reject"


class PostfixRejectTest(PostfixCase):
    quarantined = "reject"

    def test_c_eicar_in_a_zip_is_rejected_with_550_and_quarantined(self):
        sender = "eicar-reject@example.jp"
        with self.assertRaises(smtplib.SMTPDataError) as caught:
            self.postfix.send(with_eicar_zip(sender), sender, [RECIPIENT])
        code, text = caught.exception.smtp_code, caught.exception.smtp_error.decode(errors="replace")
        self.assertEqual(code, 550, text)
        self.assertIn("5.7.1", text)
        quarantined = self.daemon.quarantined_ids()
        self.assertEqual(len(quarantined), 1, quarantined)
        self.assertIn(quarantined[0], text, "the 550 text does not name the item id")
        time.sleep(2)
        self.assertEqual(self.sink.from_sender(sender), [])
        self.assertEqual(self.postfix.queue(), [])

    def test_clean_mail_still_arrives(self):
        sender = "clean-reject-mode@example.jp"
        self.postfix.send(plain_message("通常", "普通のメールです。\n", sender).as_bytes(), sender, [RECIPIENT])
        (received,) = self.arrived(sender)
        self.assertIn("普通のメールです。", body_text(self.assert_sanitized(received)))


class PostfixTlsTest(PostfixCase):
    """mugaid on TCP with mutual TLS: the milter reaches it with its own
    certificate; without one, or in plaintext, mugaid does not answer."""

    tls = True

    def check(self, milter_config):
        config = os.path.join(self.certs, "check.toml")
        with open(config, "w") as f:
            f.write("[milter]\n" + milter_config)
        return subprocess.run([MILTER_BIN, "--config", config, "--server", self.daemon.ingress, "--check"],
                              capture_output=True, timeout=60)

    def test_mail_arrives_sanitized_over_mutual_tls(self):
        sender = "tls@example.jp"
        self.postfix.send(plain_message("暗号化", "TLS 経由のメールです。\n", sender).as_bytes(), sender, [RECIPIENT])
        (received,) = self.arrived(sender)
        self.assertIn("TLS 経由のメールです。", body_text(self.assert_sanitized(received)))
        self.assertIn("(mutual TLS)", self.daemon.log_text())

    def test_mugaid_refuses_a_client_without_a_certificate_or_without_tls(self):
        self.assertEqual(self.check(self.milter_tls("milter")).returncode, 0)
        for what, config in (("no client certificate", self.milter_tls(None)), ("plaintext", "")):
            with self.subTest(what):
                r = self.check(config)
                self.assertEqual(r.returncode, 1, r.stdout.decode() + r.stderr.decode())


# --------------------------------------------------------------------------
# (d) mugaid down


class PostfixOutageTest(PostfixCase):
    def test_d_mugaid_down_tempfails_and_the_queued_mail_arrives_sanitized_later(self):
        # The internet-side MTA that sends to the boundary relay: a second
        # private Postfix without milters, relaying everything to it.
        front = Postfix("front", self.postfix.port)
        self.addCleanup(front.cleanup)
        front.start()

        rc = self.daemon.stop()
        self.assertEqual(rc, 0, self.daemon.log_text()[-3000:])

        # 1. A client talking SMTP to the relay is told to retry at the end
        #    of DATA (the milter's tempfail), and nothing is kept.
        direct = "outage-direct@example.jp"
        with self.assertRaises(smtplib.SMTPDataError) as caught:
            self.postfix.send(japanese_html("iso-2022-jp", "DIRECT", direct), direct, [RECIPIENT])
        self.assertEqual(caught.exception.smtp_code, 451, caught.exception.smtp_error)
        self.assertIn(b"4.3.0", caught.exception.smtp_error)
        self.assertEqual(self.postfix.queue(), [])

        # 2. Through the sending MTA: it queues the message and defers it
        #    with the relay's 451 4.3.0, retry after retry.
        relayed = "outage-front@example.jp"
        front.send(japanese_html("shift_jis", "VIA-FRONT", relayed), relayed, [RECIPIENT])

        # 3. Submitted on the relay host itself (sendmail -> maildrop ->
        #    pickup -> cleanup with non_smtpd_milters): the milter's tempfail
        #    leaves it in the maildrop queue, and pickup tries again.
        local = "outage-local@example.jp"
        self.postfix.sendmail(japanese_html("iso-2022-jp", "LOCAL", local), local, [RECIPIENT])

        def deferred_in_front():
            entries = [q for q in front.queue() if q["sender"] == relayed]
            reasons = [r.get("delay_reason", "") for q in entries for r in q["recipients"]]
            return entries and entries[0]["queue_name"] == "deferred" and any("451 4.3.0" in r for r in reasons)
        wait_for(deferred_in_front, 60, what="the sending MTA to defer the message with 451 4.3.0")
        wait_for(lambda: front.log_text().count("said: 451 4.3.0") >= 3, 60,
                 what="three deferred delivery attempts")
        self.postfix.flush()
        wait_for(lambda: len([line for line in self.postfix.log_text().splitlines()
                              if "milter-reject" in line and " 4.3.0 " in line and f"from=<{local}>" in line]) >= 2,
                 60, what="two tempfailed pickups of the locally submitted message")
        boundary_queue = self.postfix.queue()
        self.assertEqual([(q["queue_name"], q["sender"]) for q in boundary_queue], [("maildrop", local)],
                         self.logs())
        self.assertEqual([m for m in self.sink.snapshot() if m.mail_from.startswith("outage-")], [],
                         "something arrived while mugaid was down")
        queued = [q for q in front.queue() if q["sender"] == relayed]
        self.assertEqual(len(queued), 1)

        # mugaid back: flush both queues until both messages have arrived.
        started = time.time()
        self.daemon.start()
        deadline = time.time() + 240
        while time.time() < deadline:
            front.flush()
            self.postfix.flush()
            got = [m for m in self.sink.snapshot() if m.mail_from in (relayed, local)]
            if len(got) >= 2:
                break
            time.sleep(3)
        took = time.time() - started
        for sender, token in ((relayed, "VIA-FRONT"), (local, "LOCAL")):
            (received,) = self.arrived(sender, timeout=5)
            message = self.assert_sanitized(received, sender)
            self.assertIn(token, message["Subject"])
            self.assertIn(f"市民課からのお知らせです。{token}", body_text(message))
        print(f"\noutage: both queued messages arrived sanitized {took:.1f} s after mugaid restarted")
        time.sleep(3)
        self.assertEqual(self.sink.from_sender(direct), [])
        self.assertEqual(len([m for m in self.sink.snapshot() if m.mail_from.startswith("outage-")]), 2)
        self.assertEqual(front.queue(), [])
        self.assertEqual(self.postfix.queue(), [])
        front.stop()


# --------------------------------------------------------------------------
# (e) 200 at once


class PostfixLoadTest(PostfixCase):
    def message(self, i):
        sender = f"load-{i:03d}@example.jp"
        token = f"LOAD-{i:03d}"
        if i % 10 == 7:
            return sender, token, "infected", with_eicar_zip(sender, token)
        if i % 3 == 0:
            return sender, token, "clean", japanese_html("iso-2022-jp" if i % 2 else "shift_jis", token, sender)
        m = plain_message(f"連絡 {token}", f"本文です。{token}\n" + "日本語の行です。\n" * (i % 50), sender)
        if i % 5 == 1:
            m.add_attachment(f"添付ファイル {token}\n".encode("cp932"), maintype="text", subtype="plain",
                             filename="memo.txt")
        return sender, token, "clean", m.as_bytes()

    def test_e_200_concurrent_messages_each_arrive_once(self):
        messages = [self.message(i) for i in range(LOAD_MESSAGES)]
        retries = {}
        lock = threading.Lock()
        barrier = threading.Barrier(LOAD_MESSAGES)

        def send(entry):
            sender, _, _, data = entry
            barrier.wait(timeout=60)
            for attempt in range(20):
                try:
                    return self.postfix.send(data, sender, [RECIPIENT], timeout=600)
                except smtplib.SMTPResponseException as e:
                    if 400 <= e.smtp_code < 500:  # a real sender retries a 4xx
                        with lock:
                            retries[sender] = retries.get(sender, 0) + 1
                        time.sleep(1 + attempt)
                        continue
                    raise
            raise AssertionError(f"{sender}: still tempfailed after 20 attempts")

        started = time.time()
        with concurrent.futures.ThreadPoolExecutor(max_workers=LOAD_MESSAGES) as pool:
            futures = [pool.submit(send, m) for m in messages]
            errors = []
            for sender_entry, f in zip(messages, futures):
                try:
                    f.result()
                except Exception as e:  # noqa: BLE001 - collected and reported together
                    errors.append(f"{sender_entry[0]}: {e!r}")
        accepted = time.time()
        self.assertEqual(errors, [], self.logs())
        senders = {m[0] for m in messages}
        got = self.sink.wait_count(lambda m: m.mail_from in senders, LOAD_MESSAGES, 300)
        done = time.time()
        self.assertEqual(len(got), LOAD_MESSAGES, f"{len(got)} of {LOAD_MESSAGES} arrived" + self.logs())
        time.sleep(3)

        by_sender = {}
        for m in self.sink.snapshot():
            by_sender.setdefault(m.mail_from, []).append(m)
        dupes = {s: len(v) for s, v in by_sender.items() if s in senders and len(v) != 1}
        self.assertEqual(dupes, {}, "duplicated messages")
        self.assertEqual(set(by_sender) & senders, senders, "lost messages")

        notices, item_ids = [], set()
        for sender, token, kind, _ in messages:
            (received,) = by_sender[sender]
            if kind == "infected":
                notices.append(self.assert_notice(received, sender))
                item_ids.add(notices[-1])
            else:
                message = self.assert_sanitized(received, sender)
                self.assertIn(token, message["Subject"], sender)
                self.assertIn(token, body_text(message), sender)
                item_ids.add(message["X-Mugai-Id"])
        self.assertEqual(len(item_ids), LOAD_MESSAGES, "two messages share an item id")
        infected = sum(1 for m in messages if m[2] == "infected")
        self.assertEqual(sorted(self.daemon.quarantined_ids()), sorted(notices))
        self.assertEqual(len(notices), infected)
        rows = self.daemon.db_rows()
        if not retries:
            self.assertEqual(len(rows), LOAD_MESSAGES, "mugaid did not record one item per message")
        self.assertTrue(item_ids <= {r[0] for r in rows})
        self.assertEqual(self.postfix.queue(), [])

        elapsed = done - started
        print(f"\nload: {LOAD_MESSAGES} messages ({LOAD_MESSAGES - infected} delivered sanitized, "
              f"{infected} quarantined as notices), {sum(retries.values())} 4xx retries; "
              f"all accepted by Postfix after {accepted - started:.1f} s, all in the sink after {elapsed:.1f} s: "
              f"{LOAD_MESSAGES / elapsed:.1f} messages/s end to end through Postfix")


if __name__ == "__main__":
    unittest.main()
