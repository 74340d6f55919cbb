"""Issue 8 end to end: a held mail is released by two administrators and
re-injected by SMTP into a real LGWAN-side Postfix.

    smtplib ─► Postfix "boundary" ─milter─► mugai-milter ─► mugaid
                    │ (the notice)                            │ approve: libcurl SMTP
                    ▼                                         ▼
               Postfix "lgwan" ──────────────────────────► the LGWAN mailbox (SmtpSink)

A mail with EICAR in a zip is quarantined (the recipients get the notice;
the original, with the envelope the milter saw, is in the vault). The
operator "kakari" asks for its release, the approver "kacho" approves it,
and mugaid hands the original to the LGWAN Postfix ([release] smtp_url):

- ReleaseDeliveryTest: the original arrives once in the mailbox with its
  envelope, exactly the bytes the vault kept (what an approver downloads)
  below the Received: field the LGWAN Postfix put on top, so its body's
  SHA-256 is that of the body that was sent; the item shows delivered_at
  and Postfix's 250 reply, the audit trail release.delivered; a second
  approve and a redeliver are refused and nothing arrives twice.
- ReleaseOutageTest: the LGWAN Postfix is down at approval: the item is
  released with the delivery recorded as failed (curl's "Couldn't
  connect"); once Postfix is up, `mugai vault redeliver` delivers it once.
- ReleaseTlsTest: the LGWAN Postfix accepts mail only after STARTTLS and
  asks for a client certificate ([release] smtp_ca_file, smtp_cert_file,
  smtp_key_file, from deploy/make-test-certs.sh): it arrives the same way,
  and Postfix logs a trusted (verified) client.

Needs root and the postfix package, like test_postfix.py.
"""

import hashlib
import json
import os
import re
import secrets
import shutil
import subprocess
import tempfile
import time
import unittest

from postfix_harness import (BIN, DEPLOY, TLS_MASTER, E2EDaemon, Milter, Postfix, SmtpSink, check_environment,
                             wait_for)
from test_postfix import RECIPIENT, eicar_zip, plain_message

OPERATOR, APPROVER = "kakari@city.example.lg.jp", "kacho@city.example.lg.jp"


def held_mail(sender, token):
    """A mail the gateway holds: EICAR in a zip, and body lines SMTP must
    dot-stuff (a leading '.', a lone '.') on both hops."""
    m = plain_message(f"請求書 {token}", f"請求書を添付します。{token}\n.leading dot\n.\nend\n", sender)
    m.add_attachment(eicar_zip(), maintype="application", subtype="zip", filename="invoice.zip")
    return m.as_bytes()


def crlf(data):
    return re.sub(rb"(?<!\r)\n", b"\r\n", data)


def body(data):
    return data[data.index(b"\r\n\r\n") + 4:]


def without_top_received(data):
    """The message without the one Received: field (and its continuation
    lines) on top: the LGWAN Postfix's own trace."""
    assert data.startswith(b"Received:"), data[:200]
    end = data.index(b"\r\n")
    while data[end + 2:end + 3] in (b" ", b"\t"):
        end = data.index(b"\r\n", end + 2)
    return data[end + 2:]


class ReleaseCase(unittest.TestCase):
    """mugaid with [release] pointing at the LGWAN Postfix and two admin
    identities; the boundary Postfix (with mugai-milter) relays to the LGWAN
    Postfix, which relays to the mailbox."""

    lgwan_up_at_start = True
    # True: the LGWAN Postfix requires STARTTLS and asks for a client
    # certificate; mugaid verifies it by the test CA and presents its own.
    tls = False

    @classmethod
    def setUpClass(cls):
        check_environment()
        cls.mailbox = SmtpSink().start()
        cls.addClassCleanup(cls.mailbox.stop)
        lgwan_main, boundary_main, master, release_tls = {}, {}, [], ""
        if cls.tls:
            certs = tempfile.mkdtemp(prefix="mugai-e2e-certs-")
            cls.addClassCleanup(shutil.rmtree, certs, ignore_errors=True)
            subprocess.run(["bash", os.path.join(DEPLOY, "make-test-certs.sh"), certs], check=True,
                           capture_output=True)
            # A server certificate for 127.0.0.1 from make-test-certs.sh;
            # mugaid's client certificate is an LGWAN-side one (lgwan-ca.crt).
            lgwan_main = {"smtpd_tls_cert_file": f"{certs}/egress.crt", "smtpd_tls_key_file": f"{certs}/egress.key",
                          "smtpd_tls_security_level": "encrypt", "smtpd_tls_ask_ccert": "yes",
                          "smtpd_tls_CAfile": f"{certs}/lgwan-ca.crt", "smtpd_tls_loglevel": "1"}
            # The boundary relays the notice to it over STARTTLS too.
            boundary_main = {"smtp_tls_security_level": "encrypt", "smtp_tls_CAfile": f"{certs}/ca.crt"}
            master = [TLS_MASTER]
            release_tls = (f'smtp_ca_file = "{certs}/ca.crt"\nsmtp_cert_file = "{certs}/lgwan.crt"\n'
                           f'smtp_key_file = "{certs}/lgwan.key"\n')
        cls.lgwan = Postfix("lgwan", cls.mailbox.port, extra_main=lgwan_main, extra_master=master)
        cls.addClassCleanup(cls.lgwan.cleanup)
        if cls.lgwan_up_at_start:
            cls.lgwan.start()

        cls.tokens = {identity: secrets.token_hex(32) for identity in (OPERATOR, APPROVER)}
        cls.token_dir = tempfile.mkdtemp(prefix="mugai-e2e-tokens-")
        cls.addClassCleanup(shutil.rmtree, cls.token_dir, ignore_errors=True)
        tokens_file = os.path.join(cls.token_dir, "tokens")
        with open(os.open(tokens_file, os.O_WRONLY | os.O_CREAT, 0o600), "w") as f:
            f.writelines(f"{identity} {token}\n" for identity, token in cls.tokens.items())
        for identity, token in cls.tokens.items():
            with open(os.open(os.path.join(cls.token_dir, identity), os.O_WRONLY | os.O_CREAT, 0o600), "w") as f:
                f.write(token + "\n")
        cls.daemon = E2EDaemon(
            f'[admin]\ntokens_file = "{tokens_file}"\n'
            f'[admin.roles]\n"{OPERATOR}" = ["operator"]\n"{APPROVER}" = ["approver"]\n'
            f'[release]\nsmtp_url = "smtp://127.0.0.1:{cls.lgwan.port}"\ntimeout_seconds = 20\n' + release_tls)
        cls.addClassCleanup(cls.daemon.cleanup)
        cls.daemon.start()
        cls.milter = Milter(cls.daemon.ingress)
        cls.addClassCleanup(cls.milter.cleanup)
        cls.milter.start()
        cls.boundary = Postfix("boundary", cls.lgwan.port, milter=cls.milter.postfix_address, extra_main=boundary_main,
                               extra_master=master)
        cls.addClassCleanup(cls.boundary.cleanup)
        cls.boundary.start()

    @classmethod
    def tearDownClass(cls):
        problems = []
        for postfix in (cls.boundary, cls.lgwan):
            try:
                postfix.stop()
            except AssertionError as e:
                problems.append(str(e))
        for name, process in (("mugai-milter", cls.milter), ("mugaid", cls.daemon)):
            rc = process.stop()
            if rc != 0:
                problems.append(f"{name} exited with {rc} on SIGTERM:\n{process.log_text()[-3000:]}")
        if problems:
            raise AssertionError("\n".join(problems))

    def logs(self):
        return (f"\n--- LGWAN Postfix:\n{self.lgwan.log_text()[-3000:]}"
                f"\n--- boundary Postfix:\n{self.boundary.log_text()[-3000:]}"
                f"\n--- mugaid:\n{self.daemon.log_text()[-3000:]}")

    def admin(self, identity, *args):
        """`mugai vault ...` on the admin listener as `identity`: (exit code,
        JSON or None, stderr)."""
        r = subprocess.run([os.path.join(BIN, "mugai"), "--server", self.daemon.admin, "--token-file",
                            os.path.join(self.token_dir, identity), *args, "--json"],
                           capture_output=True, timeout=120)
        output = json.loads(r.stdout) if r.returncode == 0 and r.stdout.strip().startswith(b"{") else None
        return r.returncode, output, r.stderr.decode(errors="replace")

    def show(self, item_id):
        rc, item, err = self.admin(OPERATOR, "vault", "show", item_id)
        self.assertEqual(rc, 0, err)
        return item

    def hold(self, token):
        """Sends a held mail through the boundary; returns (item id, the
        message as it was sent, sender)."""
        sender = f"{token}@example.jp"
        sent = crlf(held_mail(sender, token))
        self.boundary.send(sent, sender, [RECIPIENT])

        def find():
            rc, found, _ = self.admin(OPERATOR, "vault", "search", "--sender", sender)
            return rc == 0 and found and found.get("items")
        items = wait_for(find, 60, interval=0.5, what=f"the held mail from {sender} in the vault")
        self.assertEqual(len(items), 1, items)
        item = self.show(items[0]["id"])
        self.assertEqual(item["state"], "held", item)
        self.assertEqual(item["outcome"], "quarantined", item)
        self.assertEqual(item["summary"]["sender"], sender)
        self.assertEqual(item["summary"]["recipients"], [RECIPIENT])
        return item["id"], sent, sender

    def request_and_approve(self, item_id):
        rc, item, err = self.admin(OPERATOR, "vault", "request-release", item_id, "--reason", "業務上必要な請求書")
        self.assertEqual(rc, 0, err)
        self.assertEqual(item["state"], "release_requested", item)
        rc, item, err = self.admin(APPROVER, "vault", "approve", item_id, "--reason", "確認済み")
        return rc, item, err

    def originals_in_mailbox(self, sender):
        """What reached the mailbox from `sender` except the notice."""
        return [m for m in self.mailbox.from_sender(sender) if b"X-Mugai-Sanitized" not in m.data]

    def assert_delivered_once(self, item_id, sent, sender):
        """The original arrived once, with its envelope, exactly the vault's
        bytes below the LGWAN Postfix's Received: field; the item and the
        audit trail say so."""
        found = self.mailbox.wait_count(lambda m: m.mail_from == sender and b"X-Mugai-Sanitized" not in m.data, 1, 60)
        self.assertEqual(len(found), 1, "the released original did not arrive" + self.logs())
        time.sleep(1)
        (arrived,) = self.originals_in_mailbox(sender)
        self.assertEqual(arrived.rcpt_to, [RECIPIENT])
        self.assertEqual(hashlib.sha256(body(arrived.data)).hexdigest(), hashlib.sha256(body(sent)).hexdigest(),
                         "the body that arrived is not the body that was sent")
        downloaded = os.path.join(self.daemon.dir, f"{item_id}.eml")
        rc, _, err = self.admin(APPROVER, "vault", "download", item_id, "--reason", "照合", "-o", downloaded)
        self.assertEqual(rc, 0, err)
        with open(downloaded, "rb") as f:
            original = f.read()
        self.assertEqual(without_top_received(arrived.data), original,
                         "what arrived is not the vault's original below the LGWAN Postfix's trace")
        # The original's own header lines, in order, all there.
        sent_headers = sent[:sent.index(b"\r\n\r\n")].split(b"\r\n")
        kept = original[:original.index(b"\r\n\r\n")].split(b"\r\n")
        self.assertEqual([h for h in kept if h in sent_headers], [h for h in sent_headers if h in kept])
        self.assertIn(b"Subject:", b"\n".join(kept))

        item = self.show(item_id)
        self.assertEqual(item["state"], "released", item)
        release = item["release"]
        self.assertTrue(release["delivered_at"], release)
        self.assertRegex(release["delivery"], r"^250 .*queued as [0-9A-Z]+", release)
        queue_id = re.search(r"queued as ([0-9A-Z]+)", release["delivery"]).group(1)
        self.assertIn(queue_id, self.lgwan.log_text(), "the 250 reply is not the LGWAN Postfix's")
        rc, audit, err = self.admin(OPERATOR, "audit", "list", "--item", item_id)
        self.assertEqual(rc, 0, err)
        actions = [e["action"] for e in audit["entries"]]
        self.assertIn("release.delivered", actions)
        return item

    def assert_nothing_more_happens(self, item_id, sender, item):
        rc, _, err = self.admin(APPROVER, "vault", "approve", item_id)
        self.assertNotEqual(rc, 0, "a second approve was accepted")
        self.assertIn(item_id, err)
        rc, _, err = self.admin(APPROVER, "vault", "redeliver", item_id)
        self.assertNotEqual(rc, 0, "a redeliver of a delivered item was accepted")
        self.assertEqual(self.show(item_id)["release"], item["release"])
        time.sleep(2)
        self.assertEqual(len(self.originals_in_mailbox(sender)), 1, "the original arrived twice")


class ReleaseDeliveryTest(ReleaseCase):
    def test_an_approved_release_arrives_in_the_lgwan_mailbox_as_it_was_sent(self):
        item_id, sent, sender = self.hold("release-ok")
        # The notice went ahead through the same LGWAN Postfix.
        notices = self.mailbox.wait_count(lambda m: m.mail_from == sender and b"X-Mugai-Sanitized" in m.data, 1, 60)
        self.assertEqual(len(notices), 1, "no notice" + self.logs())
        self.assertIn(item_id.encode(), notices[0].data)
        self.assertEqual(self.originals_in_mailbox(sender), [], "the original arrived before its release")

        rc, approved, err = self.request_and_approve(item_id)
        self.assertEqual(rc, 0, err + self.logs())
        self.assertEqual(approved["state"], "released", approved)
        self.assertTrue(approved["release"]["delivered_at"], approved)
        item = self.assert_delivered_once(item_id, sent, sender)
        self.assertEqual(item["release"]["requested_by"], OPERATOR)
        self.assertEqual(item["release"]["decided_by"], APPROVER)
        self.assert_nothing_more_happens(item_id, sender, item)


class ReleaseOutageTest(ReleaseCase):
    lgwan_up_at_start = False

    def test_a_failed_delivery_is_recorded_and_redelivered_once_the_mta_is_up(self):
        item_id, sent, sender = self.hold("release-outage")
        rc, approved, err = self.request_and_approve(item_id)
        item = self.show(item_id)
        self.assertEqual(item["state"], "released", f"{rc} {approved} {err}")
        release = item["release"]
        self.assertEqual(release["delivered_at"], "", release)
        self.assertIn(f"127.0.0.1 port {self.lgwan.port}", release["delivery"], release)
        self.assertIn("Couldn't connect", release["delivery"], release)
        rc, audit, err = self.admin(OPERATOR, "audit", "list", "--item", item_id)
        self.assertEqual(rc, 0, err)
        self.assertIn("release.delivery_failed", [e["action"] for e in audit["entries"]])

        self.lgwan.start()
        rc, redelivered, err = self.admin(APPROVER, "vault", "redeliver", item_id)
        self.assertEqual(rc, 0, err + self.logs())
        self.assertTrue(redelivered["release"]["delivered_at"], redelivered)
        item = self.assert_delivered_once(item_id, sent, sender)
        self.assert_nothing_more_happens(item_id, sender, item)


class ReleaseTlsTest(ReleaseCase):
    tls = True

    def test_the_release_goes_over_starttls_with_a_client_certificate(self):
        item_id, sent, sender = self.hold("release-tls")
        rc, approved, err = self.request_and_approve(item_id)
        self.assertEqual(rc, 0, err + self.logs())
        self.assert_delivered_once(item_id, sent, sender)
        # smtpd_tls_security_level = encrypt: nothing is accepted before
        # STARTTLS; "Trusted": mugaid's client certificate verified.
        self.assertRegex(self.lgwan.log_text(), r"Trusted TLS connection established from [^\n]*127\.0\.0\.1",
                         self.logs())


if __name__ == "__main__":
    unittest.main()
