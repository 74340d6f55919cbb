"""Issue 8: the vault's administrators' side through the real mugaid and the
real `mugai` CLI. Administrators are identified by client certificates
made by deploy/make-test-certs.sh on a mutual-TLS admin listener (an
operator that is also an approver, a second approver, a viewer), or by
the default token file on a unix socket; the release flow with its
two-person rule, refused and audited calls, download of the exact
original, statistics, CSV export, and the audit chain verifying before
and failing after one entry is edited in the database."""

import csv
import datetime
import hashlib
import io
import json
import os
import sqlite3
import subprocess
import shutil
import tempfile
import unittest
import zipfile
from email.message import EmailMessage

from test_daemon import BIN, EICAR, Daemon, DaemonTestCase, free_port

DEPLOY = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "deploy"))


def eicar_zip(member):
    """A zip holding EICAR as `member`: quarantined, and a distinct
    original for every member name."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        z.writestr(member, EICAR)
    return buffer.getvalue()


class VaultTestCase(DaemonTestCase):
    """One mugaid for the class; subclasses say how administrators reach it."""

    def hold(self, name, data):
        """Sanitizes a file that is quarantined; returns its report."""
        rc, report = self.daemon.sanitize(self.daemon.write(name, data))
        self.assertEqual(rc, 2, report)
        self.assertEqual(report["outcome"], "quarantined")
        return report

    def ok(self, who, *args):
        r = self.mugai(who, *args)
        self.assertEqual(r.returncode, 0, f"mugai {' '.join(args)} as {who}: {r.stderr.decode()}")
        return r

    def json(self, who, *args):
        return json.loads(self.ok(who, *args, "--json").stdout)

    def refused(self, who, *args):
        """Runs a call that must be refused; returns its error text."""
        r = self.mugai(who, *args)
        self.assertEqual(r.returncode, 1, f"mugai {' '.join(args)} as {who} was not refused: {r.stdout.decode()}")
        return r.stderr.decode()

    def audit(self, who, item_id):
        return self.json(who, "audit", "list", "--item", item_id, "--limit", "1000")["entries"]


class CertificateRolesTest(VaultTestCase):
    """Mutual TLS on the admin listener: "administrator" (operator and
    approver), "approver" (approver), "viewer" (viewer)."""

    @classmethod
    def setUpClass(cls):
        cls.certs = tempfile.mkdtemp(prefix="mugai-vault-certs-")
        subprocess.run(["bash", os.path.join(DEPLOY, "make-test-certs.sh"), cls.certs], check=True,
                       capture_output=True, timeout=120)
        config = (f'[listeners.admin_tls]\ncert_file = "{cls.certs}/admin.crt"\n'
                  f'key_file = "{cls.certs}/admin.key"\nclient_ca_file = "{cls.certs}/admin-ca.crt"\n'
                  '[admin.roles]\nadministrator = ["operator", "approver"]\napprover = ["approver"]\n'
                  'viewer = ["viewer"]\n')
        cls.daemon = Daemon(config)
        cls.daemon.admin = f"127.0.0.1:{free_port()}"
        cls.daemon.start()

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            shutil.rmtree(cls.certs, ignore_errors=True)

    CLIENTS = {"administrator": "admin-client", "approver": "admin-approver", "viewer": "admin-viewer"}

    def mugai(self, who, *args):
        """`mugai` as `who` (an identity above, or None: TLS without a
        client certificate); never with a token."""
        tls = ["--tls-ca", f"{self.certs}/ca.crt"]
        if who:
            name = self.CLIENTS[who]
            tls += ["--tls-cert", f"{self.certs}/{name}.crt", "--tls-key", f"{self.certs}/{name}.key"]
        env = {k: v for k, v in os.environ.items() if k != "MUGAI_ADMIN_TOKEN_FILE"}
        return subprocess.run([os.path.join(BIN, "mugai"), "--server", self.daemon.admin, *tls, *args],
                              capture_output=True, timeout=120, env=env)

    def test_each_certificate_is_its_identity_with_its_roles(self):
        for who, roles in (("administrator", ["operator", "approver"]), ("approver", ["approver"]),
                           ("viewer", ["viewer"])):
            self.assertEqual(self.json(who, "whoami"), {"identity": who, "roles": roles})
        self.assertIn(b"viewer (roles: viewer)", self.ok("viewer", "whoami").stdout)
        # No client certificate: the mutual-TLS handshake fails.
        self.assertIn("cannot reach mugaid", self.refused(None, "whoami"))

    def test_search_by_code_outcome_state_and_time(self):
        report = self.hold("search-me.zip", eicar_zip("search-me.com"))
        item_id, received = report["item_id"], report["received_at"]
        rc, clean = self.daemon.sanitize(self.daemon.write("clean.txt", b"nothing to see\n"))
        self.assertEqual(rc, 0)

        def found(*filters):
            limit = [] if "--limit" in filters else ["--limit", "1000"]
            return [i["id"] for i in self.json("viewer", "vault", "search", *filters, *limit)["items"]]

        self.assertIn(item_id, found("--code", "av.detected"))
        self.assertNotIn(item_id, found("--code", "av.detect"))  # codes match exactly
        self.assertIn(item_id, found("--outcome", "quarantined"))
        self.assertNotIn(clean["item_id"], found("--outcome", "quarantined"))
        self.assertIn(clean["item_id"], found("--outcome", "delivered"))
        self.assertIn(item_id, found("--state", "held"))
        self.assertIn(item_id, found("--state", "vault"))
        self.assertNotIn(item_id, found("--state", "released"))
        self.assertIn(item_id, found("--from", received, "--to", "9999-12-31T00:00:00Z"))
        self.assertNotIn(item_id, found("--to", received))  # exclusive
        self.assertNotIn(item_id, found("--from", "9999-01-01T00:00:00Z"))
        # Bounds in other forms are the same instants: a day is midnight
        # UTC, an offset is converted (received_at + 9 h in JST is received_at).
        day = received[:10]
        self.assertIn(item_id, found("--from", day))
        jst = datetime.datetime.fromisoformat(received.replace("Z", "+00:00")).astimezone(
            datetime.timezone(datetime.timedelta(hours=9))).isoformat()
        self.assertIn(item_id, found("--from", jst))
        self.assertNotIn(item_id, found("--to", jst))
        self.assertIn("is not a time", self.refused("viewer", "vault", "search", "--from", "yesterday"))
        (one,) = [i for i in self.json("viewer", "vault", "search", "--code", "av.detected")["items"]
                  if i["id"] == item_id]
        self.assertEqual(one["state"], "held")
        self.assertIn("av.detected", one["finding_codes"])
        self.assertNotIn("report", one)  # a search lists, it does not show
        # Paging: --before gives the older items.
        page = found("--limit", "1")
        self.assertEqual(len(page), 1)
        self.assertNotIn(page[0], found("--before", page[0]))
        self.assertIn(item_id, self.ok("viewer", "quarantine", "list").stdout.decode())
        self.assertIn("call.search", [e["action"] for e in self.json("viewer", "audit", "list", "--limit", "1000")
                                      ["entries"] if e["actor"] == "viewer"])

    def test_show_has_report_and_summary_and_never_the_original(self):
        report = self.hold("show-me.zip", eicar_zip("show-me.com"))
        item_id = report["item_id"]
        r = self.ok("viewer", "vault", "show", item_id, "--json")
        shown = json.loads(r.stdout)
        self.assertEqual(shown["report"]["item"]["sha256"], report["item"]["sha256"])
        self.assertEqual(shown["summary"]["kind"], "file")
        self.assertEqual(shown["state"], "held")
        self.assertNotIn(EICAR[:20], r.stdout)
        self.assertNotIn(b"UEsDB", r.stdout)  # base64 of a zip's first bytes
        human = self.ok("viewer", "vault", "show", item_id).stdout.decode()
        self.assertIn("state:      held", human)
        self.assertIn("av.detected", human)
        self.assertIn("call.show", [e["action"] for e in self.audit("viewer", item_id)])

    def test_viewer_cannot_request_delete_or_download_and_is_audited(self):
        item_id = self.hold("viewer.zip", eicar_zip("viewer.com"))["item_id"]
        for args, rpc, need in ((("request-release", item_id, "--reason", "need it"), "RequestRelease", "operator"),
                                (("delete", item_id), "DeleteVaultItem", "operator"),
                                (("download", item_id, "--reason", "look", "-o", f"{self.daemon.dir}/v.bin"),
                                 "DownloadOriginal", "approver"),
                                (("approve", item_id), "DecideRelease", "approver")):
            error = self.refused("viewer", "vault", *args)
            self.assertIn(f"vault {args[0]}: permission denied: identity viewer has roles [viewer]; {rpc} needs {need}",
                          error)
        self.assertFalse(os.path.exists(f"{self.daemon.dir}/v.bin"))
        refusals = [e for e in self.audit("viewer", item_id) if e["action"] == "call.refused"]
        self.assertEqual([e["actor"] for e in refusals], ["viewer"] * 4)
        self.assertTrue(refusals[0]["detail"].startswith("RequestRelease: identity viewer has roles [viewer]"))
        self.assertEqual(self.json("viewer", "vault", "show", item_id)["state"], "held")

    def test_release_flow_with_the_two_person_rule(self):
        original = eicar_zip("release-me.com")
        item_id = self.hold("release-me.zip", original)["item_id"]
        self.assertIn("needs --reason", self.refused("administrator", "vault", "request-release", item_id))
        requested = self.json("administrator", "vault", "request-release", item_id, "--reason", "課長の依頼")
        self.assertEqual(requested["state"], "release_requested")
        self.assertEqual(requested["release"]["requested_by"], "administrator")
        self.assertEqual(requested["release"]["request_reason"], "課長の依頼")
        # Asking twice: the item is no longer held.
        self.assertIn("is release_requested; RequestRelease needs it held",
                      self.refused("administrator", "vault", "request-release", item_id, "--reason", "again"))

        error = self.refused("administrator", "vault", "approve", item_id)
        self.assertIn("permission denied: two-person rule: administrator asked for the release", error)
        self.assertEqual(self.json("viewer", "vault", "show", item_id)["state"], "release_requested")

        approved = self.json("approver", "vault", "approve", item_id, "--reason", "確認済み")
        self.assertEqual(approved["state"], "released")
        self.assertEqual(approved["release"]["decided_by"], "approver")
        self.assertEqual(approved["release"]["decision"], "approved")
        self.assertEqual(approved["release"]["delivered_at"], "")
        self.assertEqual(approved["release"]["delivery"],
                         "not delivered: the file was not submitted to an inbox (it came by SanitizeFile); "
                         "an approver can download the original")

        out = os.path.join(self.daemon.dir, "released.zip")
        self.assertIn("needs --reason", self.refused("approver", "vault", "download", item_id, "-o", out))
        self.ok("approver", "vault", "download", item_id, "--reason", "受信者へ手渡し", "-o", out)
        with open(out, "rb") as f:
            self.assertEqual(hashlib.sha256(f.read()).hexdigest(), hashlib.sha256(original).hexdigest())
        self.assertEqual(os.stat(out).st_mode & 0o777, 0o600)

        redelivered = self.json("approver", "vault", "redeliver", item_id)
        self.assertEqual(redelivered["state"], "released")
        self.assertTrue(redelivered["release"]["delivery"].startswith("not delivered: "))

        actions = [(e["actor"], e["action"]) for e in self.audit("viewer", item_id)]
        for expected in (("mugaid", "vault.hold"), ("administrator", "release.request"),
                         ("administrator", "call.refused"), ("approver", "release.approve"),
                         ("approver", "release.delivery_failed"), ("approver", "call.download")):
            self.assertIn(expected, actions)
        download = [e for e in self.audit("viewer", item_id) if e["action"] == "call.download"][0]
        self.assertIn("受信者へ手渡し", download["detail"])

    def test_deny_returns_the_item_to_held(self):
        item_id = self.hold("deny-me.zip", eicar_zip("deny-me.com"))["item_id"]
        self.ok("administrator", "vault", "request-release", item_id, "--reason", "please")
        self.assertIn("needs --reason", self.refused("approver", "vault", "deny", item_id))
        denied = self.json("approver", "vault", "deny", item_id, "--reason", "業務に不要")
        self.assertEqual(denied["state"], "held")
        self.assertEqual(denied["release"]["decision"], "denied")
        self.assertIn("is held; DecideRelease needs it release_requested",
                      self.refused("approver", "vault", "approve", item_id))

    def test_delete_removes_the_original_and_keeps_the_record(self):
        item_id = self.hold("delete-me.zip", eicar_zip("delete-me.com"))["item_id"]
        deleted = self.json("administrator", "vault", "delete", item_id, "--reason", "不要")
        self.assertEqual(deleted["state"], "deleted")
        out = os.path.join(self.daemon.dir, "deleted.bin")
        self.assertIn("has no original in the vault",
                      self.refused("approver", "vault", "download", item_id, "--reason", "x", "-o", out))
        self.assertIn(item_id, [i["id"] for i in self.json("viewer", "vault", "search", "--state", "deleted")["items"]])
        self.assertIn("no vault item no-such-item", self.refused("administrator", "vault", "delete", "no-such-item"))

    def test_mail_without_a_delivery_path_records_why(self):
        # An attachment is converted, so the original is kept (held) with
        # its headers and a preview of the text.
        m = EmailMessage()
        m["From"] = "sender@example.jp"
        m["To"] = "user@city.example.lg.jp"
        m["Subject"] = "請求書の送付"
        m.set_content("請求書を添付します。\n")
        m.add_attachment("金額: 1,000円\n".encode("utf-8"), maintype="text", subtype="plain",
                         filename="請求書.txt")
        r = self.daemon.cli("sanitize-mail", self.daemon.write("changed.eml", bytes(m)), "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        item_id = json.loads(r.stdout)["item_id"]
        shown = self.json("viewer", "vault", "show", item_id)
        self.assertEqual(shown["state"], "held")
        self.assertEqual(shown["summary"]["kind"], "mail")
        self.assertEqual(shown["summary"]["subject"], "請求書の送付")
        self.assertIn({"name": "Subject", "value": "請求書の送付"}, shown["summary"]["headers"])
        self.assertIn("From", [h["name"] for h in shown["summary"]["headers"]])
        self.assertIn("請求書を添付します。", shown["summary"]["preview"])
        found = self.json("viewer", "vault", "search", "--subject", "請求書")["items"]
        self.assertIn(item_id, [i["id"] for i in found])

        self.ok("administrator", "vault", "request-release", item_id, "--reason", "原本が必要")
        approved = self.json("approver", "vault", "approve", item_id)
        self.assertEqual(approved["state"], "released")
        self.assertEqual(approved["release"]["delivered_at"], "")
        self.assertEqual(approved["release"]["delivery"],
                         "not delivered: no delivery path is configured ([release] smtp_url); an approver can "
                         "download the original")
        self.assertIn("release.delivery_failed", [e["action"] for e in self.audit("viewer", item_id)])

    def test_statistics_count_by_day_outcome_and_code(self):
        report = self.hold("stats.zip", eicar_zip("stats.com"))
        day = report["received_at"][:10]
        counts = self.json("viewer", "vault", "stats")["counts"]
        by_outcome = [c for c in counts if c["day"] == day and c["outcome"] == "quarantined" and not c["finding_code"]]
        by_code = [c for c in counts if c["day"] == day and c["finding_code"] == "av.detected"]
        self.assertEqual(len(by_outcome), 1, counts)
        self.assertGreaterEqual(int(by_outcome[0]["count"]), 1)
        self.assertGreaterEqual(int(by_code[0]["count"]), 1)
        self.assertEqual(self.json("viewer", "vault", "stats", "--from", "9999-01-01T00:00:00Z"), {"counts": []})
        self.assertIn(f"{day}  quarantined  av.detected", self.ok("viewer", "vault", "stats").stdout.decode())

    def test_csv_export_of_items_and_audit(self):
        name = '=HYPERLINK("x"),1.zip'  # a formula, a quote and a comma
        report = self.hold(name, eicar_zip("export.com"))
        out = os.path.join(self.daemon.dir, "items.csv")
        self.ok("viewer", "vault", "export", "items", "-o", out)
        with open(out, newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
        self.assertEqual(rows[0], ["id", "received_at", "kind", "name", "detected_type", "sha256", "size", "outcome",
                                   "finding_codes", "state", "sender", "recipients", "subject"])
        self.assertTrue(all(len(row) == 13 for row in rows))
        (row,) = [r for r in rows if r[0] == report["item_id"]]
        self.assertEqual(row[3], "'" + name)  # never read as a formula
        self.assertEqual(row[5], report["item"]["sha256"])
        self.assertEqual(row[7], "quarantined")
        self.assertIn("av.detected", row[8].split(" "))
        self.assertEqual(row[9], "held")
        with open(out, "rb") as f:
            self.assertIn(b"\r\n", f.read())  # RFC 4180 line ends

        # A range that ends before the item leaves it out.
        r = self.ok("viewer", "vault", "export", "items", "--to", report["received_at"])
        self.assertNotIn(report["item_id"], r.stdout.decode())

        r = self.ok("viewer", "vault", "export", "audit")
        audit = list(csv.reader(io.StringIO(r.stdout.decode())))
        self.assertEqual(audit[0], ["seq", "at", "actor", "action", "item_id", "detail", "prev_hash", "hash"])
        seqs = [int(row[0]) for row in audit[1:]]
        self.assertEqual(seqs, sorted(seqs))
        self.assertIn(("mugaid", "vault.hold", report["item_id"]), [(r[2], r[3], r[4]) for r in audit[1:]])
        self.assertIn("call.export", [r[3] for r in audit[1:]])


class DefaultTokenTest(VaultTestCase):
    """A unix-socket admin listener with neither a tokens file nor a client
    CA: mugaid makes <data_dir>/admin.token for "local-admin"."""

    @classmethod
    def setUpClass(cls):
        cls.daemon = Daemon(cls.config_extra).start()

    def mugai(self, who, *args):
        """`mugai` with the token file `who` (None: no token at all)."""
        # Empty: no token at all, not even a system-wide default one.
        env = dict(os.environ, MUGAI_ADMIN_TOKEN_FILE="")
        token = ["--token-file", who] if who else []
        return subprocess.run([os.path.join(BIN, "mugai"), "--server", self.daemon.admin, *token, *args],
                              capture_output=True, timeout=120, env=env)

    @property
    def token(self):
        return self.daemon.admin_token_file

    def test_the_default_token_is_local_admin_with_every_role(self):
        self.assertEqual(os.stat(self.token).st_mode & 0o777, 0o600)
        with open(self.token) as f:
            self.assertRegex(f.read(), r"^[0-9a-f]{64}\n$")
        self.assertIn(f'admin token for "local-admin" (every role) in {self.token}', self.daemon.log_text())
        self.assertEqual(self.json(self.token, "whoami"),
                         {"identity": "local-admin", "roles": ["viewer", "operator", "approver"]})

    def test_a_wrong_or_missing_token_is_refused_and_audited(self):
        wrong = self.daemon.write("wrong.token", b"0123456789abcdef0123456789abcdef\n")
        error = self.refused(wrong, "vault", "search")
        self.assertIn("not authenticated: not identified: the bearer token matches no admin token", error)
        error = self.refused(None, "vault", "search")
        self.assertIn("no client certificate and no bearer token", error)
        entries = self.json(self.token, "audit", "list", "--limit", "1000")["entries"]
        refusals = [e for e in entries if e["action"] == "call.refused"]
        self.assertEqual([e["actor"] for e in refusals][-2:], ["anonymous", "anonymous"])
        self.assertTrue(refusals[-2]["detail"].startswith("SearchVault: not identified"))

    def test_the_same_identity_cannot_approve_its_own_request(self):
        item_id = self.hold("self.zip", eicar_zip("self.com"))["item_id"]
        self.ok(self.token, "vault", "request-release", item_id, "--reason", "mine")
        self.assertIn("two-person rule", self.refused(self.token, "vault", "approve", item_id))

    def test_z_audit_verify_fails_after_one_entry_is_edited(self):
        # Runs last in this class: the chain stays broken.
        self.hold("tamper.zip", eicar_zip("tamper.com"))
        r = self.ok(self.token, "audit", "verify")
        self.assertIn(b"audit chain ok", r.stdout)
        verification = self.json(self.token, "audit", "verify")
        self.assertTrue(verification["ok"])
        self.assertGreater(int(verification["entries"]), 3)

        db = sqlite3.connect(os.path.join(self.daemon.dir, "data", "mugai.db"), timeout=30)
        try:
            (seq,) = db.execute("SELECT seq FROM audit WHERE action = 'vault.hold' ORDER BY seq LIMIT 1").fetchone()
            with db:
                db.execute("UPDATE audit SET detail = 'delivered' WHERE seq = ?", (seq,))
        finally:
            db.close()

        r = self.mugai(self.token, "audit", "verify")
        self.assertEqual(r.returncode, 3, r.stdout + r.stderr)
        self.assertIn(f"audit chain FAILED at seq {seq}: ".encode(), r.stdout)
        r = self.mugai(self.token, "audit", "verify", "--json")
        self.assertEqual(r.returncode, 3)
        verification = json.loads(r.stdout)
        self.assertFalse(verification["ok"])
        self.assertEqual(int(verification["first_bad_seq"]), seq)
        self.assertTrue(verification["problem"])


class SelfApprovalAllowedTest(VaultTestCase):
    """two_person_rule = false, and identities from a tokens file: one
    identity may request and approve."""

    @classmethod
    def setUpClass(cls):
        cls.tokens_dir = tempfile.mkdtemp(prefix="mugai-vault-tokens-")
        cls.tokens = os.path.join(cls.tokens_dir, "tokens")
        with open(cls.tokens, "w") as f:
            f.write("# identity token\nclerk clerk-token-0123456789abcdef\nreader reader-token-0123456789abcdef\n")
        os.chmod(cls.tokens, 0o600)
        cls.clerk = os.path.join(cls.tokens_dir, "clerk.token")
        with open(cls.clerk, "w") as f:
            f.write("clerk-token-0123456789abcdef\n")
        config = (f'[admin]\ntwo_person_rule = false\ntokens_file = "{cls.tokens}"\n'
                  '[admin.roles]\nclerk = ["operator", "approver"]\n')
        cls.daemon = Daemon(config).start()

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            shutil.rmtree(cls.tokens_dir, ignore_errors=True)

    def mugai(self, token_file, *args):
        return subprocess.run([os.path.join(BIN, "mugai"), "--server", self.daemon.admin, "--token-file", token_file,
                               *args], capture_output=True, timeout=120)

    def test_one_identity_requests_and_approves(self):
        self.assertFalse(os.path.exists(self.daemon.admin_token_file))  # a tokens file: no default token
        item_id = self.hold("own.zip", eicar_zip("own.com"))["item_id"]
        self.ok(self.clerk, "vault", "request-release", item_id, "--reason", "mine")
        self.assertEqual(self.json(self.clerk, "vault", "approve", item_id)["state"], "released")

    def test_a_token_identity_without_roles_is_refused(self):
        # A line of the tokens file works as a token file too (its last word).
        reader = os.path.join(self.tokens_dir, "reader.token")
        with open(reader, "w") as f:
            f.write("reader reader-token-0123456789abcdef\n")
        self.assertEqual(self.json(reader, "whoami"), {"identity": "reader", "roles": []})
        self.assertIn("permission denied: identity reader has no roles on this mugaid",
                      self.refused(reader, "vault", "search"))
        self.assertIn('"reader" has no roles in [admin] roles', self.daemon.log_text())


class AdminConfigErrorTest(unittest.TestCase):
    def test_an_unknown_role_stops_mugaid_with_a_clear_message(self):
        daemon = Daemon('[admin.roles]\nalice = ["viewer", "superuser"]\n')
        try:
            with self.assertRaises(AssertionError) as failed:
                daemon.start()
            self.assertIn('"alice" has the unknown role "superuser" (the roles are viewer, operator, approver)',
                          str(failed.exception))
        finally:
            daemon.cleanup()


if __name__ == "__main__":
    unittest.main()
