"""Issue 9: the file exchange through the real mugaid, the real `mugai` CLI
(submit, inbox list, inbox fetch, vault request-release/approve) and
mugai-inbox-probe (raw Inbox calls with any id, which the CLI would not
send).

- TlsExchangeTest: ingress, egress and admin on TCP with mutual TLS, each
  with its own client CA (deploy/make-test-certs.sh into a temporary
  directory): an internet-side client submits a text file and a PDF to
  "lgwan-user", who lists and fetches them (SHA-256 as listed and as
  reported); "lgwan-user2" sees nothing and can neither fetch nor
  acknowledge them; each side's certificate fails the handshake on the
  other side's listener; a quarantined submission makes no entry, and no
  Inbox call returns an original or a quarantined item, whatever id it is
  given, until two administrators release a file original into the inbox.
- UnixTokensTest: plaintext unix sockets, ingress anonymous, egress
  identities from [exchange] egress_tokens_file.
- UnixNoEgressIdentityTest: ingress identities from ingress_tokens_file;
  an egress without a client CA or tokens refuses every call.
"""

import hashlib
import json
import os
import secrets
import shutil
import subprocess
import tempfile
import time
import unittest

from test_daemon import BIN, EICAR, Daemon, free_port
from test_vault import DEPLOY, eicar_zip

# A Shift_JIS text: its derivative (UTF-8) differs from the original, so
# "the original's SHA-256" never names a derivative too.
SJIS_TEXT = "会議メモ\n境界を越えるファイル\n".encode("shift_jis")


def minimal_pdf(text):
    """A one-page PDF showing `text` (ASCII) in Helvetica."""
    content = b"BT /F1 18 Tf 30 100 Td (" + text + b") Tj ET"
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 300 200] /Resources << /Font << /F1 4 0 R >> >> "
        b"/Contents 5 0 R >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream",
    ]
    pdf = b"%PDF-1.4\n"
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(pdf))
        pdf += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(pdf)
    pdf += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    pdf += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    pdf += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return pdf


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def clean_env():
    """The environment without any default token file."""
    return {k: v for k, v in os.environ.items() if k not in ("MUGAI_ADMIN_TOKEN_FILE", "MUGAI_TOKEN_FILE")}


class ExchangeCase(unittest.TestCase):
    """One mugaid for the class; subclasses say how callers reach it
    (`credentials(who)`: the CLI's and the probe's connection options)."""

    config = ""

    @classmethod
    def start_daemon(cls, config, tcp):
        cls.daemon = Daemon(config)
        cls.addClassCleanup(cls.daemon.cleanup)
        if tcp:
            # IP literals: a name would go through c-ares, whose resolver
            # leaks a few bytes at exit that LeakSanitizer reports.
            cls.daemon.ingress = f"127.0.0.1:{free_port()}"
            cls.daemon.egress = f"127.0.0.1:{free_port()}"
            cls.daemon.admin = f"127.0.0.1:{free_port()}"
        cls.daemon.start()

    @classmethod
    def tearDownClass(cls):
        rc = cls.daemon.stop()
        if rc != 0:
            raise AssertionError(f"mugaid exited with {rc} on SIGTERM:\n{cls.daemon.log_text()}")

    def mugai(self, who, server, *args):
        return subprocess.run([os.path.join(BIN, "mugai"), "--server", server, *self.credentials(who), *args],
                              capture_output=True, timeout=120, env=clean_env())

    def probe(self, who, *args):
        """A raw Inbox call on egress as `who`; returns (status code name,
        stdout lines as JSON, stderr)."""
        r = subprocess.run([os.path.join(BIN, "mugai-inbox-probe"), self.daemon.egress,
                            *self.credentials(who, probe=True), *args],
                           capture_output=True, timeout=120, env=clean_env())
        self.assertIn(r.returncode, (0, 3), r.stderr.decode())
        err = r.stderr.decode()
        return err.split(":", 1)[0], [json.loads(line) for line in r.stdout.decode().splitlines() if line], err

    def submit(self, who, name, data, to="lgwan-user", *extra):
        """`mugai submit` of `data` as `name`; returns (exit code, response)."""
        path = os.path.join(self.daemon.dir, name)
        with open(path, "wb") as f:
            f.write(data)
        r = self.mugai(who, self.daemon.ingress, "submit", path, "--to", to, "--json", *extra)
        self.assertIn(r.returncode, (0, 2), f"mugai submit as {who}: {r.stderr.decode()}\n{self.daemon.log_text()}")
        return r.returncode, json.loads(r.stdout)

    def inbox(self, who):
        r = self.mugai(who, self.daemon.egress, "inbox", "list", "--json")
        self.assertEqual(r.returncode, 0, f"mugai inbox list as {who}: {r.stderr.decode()}")
        return json.loads(r.stdout).get("entries", [])

    def fetch(self, who, entry_id):
        """`mugai inbox fetch` into a new directory; returns (entry line, bytes)."""
        out = tempfile.mkdtemp(prefix="fetch-", dir=self.daemon.dir)
        r = self.mugai(who, self.daemon.egress, "inbox", "fetch", entry_id, "-o", out, "--json")
        self.assertEqual(r.returncode, 0, f"mugai inbox fetch {entry_id} as {who}: {r.stderr.decode()}")
        placed = json.loads(r.stdout)
        with open(placed["path"], "rb") as f:
            return placed, f.read()

    def assert_delivered_to_inbox(self, code, response):
        self.assertEqual(code, 0, response)
        report = response["report"]
        self.assertIn(report["outcome"], ("delivered", "delivered_with_removals"))
        self.assertEqual(response["entry_ids"],
                         [f"{report['item_id']}.{i}" for i in range(len(report["item"]["derivatives"]))])
        return report


class TlsExchangeTest(ExchangeCase):
    CLIENTS = {"internet-side": "internet", "mugai-milter": "milter", "lgwan-user": "lgwan",
               "lgwan-user2": "lgwan2", "administrator": "admin-client", "approver": "admin-approver"}

    @classmethod
    def setUpClass(cls):
        cls.certs = tempfile.mkdtemp(prefix="mugai-exchange-certs-")
        cls.addClassCleanup(shutil.rmtree, cls.certs, ignore_errors=True)
        subprocess.run(["bash", os.path.join(DEPLOY, "make-test-certs.sh"), cls.certs], check=True,
                       capture_output=True, timeout=120)
        config = ""
        for listener, client_ca in (("ingress", "internet-ca"), ("egress", "lgwan-ca"), ("admin", "admin-ca")):
            config += (f'[listeners.{listener}_tls]\ncert_file = "{cls.certs}/{listener}.crt"\n'
                       f'key_file = "{cls.certs}/{listener}.key"\nclient_ca_file = "{cls.certs}/{client_ca}.crt"\n')
        config += '[admin.roles]\nadministrator = ["operator", "approver"]\napprover = ["approver"]\n'
        cls.start_daemon(config, tcp=True)

    def credentials(self, who, probe=False):
        name = self.CLIENTS[who]
        return ["--tls-ca", f"{self.certs}/ca.crt", "--tls-cert", f"{self.certs}/{name}.crt",
                "--tls-key", f"{self.certs}/{name}.key"]

    def test_listeners_say_how_they_identify_callers(self):
        log = self.daemon.log_text()
        for listener in ("ingress", "egress", "admin"):
            self.assertRegex(log, f"{listener} listening on 127.0.0.1:[0-9]+ \\(mutual TLS\\)")
        self.assertIn("ingress callers (Exchange submitters): client certificates (CN or SAN)", log)
        self.assertIn("egress callers (Inbox recipients): client certificates (CN or SAN)", log)

    def test_text_and_pdf_reach_their_recipient_and_nobody_else(self):
        code, response = self.submit("internet-side", "会議メモ.txt", SJIS_TEXT, "lgwan-user",
                                     "--note", "ご確認ください\u202e\x07")
        text = self.assert_delivered_to_inbox(code, response)
        code, response = self.submit("internet-side", "form.pdf", minimal_pdf(b"Application form"))
        pdf = self.assert_delivered_to_inbox(code, response)
        self.assertEqual(pdf["item"]["action"], "convert_pdf")

        entries = {e["id"]: e for e in self.inbox("lgwan-user")}
        for report in (text, pdf):
            derivative = report["item"]["derivatives"][0]
            entry = entries[f"{report['item_id']}.0"]
            self.assertEqual(entry["item_id"], report["item_id"])
            self.assertEqual(entry["sender"], "internet-side")
            self.assertEqual((entry["name"], entry["sha256"], int(entry["size"])),
                             (derivative["name"], derivative["sha256"], int(derivative["size"])))
            self.assertFalse(entry.get("released_original", False))
            placed, data = self.fetch("lgwan-user", entry["id"])
            self.assertEqual(sha256(data), derivative["sha256"])
            self.assertEqual(placed["sha256"], derivative["sha256"])
            self.assertNotEqual(sha256(data), report["item"]["sha256"])
        # The note is safe text: the bidi override and the BEL are gone.
        self.assertEqual(entries[f"{text['item_id']}.0"]["note"], "ご確認ください")
        _, data = self.fetch("lgwan-user", f"{text['item_id']}.0")
        self.assertEqual(data.decode("utf-8"), SJIS_TEXT.decode("shift_jis"))
        _, data = self.fetch("lgwan-user", f"{pdf['item_id']}.0")
        self.assertTrue(data.startswith(b"%PDF-"))

        # Another LGWAN identity sees none of it, and cannot take it.
        ids = [f"{text['item_id']}.0", f"{pdf['item_id']}.0"]
        self.assertFalse(set(ids) & {e["id"] for e in self.inbox("lgwan-user2")})
        for entry_id in ids:
            r = self.mugai("lgwan-user2", self.daemon.egress, "inbox", "fetch", entry_id, "-o",
                           os.path.join(self.daemon.dir, "stolen"))
            self.assertEqual(r.returncode, 1, r.stdout)
            code, lines, _ = self.probe("lgwan-user2", "fetch", entry_id, os.path.join(self.daemon.dir, "stolen.bin"))
            self.assertEqual((code, lines), ("NOT_FOUND", []))
            self.assertEqual(self.probe("lgwan-user2", "ack", entry_id)[0], "NOT_FOUND")
        self.assertEqual({e["id"] for e in self.inbox("lgwan-user")} & set(ids), set(ids))

        # The recipient acknowledges: the entry is gone, once.
        self.assertEqual(self.probe("lgwan-user", "ack", ids[0])[0], "OK")
        self.assertEqual(self.probe("lgwan-user", "ack", ids[0])[0], "NOT_FOUND")
        self.assertNotIn(ids[0], {e["id"] for e in self.inbox("lgwan-user")})
        self.assertEqual(self.probe("lgwan-user", "fetch", ids[0], os.path.join(self.daemon.dir, "gone.bin"))[0],
                         "NOT_FOUND")

    def handshake_failures(self):
        """Failed verifications of a client certificate that gRPC logged."""
        return self.daemon.log_text().count("certificate verify failed")

    def assert_handshake_refused(self, before):
        """mugaid logged a failed client certificate verification since it
        had logged `before` of them (gRPC logs it as it happens)."""
        deadline = time.time() + 10
        while self.handshake_failures() <= before:
            self.assertLess(time.time(), deadline, "mugaid logged no failed client certificate verification")
            time.sleep(0.05)

    def test_each_side_certificate_fails_the_handshake_on_the_other_listeners(self):
        # Positive controls: each certificate works where it belongs.
        self.assertEqual(self.mugai("internet-side", self.daemon.ingress, "status").returncode, 0)
        self.assertEqual(self.probe("lgwan-user", "list")[0], "OK")
        self.assertEqual(self.mugai("administrator", self.daemon.admin, "whoami").returncode, 0)
        for who in ("internet-side", "mugai-milter", "administrator"):
            with self.subTest(who=who, listener="egress"):
                before = self.handshake_failures()
                r = self.mugai(who, self.daemon.egress, "inbox", "list")
                self.assertEqual(r.returncode, 1)
                self.assertIn("cannot reach mugaid", r.stderr.decode())
                self.assertEqual(self.probe(who, "list")[0], "UNAVAILABLE")
                self.assert_handshake_refused(before)
        for who in ("lgwan-user", "administrator"):
            with self.subTest(who=who, listener="ingress"):
                path = os.path.join(self.daemon.dir, "wrong-side.txt")
                with open(path, "wb") as f:
                    f.write(b"from the wrong side\n")
                before = self.handshake_failures()
                r = self.mugai(who, self.daemon.ingress, "submit", path, "--to", "lgwan-user")
                self.assertEqual(r.returncode, 1)
                self.assertIn("cannot reach mugaid", r.stderr.decode())
                self.assertEqual(self.mugai(who, self.daemon.ingress, "sanitize-file", path).returncode, 1)
                self.assert_handshake_refused(before)
        for who in ("internet-side", "lgwan-user"):
            with self.subTest(who=who, listener="admin"):
                before = self.handshake_failures()
                r = self.mugai(who, self.daemon.admin, "whoami")
                self.assertEqual(r.returncode, 1)
                self.assertIn("cannot reach mugaid", r.stderr.decode())
                self.assert_handshake_refused(before)

    def test_recipient_is_checked_before_the_content(self):
        path = os.path.join(self.daemon.dir, "unsent.txt")
        with open(path, "wb") as f:
            f.write(b"never read\n")
        for recipient, problem in (("lgwan user", "contains a space"), ("x" * 257, "has 257 bytes; at most 256"),
                                   ("lgwan\u202euser", "contains control or invisible characters")):
            with self.subTest(recipient=recipient[:20]):
                r = self.mugai("internet-side", self.daemon.ingress, "submit", path, "--to", recipient)
                self.assertEqual(r.returncode, 1)
                self.assertIn("the recipient " + problem, r.stderr.decode())
        self.assertNotIn('"unsent.txt"', self.daemon.log_text())

    def test_a_repeated_submit_key_is_one_submission(self):
        key = "key-" + secrets.token_hex(8)
        first = self.assert_delivered_to_inbox(*self.submit("internet-side", "once.txt", b"only once\n",
                                                            "lgwan-user", "--key", key))
        code, response = self.submit("internet-side", "once.txt", b"only once\n", "lgwan-user", "--key", key)
        self.assertEqual(self.assert_delivered_to_inbox(code, response)["item_id"], first["item_id"])
        self.assertEqual([e["id"] for e in self.inbox("lgwan-user") if e["item_id"] == first["item_id"]],
                         [f"{first['item_id']}.0"])
        self.assertIn("repeated submission " + first["item_id"], self.daemon.log_text())

    def test_no_inbox_call_returns_an_original_or_a_quarantined_item(self):
        original = eicar_zip("invoice.com")
        code, response = self.submit("internet-side", "invoice.zip", original)
        self.assertEqual(code, 2, response)
        quarantined = response["report"]
        self.assertEqual(quarantined["outcome"], "quarantined")
        self.assertEqual(response.get("entry_ids", []), [])
        delivered = self.assert_delivered_to_inbox(*self.submit("internet-side", "memo.txt", SJIS_TEXT))
        originals = {sha256(original), sha256(SJIS_TEXT)}
        self.assertEqual(originals, {quarantined["item"]["sha256"], delivered["item"]["sha256"]})

        for who in ("lgwan-user", "lgwan-user2"):
            code, lines, _ = self.probe(who, "list")
            self.assertEqual(code, "OK")
            for entry in lines[0].get("entries", []):
                self.assertNotEqual(entry["item_id"], quarantined["item_id"])
                self.assertNotIn(entry["sha256"], originals)
        q, d = quarantined["item_id"], delivered["item_id"]
        # No release was asked for: "<id>.original" is no entry either.
        for entry_id in (q, f"{q}.0", f"{q}.original", f"{q}.-1", quarantined["item"]["sha256"], d, f"{d}.original",
                         f"{d}.1", f"{d}.-1", delivered["item"]["sha256"], f"{d}.0/../{q}.0", f"{q}.0 ", ""):
            for who in ("lgwan-user", "lgwan-user2"):
                with self.subTest(entry_id=entry_id, who=who):
                    out = os.path.join(self.daemon.dir, "probe.bin")
                    code, lines, _ = self.probe(who, "fetch", entry_id, out)
                    self.assertEqual(code, "NOT_FOUND")
                    self.assertEqual(lines, [])
                    with open(out, "rb") as f:
                        self.assertEqual(f.read(), b"")
                    self.assertEqual(self.probe(who, "ack", entry_id)[0], "NOT_FOUND")
        # The delivered item's derivative is there, and is not its original.
        out = os.path.join(self.daemon.dir, "derivative.bin")
        code, lines, _ = self.probe("lgwan-user", "fetch", f"{d}.0", out)
        self.assertEqual(code, "OK")
        with open(out, "rb") as f:
            data = f.read()
        self.assertNotIn(sha256(data), originals)
        self.assertNotIn(EICAR, data)
        self.assertEqual(lines[0]["entry"]["sha256"], sha256(data))
        # The store never offered the service an entry it had to withhold.
        self.assertNotIn("withheld", self.daemon.log_text())

    def test_two_administrators_release_a_file_original_into_the_inbox(self):
        original = eicar_zip("release-me.com")
        code, response = self.submit("internet-side", "release-me.zip", original, "lgwan-user")
        self.assertEqual(code, 2, response)
        item_id = response["report"]["item_id"]
        entry_id = f"{item_id}.original"
        out = os.path.join(self.daemon.dir, "early.bin")
        self.assertEqual(self.probe("lgwan-user", "fetch", entry_id, out)[0], "NOT_FOUND")

        def admin(who, *args):
            r = self.mugai(who, self.daemon.admin, *args, "--json")
            self.assertEqual(r.returncode, 0, f"mugai {' '.join(args)} as {who}: {r.stderr.decode()}")
            return json.loads(r.stdout)

        admin("administrator", "vault", "request-release", item_id, "--reason", "the contractor's archive")
        item = admin("approver", "vault", "approve", item_id, "--reason", "checked by phone")
        self.assertEqual(item["state"], "released")
        self.assertTrue(item["release"]["delivered_at"], item)

        (entry,) = [e for e in self.inbox("lgwan-user") if e["item_id"] == item_id]
        self.assertEqual(entry["id"], entry_id)
        self.assertTrue(entry["released_original"])
        self.assertEqual(entry["sha256"], sha256(original))
        _, data = self.fetch("lgwan-user", entry_id)
        self.assertEqual(data, original)
        # Only for its recipient.
        self.assertNotIn(item_id, {e["item_id"] for e in self.inbox("lgwan-user2")})
        self.assertEqual(self.probe("lgwan-user2", "fetch", entry_id, out)[0], "NOT_FOUND")
        self.assertEqual(self.probe("lgwan-user2", "ack", entry_id)[0], "NOT_FOUND")


def write_tokens(directory, identities):
    """A tokens file ("IDENTITY TOKEN" lines, mode 0600) and one token file
    per identity for the CLI; returns (tokens file, {identity: token})."""
    tokens = {identity: secrets.token_hex(32) for identity in identities}
    path = os.path.join(directory, "tokens")
    with open(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600), "w") as f:
        f.writelines(f"{identity} {token}\n" for identity, token in tokens.items())
    for identity, token in tokens.items():
        with open(os.open(os.path.join(directory, identity + ".token"), os.O_WRONLY | os.O_CREAT, 0o600), "w") as f:
            f.write(token + "\n")
    return path, tokens


class UnixTokensTest(ExchangeCase):
    """Plaintext unix sockets: anyone who reaches ingress submits as
    "anonymous"; egress callers are the identities of their tokens."""

    @classmethod
    def setUpClass(cls):
        cls.token_dir = tempfile.mkdtemp(prefix="mugai-exchange-tokens-")
        cls.addClassCleanup(shutil.rmtree, cls.token_dir, ignore_errors=True)
        path, cls.tokens = write_tokens(cls.token_dir, ("lgwan-user", "lgwan-user2"))
        cls.start_daemon(f'[exchange]\negress_tokens_file = "{path}"\n', tcp=False)

    def credentials(self, who, probe=False):
        if who is None:
            return []
        if probe:
            return ["--token", self.tokens.get(who, who)]
        return ["--token-file", os.path.join(self.token_dir, who + ".token")]

    def test_anonymous_submission_reaches_the_token_holders_inbox(self):
        self.assertIn('ingress callers (Exchange submitters): every caller is "anonymous"', self.daemon.log_text())
        self.assertIn("egress callers (Inbox recipients): bearer tokens for 2 identities", self.daemon.log_text())
        report = self.assert_delivered_to_inbox(*self.submit(None, "plain.txt", b"over a unix socket\n"))
        (entry,) = [e for e in self.inbox("lgwan-user") if e["item_id"] == report["item_id"]]
        self.assertEqual(entry["sender"], "anonymous")
        _, data = self.fetch("lgwan-user", entry["id"])
        self.assertEqual(sha256(data), entry["sha256"])
        self.assertNotIn(report["item_id"], {e["item_id"] for e in self.inbox("lgwan-user2")})
        self.assertEqual(self.probe("lgwan-user2", "fetch", entry["id"], os.path.join(self.daemon.dir, "x"))[0],
                         "NOT_FOUND")

    def test_egress_refuses_a_caller_without_a_valid_token(self):
        for who, problem in ((None, "no client certificate and no bearer token"),
                             ("not-a-token-at-all-1234", "the bearer token matches no egress token")):
            with self.subTest(who=who):
                code, _, err = self.probe(who, "list")
                self.assertEqual(code, "UNAUTHENTICATED")
                self.assertIn(problem, err)
        r = self.mugai(None, self.daemon.egress, "inbox", "list")
        self.assertEqual(r.returncode, 1)
        self.assertIn("no client certificate and no bearer token", r.stderr.decode())


class UnixNoEgressIdentityTest(ExchangeCase):
    """Ingress callers are the identities of [exchange] ingress_tokens_file;
    an egress listener with neither a client CA nor tokens serves nobody."""

    @classmethod
    def setUpClass(cls):
        cls.token_dir = tempfile.mkdtemp(prefix="mugai-exchange-tokens-")
        cls.addClassCleanup(shutil.rmtree, cls.token_dir, ignore_errors=True)
        path, cls.tokens = write_tokens(cls.token_dir, ("contractor",))
        cls.start_daemon(f'[exchange]\ningress_tokens_file = "{path}"\n', tcp=False)

    def credentials(self, who, probe=False):
        if who is None:
            return []
        return ["--token-file", os.path.join(self.token_dir, who + ".token")]

    def test_submitter_is_the_token_identity(self):
        self.assertIn("ingress callers (Exchange submitters): bearer tokens for 1 identity", self.daemon.log_text())
        report = self.assert_delivered_to_inbox(*self.submit("contractor", "signed.txt", b"from a contractor\n"))
        self.assertRegex(self.daemon.log_text(), f"submission {report['item_id']} .* from contractor to lgwan-user")
        path = os.path.join(self.daemon.dir, "nobody.txt")
        with open(path, "wb") as f:
            f.write(b"who am I\n")
        r = self.mugai(None, self.daemon.ingress, "submit", path, "--to", "lgwan-user")
        self.assertEqual(r.returncode, 1)
        self.assertIn("no client certificate and no bearer token", r.stderr.decode())

    def test_egress_refuses_everyone(self):
        self.assertIn("egress callers (Inbox recipients): nobody is identified", self.daemon.log_text())
        for command in (["list"], ["fetch", "x.0", os.path.join(self.daemon.dir, "x")], ["ack", "x.0"]):
            with self.subTest(command=command[0]):
                code, lines, err = self.probe(None, *command)
                self.assertEqual(code, "UNAUTHENTICATED")
                self.assertIn("the egress listener needs a client certificate or [exchange] egress_tokens_file",
                              err)
        r = self.mugai(None, self.daemon.egress, "inbox", "list")
        self.assertEqual(r.returncode, 1)
        self.assertIn("egress_tokens_file", r.stderr.decode())


if __name__ == "__main__":
    unittest.main()
