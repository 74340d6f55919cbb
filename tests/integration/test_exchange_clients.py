"""Issue 9: the file exchange's clients through the real mugaid and the real
`mugai` CLI on unix sockets: `mugai submit` (text, a corpus PDF, EICAR held,
a repeated submit key answered once), `mugai drop watch` (a pass with
--once, the background watcher, SIGKILLs mid-run over 30 files: every
file in exactly one of done/ or failed/, and exactly 30 items processed;
a SIGKILL mid-upload),
and `mugai inbox list | fetch | sync` (sync SIGKILLed mid-transfer over
many and large entries, restarted until done: every entry in the directory
exactly once with its SHA-256, the inbox empty). The LGWAN-side identity
is a bearer token from [exchange] egress_tokens_file; the internet side
submits as "anonymous" (no ingress tokens file)."""

import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

from test_daemon import BIN, CORPUS, EICAR, Daemon

RECIPIENT = "lgwan-user"
OTHER = "lgwan-other"
PDF = os.path.join(CORPUS, "pdf", "text", "crazyones-pdfa.pdf")


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def files_in(directory):
    """The regular files directly in `directory`, hidden ones left out."""
    return sorted(n for n in os.listdir(directory)
                  if not n.startswith(".") and os.path.isfile(os.path.join(directory, n)))


class ExchangeTestCase(unittest.TestCase):
    """One mugaid for the class, with tokens for two LGWAN-side identities."""

    @classmethod
    def setUpClass(cls):
        cls.tokens_dir = tempfile.mkdtemp(prefix="mugai-exchange-tokens-")
        tokens = os.path.join(cls.tokens_dir, "egress.tokens")
        with open(tokens, "w") as f:
            f.write(f"# identity token\n{RECIPIENT} lgwan-token-0123456789abcdef\n"
                    f"{OTHER} other-token-0123456789abcdef\n")
        os.chmod(tokens, 0o600)
        cls.token = cls.token_file("lgwan.token", "lgwan-token-0123456789abcdef")
        cls.other_token = cls.token_file("other.token", "other-token-0123456789abcdef")
        cls.daemon = Daemon(f'[exchange]\negress_tokens_file = "{tokens}"\n').start()

    @classmethod
    def token_file(cls, name, token):
        path = os.path.join(cls.tokens_dir, name)
        with open(path, "w") as f:
            f.write(token + "\n")
        os.chmod(path, 0o600)
        return path

    @classmethod
    def tearDownClass(cls):
        rc = cls.daemon.stop()
        log = cls.daemon.log_text()
        cls.daemon.cleanup()
        shutil.rmtree(cls.tokens_dir, ignore_errors=True)
        if rc != 0:
            raise AssertionError(f"mugaid exited with {rc} on SIGTERM:\n{log}")

    def mugai_args(self, server, token):
        args = [os.path.join(BIN, "mugai"), "--server", server]
        return args + ["--token-file", token] if token else args

    def mugai(self, *args, server=None, token=None, timeout=300):
        """The CLI with a clean environment: no admin token is ever sent
        to the exchange listeners by accident."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("MUGAI_") or k.endswith("_DIR")}
        return subprocess.run(self.mugai_args(server or self.daemon.ingress, token) + list(args),
                              capture_output=True, timeout=timeout, env=env)

    def background(self, *args, server=None, token=None, log=None):
        return subprocess.Popen(self.mugai_args(server or self.daemon.ingress, token) + list(args),
                                stdout=log or subprocess.DEVNULL, stderr=subprocess.STDOUT)

    def inbox(self, *args, token=None):
        """`mugai inbox` as RECIPIENT, or with `token` ("": none)."""
        return self.mugai("inbox", *args, server=self.daemon.egress, token=self.token if token is None else token)

    def inbox_entries(self, token=None):
        r = self.inbox("list", "--json", token=token)
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        return json.loads(r.stdout)["entries"]

    def submit(self, path, *args):
        """Returns (exit code, response dict)."""
        r = self.mugai("submit", path, "--to", RECIPIENT, "--json", *args)
        if r.returncode == 1:
            raise AssertionError(f"mugai submit failed: {r.stderr.decode()}\n{self.daemon.log_text()[-3000:]}")
        return r.returncode, json.loads(r.stdout)

    def vault_items(self, prefix):
        """The recorded items whose name starts with `prefix` (admin token)."""
        r = self.mugai("vault", "search", "--limit", "1000", "--json", server=self.daemon.admin,
                       token=self.daemon.admin_token_file)
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        return [i for i in json.loads(r.stdout)["items"] if i["name"].startswith(prefix)]

    def scratch(self, name):
        path = os.path.join(self.daemon.dir, name)
        os.makedirs(path)
        return path

    def drain_inbox(self):
        """Acknowledges whatever an earlier test left in the inbox."""
        r = self.inbox("sync", self.scratch(f"drain-{time.time_ns()}"), "--once")
        self.assertEqual(r.returncode, 0, r.stderr.decode())


class SubmitTest(ExchangeTestCase):
    def test_text_and_pdf_are_delivered_into_the_inbox(self):
        text = self.daemon.write("memo.txt", "請求書を送付します。\n".encode("utf-8"))
        rc, response = self.submit(text, "--note", "見積書です")
        self.assertEqual(rc, 0, response)
        self.assertEqual(response["report"]["outcome"], "delivered")
        self.assertEqual(len(response["entry_ids"]), 1)
        rc, pdf_response = self.submit(PDF)
        self.assertEqual(rc, 0, pdf_response)
        self.assertIn(pdf_response["report"]["outcome"], ("delivered", "delivered_with_removals"))

        entries = {e["id"]: e for e in self.inbox_entries()}
        for r in (response, pdf_response):
            for entry_id in r["entry_ids"]:
                self.assertIn(entry_id, entries)
        memo = entries[response["entry_ids"][0]]
        self.assertEqual(memo["name"], "memo.txt")
        self.assertEqual(memo["note"], "見積書です")
        self.assertEqual(memo["sender"], "anonymous")
        # Another LGWAN identity sees none of it.
        self.assertEqual(self.inbox_entries(token=self.other_token), [])

        out = self.scratch("fetched")
        for entry_id in response["entry_ids"] + pdf_response["entry_ids"]:
            r = self.inbox("fetch", entry_id, "-o", out, "--json")
            self.assertEqual(r.returncode, 0, r.stderr.decode())
            line = json.loads(r.stdout)
            self.assertEqual(sha256(line["path"]), entries[entry_id]["sha256"])
        with open(os.path.join(out, "memo.txt"), encoding="utf-8") as f:
            self.assertEqual(f.read(), "請求書を送付します。\n")
        # Fetching again never replaces the first copy; fetch does not acknowledge.
        r = self.inbox("fetch", response["entry_ids"][0], "-o", out)
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        self.assertIn("memo-1.txt", r.stdout.decode())
        self.assertIn(response["entry_ids"][0], {e["id"] for e in self.inbox_entries()})
        self.drain_inbox()
        self.assertEqual(self.inbox_entries(), [])

    def test_eicar_is_held_and_reaches_no_inbox(self):
        rc, response = self.submit(self.daemon.write("invoice.txt", EICAR))
        self.assertEqual(rc, 2, response)
        self.assertEqual(response["report"]["outcome"], "quarantined")
        self.assertEqual(response["entry_ids"], [])
        self.assertNotIn(response["report"]["item_id"], {e["item_id"] for e in self.inbox_entries()})

    def test_a_repeated_key_is_answered_once(self):
        path = self.daemon.write("repeat.txt", b"one submission, two calls\n")
        rc, first = self.submit(path, "--key", "repeat-key-0001")
        self.assertEqual(rc, 0, first)
        rc, second = self.submit(path, "--key", "repeat-key-0001")
        self.assertEqual(rc, 0, second)
        self.assertEqual(first["report"]["item_id"], second["report"]["item_id"])
        self.assertEqual(first["entry_ids"], second["entry_ids"])
        self.assertEqual(len(self.vault_items("repeat.txt")), 1)
        # Without --key every call is a submission of its own.
        rc, third = self.submit(path)
        self.assertNotEqual(third["report"]["item_id"], first["report"]["item_id"])

    def test_usage_and_unreachable_server_are_errors(self):
        path = self.daemon.write("usage.txt", b"x\n")
        r = self.mugai("submit", path)
        self.assertEqual(r.returncode, 1)
        self.assertIn("submit needs --to", r.stderr.decode())
        r = self.mugai("submit", path, "--to", RECIPIENT, "--key", "k-unreachable",
                       server=f"unix:{self.daemon.dir}/nothing.sock")
        self.assertEqual(r.returncode, 1)
        self.assertIn("retry with --key k-unreachable", r.stderr.decode())
        # The egress listener refuses a caller without an identity.
        r = self.inbox("list", token="")
        self.assertEqual(r.returncode, 1)
        self.assertIn("not authenticated", r.stderr.decode())


class DropWatchTest(ExchangeTestCase):
    def assert_placed(self, drop, expected):
        """`expected`: the name in done/ or failed/ -> "done" or "failed";
        each file in exactly one place, with its report, and the journal
        empty."""
        listing = {d: sorted(os.listdir(os.path.join(drop, d))) for d in ("done", "failed", ".mugai-drop")}
        for name, folder in expected.items():
            other = "failed" if folder == "done" else "done"
            self.assertTrue(os.path.isfile(os.path.join(drop, folder, name)), f"{name} not in {folder}/: {listing}")
            self.assertFalse(os.path.exists(os.path.join(drop, other, name)), f"{name} also in {other}/")
            with open(os.path.join(drop, folder, name + ".report.json")) as f:
                report = json.load(f)
            if folder == "done":
                self.assertIn(report["report"]["outcome"], ("delivered", "delivered_with_removals"))
        self.assertEqual([n for n in os.listdir(os.path.join(drop, ".mugai-drop")) if n.endswith(".key")], [])

    def test_once_moves_each_complete_file_with_its_report(self):
        drop = self.scratch("drop-once")
        with open(os.path.join(drop, "letter.txt"), "w") as f:
            f.write("お知らせ\n")
        shutil.copy(PDF, os.path.join(drop, "paper.pdf"))
        with open(os.path.join(drop, "virus.txt"), "wb") as f:
            f.write(EICAR)
        for skipped in ("download.part", "copy.tmp", ".hidden"):
            with open(os.path.join(drop, skipped), "w") as f:
                f.write("not yet\n")
        # A name taken in done/ already is never replaced.
        os.makedirs(os.path.join(drop, "done"))
        with open(os.path.join(drop, "done", "letter.txt"), "w") as f:
            f.write("an earlier letter\n")
        r = self.mugai("drop", "watch", drop, "--to", RECIPIENT, "--once", "--note", "定期便")
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        self.assertEqual(sorted(os.listdir(drop)),
                         [".hidden", ".mugai-drop", "copy.tmp", "done", "download.part", "failed"])
        self.assert_placed(drop, {"letter-1.txt": "done", "paper.pdf": "done", "virus.txt": "failed"})
        with open(os.path.join(drop, "done", "letter.txt")) as f:
            self.assertEqual(f.read(), "an earlier letter\n")
        with open(os.path.join(drop, "failed", "virus.txt.report.json")) as f:
            self.assertEqual(json.load(f)["report"]["outcome"], "quarantined")
        self.assertIn("virus.txt: quarantined", r.stdout.decode())
        self.drain_inbox()

    def test_background_watcher_takes_files_as_they_complete(self):
        drop = self.scratch("drop-background")
        with open(os.path.join(self.daemon.dir, "watch.log"), "wb") as log:
            watcher = self.background("drop", "watch", drop, "--to", RECIPIENT, "--interval", "1", "--settle", "1",
                                      log=log)
            try:
                names = [f"bg-{i}.txt" for i in range(5)]
                for name in names:
                    # Written under a partial name, then renamed: as a download does.
                    partial = os.path.join(drop, name + ".part")
                    with open(partial, "w") as f:
                        f.write(f"file {name}\n")
                    os.rename(partial, os.path.join(drop, name))
                done = os.path.join(drop, "done")
                deadline = time.time() + 60
                while time.time() < deadline and (not os.path.isdir(done) or len(files_in(done)) < 2 * len(names)):
                    time.sleep(0.2)
                # Another watcher on the same directory is refused.
                r = self.mugai("drop", "watch", drop, "--to", RECIPIENT, "--once")
                self.assertEqual(r.returncode, 1)
                self.assertIn("another mugai drop watch", r.stderr.decode())
            finally:
                watcher.send_signal(signal.SIGTERM)
                rc = watcher.wait(timeout=60)
        with open(os.path.join(self.daemon.dir, "watch.log")) as f:
            output = f.read()
        self.assertEqual(rc, 0, output)
        self.assertEqual(files_in(drop), [])
        self.assert_placed(drop, {n: "done" for n in names})
        self.drain_inbox()

    def test_sigkill_mid_run_neither_repeats_nor_loses_a_file(self):
        drop = self.scratch("drop-kill")
        names = [f"kill-{i:02}.txt" for i in range(30)]
        for i, name in enumerate(names):
            with open(os.path.join(drop, name), "w") as f:
                f.write(f"file {i}\n" + "本文の行です。\n" * (200 + i))
        old = time.time() - 10  # complete already: no settle wait
        for name in names:
            os.utime(os.path.join(drop, name), (old, old))
        rng = random.Random(9)
        kills = 0
        for _ in range(6):
            watcher = self.background("drop", "watch", drop, "--to", RECIPIENT, "--interval", "1")
            time.sleep(rng.uniform(0.2, 0.8))
            if watcher.poll() is None:
                watcher.send_signal(signal.SIGKILL)
                kills += 1
            watcher.wait()
            if not files_in(drop):
                break
        r = self.mugai("drop", "watch", drop, "--to", RECIPIENT, "--once")
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        self.assertGreater(kills, 0)
        self.assertEqual(files_in(drop), [])
        self.assert_placed(drop, {n: "done" for n in names})
        self.assertEqual(files_in(os.path.join(drop, "done")), sorted(names + [n + ".report.json" for n in names]))
        items = self.vault_items("kill-")
        # A SIGKILL mid-upload leaves a record of the cut attempt (rejected,
        # input.truncated); the file itself is processed exactly once.
        processed = [i for i in items if i["finding_codes"] != ["input.truncated"]]
        self.assertEqual(sorted(i["name"] for i in processed), names, "an item recorded twice or not at all")
        self.assertTrue(all(i["outcome"] == "delivered" for i in processed), processed)
        # Each report names the one item recorded for its file.
        by_name = {i["name"]: i["id"] for i in processed}
        for name in names:
            with open(os.path.join(drop, "done", name + ".report.json")) as f:
                self.assertEqual(json.load(f)["report"]["item_id"], by_name[name])
        self.drain_inbox()


    def test_a_kill_mid_upload_is_processed_once_on_restart(self):
        drop = self.scratch("drop-cut")
        path = os.path.join(drop, "cut-big.txt")
        with open(path, "wb") as f:
            f.write(b"a long line of plain text\n" * 1_200_000)  # 31 MB: the upload takes a while
        old = time.time() - 10
        os.utime(path, (old, old))
        watcher = self.background("drop", "watch", drop, "--to", RECIPIENT)
        record = os.path.join(drop, ".mugai-drop", "cut-big.txt.key")
        deadline = time.time() + 30
        while not os.path.exists(record) and time.time() < deadline:
            time.sleep(0.005)
        time.sleep(0.02)
        watcher.send_signal(signal.SIGKILL)
        watcher.wait()
        r = self.mugai("drop", "watch", drop, "--to", RECIPIENT, "--once")
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        self.assert_placed(drop, {"cut-big.txt": "done"})
        # The cut attempt, when mugaid saw it, is recorded (rejected,
        # input.truncated) but not under the key: the retry with the same
        # key was processed, once.
        items = self.vault_items("cut-big.txt")
        self.assertEqual([i["outcome"] for i in items if i["finding_codes"] != ["input.truncated"]], ["delivered"])
        self.drain_inbox()


class InboxSyncTest(ExchangeTestCase):
    def test_sync_killed_mid_transfer_places_every_entry_once(self):
        self.drain_inbox()
        source = self.scratch("sync-source")
        rng = random.Random(90)
        for i in range(24):
            size = 4_000_000 if i % 6 == 0 else 2_000 + i
            line = f"{i:03} 受信箱の同期試験 " + "x" * 40 + "\n"
            with open(os.path.join(source, f"entry-{i:02}.txt"), "w", encoding="utf-8") as f:
                f.write(line * (size // len(line.encode("utf-8")) + 1))
        r = self.mugai("drop", "watch", source, "--to", RECIPIENT, "--once", "--settle", "0")
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        # Two entries with one name: both arrive, neither replaces the other.
        second = os.path.join(self.scratch("sync-second"), "entry-01.txt")
        with open(second, "w") as f:
            f.write("another file of the same name\n")
        rc, _ = self.submit(second)
        self.assertEqual(rc, 0)
        entries = self.inbox_entries()
        self.assertEqual(len(entries), 25)
        expected = sorted(e["sha256"] for e in entries)

        target = self.scratch("sync-target")
        kills = 0
        for _ in range(8):
            sync = self.background("inbox", "sync", target, "--interval", "1", server=self.daemon.egress,
                                   token=self.token)
            time.sleep(rng.uniform(0.1, 0.6))
            if sync.poll() is None:
                sync.send_signal(signal.SIGKILL)
                kills += 1
            sync.wait()
        r = self.inbox("sync", target, "--once", "--json")
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        self.assertGreater(kills, 0)
        self.assertEqual(self.inbox_entries(), [])
        placed = files_in(target)
        self.assertEqual(len(placed), len(entries), placed)
        self.assertEqual(sorted(sha256(os.path.join(target, n)) for n in placed), expected)
        self.assertIn("entry-01-1.txt", placed)
        private = os.path.join(target, ".mugai-inbox")
        with open(os.path.join(private, "state")) as f:
            self.assertEqual(f.read(), "")
        # Another pass finds nothing more to do.
        r = self.inbox("sync", target, "--once")
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        self.assertEqual(files_in(target), placed)


if __name__ == "__main__":
    unittest.main()
