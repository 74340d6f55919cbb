"""Two mugaid replicas on one PostgreSQL database (issue 8): a private
cluster from tests/support/postgres_cluster.py, one shared vault key and
tokens file, each replica with its own data directory and sockets. Items
sanitized on either are recorded once and seen from both; a release asked
for on one is decided on the other; the audit chain they both append to
verifies from either. Standard library only."""

import json
import os
import secrets
import shutil
import sys
import tempfile
import threading
import unittest
from concurrent.futures import ThreadPoolExecutor

from test_daemon import EICAR, Daemon

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from postgres_cluster import PostgresCluster, unavailable_reason  # noqa: E402

# kakari (係) may ask for a release, kacho (課長) may also decide one: the
# two-person rule must hold across replicas, where kacho asks and approves.
IDENTITIES = {"kakari": ["operator"], "kacho": ["viewer", "operator", "approver"]}


class ReplicaTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        reason = unavailable_reason()
        if reason:
            raise unittest.SkipTest(reason)
        cls.cluster = PostgresCluster().start()
        cls.shared = tempfile.mkdtemp(prefix="mugai-replicas-")
        key_file = cls.write_private("vault.key", secrets.token_hex(32) + "\n")
        tokens = {identity: secrets.token_hex(24) for identity in IDENTITIES}
        tokens_file = cls.write_private("tokens", "".join(f"{i} {t}\n" for i, t in tokens.items()))
        cls.token_files = {i: cls.write_private(f"{i}.token", f"{t}\n") for i, t in tokens.items()}
        roles = "".join(f"{i} = {json.dumps(r)}\n" for i, r in IDENTITIES.items())
        config = (f"[store]\nbackend = \"postgresql\"\npostgresql = \"{cls.cluster.conninfo}\"\n"
                  "postgresql_connections = 3\n"
                  f"[vault]\nkey_file = \"{key_file}\"\n"
                  f"[admin]\ntokens_file = \"{tokens_file}\"\n[admin.roles]\n{roles}"
                  "[office]\nworkers = 0\n")
        cls.replicas = [Daemon(config), Daemon(config)]
        # Both at once on the empty database: the migration must run once
        # and neither start may fail.
        errors = []

        def start(replica):
            try:
                replica.start()
            except BaseException as error:  # noqa: B902 - reported below
                errors.append(error)

        threads = [threading.Thread(target=start, args=(r,)) for r in cls.replicas]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if errors:
            cls.tearDownClass()
            raise errors[0]

    @classmethod
    def write_private(cls, name, text):
        path = os.path.join(cls.shared, name)
        with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as f:
            f.write(text)
        return path

    @classmethod
    def tearDownClass(cls):
        failures = []
        for replica in cls.replicas:
            rc = replica.stop()
            if rc not in (0, None):
                failures.append(f"mugaid exited with {rc} on SIGTERM:\n{replica.log_text()}")
            replica.cleanup()
        cls.cluster.stop()
        shutil.rmtree(cls.shared, ignore_errors=True)
        if failures:
            raise AssertionError("\n".join(failures))

    def admin(self, replica, identity, *args):
        """(exit code, parsed --json output or None, stderr)."""
        r = replica.cli("--token-file", self.token_files[identity], *args, "--json", server=replica.admin)
        output = json.loads(r.stdout) if r.returncode in (0, 3) and r.stdout.strip() else None
        return r.returncode, output, r.stderr.decode("utf-8", "replace")

    def sanitize(self, replica, name, data):
        rc, report = replica.sanitize(replica.write(name, data))
        self.assertTrue(report["item_id"], report)
        return rc, report

    def held_item(self, replica, name):
        rc, report = self.sanitize(replica, name, EICAR)
        self.assertEqual((rc, report["outcome"]), (2, "quarantined"), report)
        return report["item_id"]

    def test_interleaved_items_are_recorded_once_and_seen_from_both(self):
        count = 24
        jobs = [(self.replicas[i % 2], f"memo-{i}.txt", f"お知らせ {i}\n".encode("utf-8")) for i in range(count)]
        # Both replicas busy at once, alternating.
        with ThreadPoolExecutor(max_workers=4) as pool:
            reports = list(pool.map(lambda job: self.sanitize(*job)[1], jobs))
        ids = [r["item_id"] for r in reports]
        self.assertEqual(len(set(ids)), count, ids)
        for report in reports:
            self.assertEqual(report["outcome"], "delivered", report)
        for replica in self.replicas:
            rc, found, err = self.admin(replica, "kacho", "vault", "search", "--limit", "1000")
            self.assertEqual(rc, 0, err)
            listed = [item["id"] for item in found["items"]]
            self.assertEqual(len(listed), len(set(listed)), "an item is listed twice")
            self.assertLessEqual(set(ids), set(listed))
            by_id = {item["id"]: item for item in found["items"]}
            for job, item_id in zip(jobs, ids):
                self.assertEqual(by_id[item_id]["name"], job[1])

    def test_release_requested_on_one_is_approved_on_the_other(self):
        first, second = self.replicas
        item_id = self.held_item(first, "invoice.com")
        rc, _, err = self.admin(first, "kakari", "vault", "request-release", item_id, "--reason", "業務で必要")
        self.assertEqual(rc, 0, err)
        rc, item, err = self.admin(second, "kacho", "vault", "show", item_id)
        self.assertEqual(rc, 0, err)
        self.assertEqual(item["state"], "release_requested")
        self.assertEqual(item["release"]["requested_by"], "kakari")

        rc, _, err = self.admin(second, "kakari", "vault", "approve", item_id, "--reason", "self")
        self.assertEqual(rc, 1, "an operator approved a release")
        rc, item, err = self.admin(second, "kacho", "vault", "approve", item_id, "--reason", "確認済み")
        self.assertEqual(rc, 0, err)
        self.assertEqual(item["state"], "released")
        self.assertEqual(item["release"]["decided_by"], "kacho")
        rc, item, err = self.admin(first, "kacho", "vault", "show", item_id)
        self.assertEqual((rc, item["state"]), (0, "released"), err)

        # The two-person rule across replicas: who asked on one cannot
        # approve on the other.
        own_id = self.held_item(second, "own.com")
        rc, _, err = self.admin(second, "kacho", "vault", "request-release", own_id, "--reason", "mine")
        self.assertEqual(rc, 0, err)
        rc, _, err = self.admin(first, "kacho", "vault", "approve", own_id, "--reason", "mine too")
        self.assertEqual(rc, 1, "a requester approved their own release on the other replica")
        rc, item, err = self.admin(first, "kacho", "vault", "show", own_id)
        self.assertEqual((rc, item["state"]), (0, "release_requested"), err)

        # One chain, appended to by both, with every step of both releases.
        rc, entries, err = self.admin(first, "kacho", "audit", "list", "--item", item_id)
        self.assertEqual(rc, 0, err)
        actions = [(e["actor"], e["action"]) for e in entries["entries"]]
        for step in (("mugaid", "vault.hold"), ("kakari", "release.request"), ("kakari", "call.refused"),
                     ("kacho", "release.approve")):
            self.assertIn(step, actions)
        verified = []
        for replica in self.replicas:
            rc, verification, err = self.admin(replica, "kacho", "audit", "verify")
            self.assertEqual(rc, 0, f"{err}{verification}")
            self.assertTrue(verification["ok"], verification)
            verified.append(int(verification["entries"]))
        # The second verification saw the first one's own audit entry.
        self.assertGreater(verified[1], verified[0])


if __name__ == "__main__":
    unittest.main()
