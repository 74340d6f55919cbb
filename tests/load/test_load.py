"""Soak and chaos: the real mugaid under a mixed load from ../shared/corpus
and the clamav-testfiles, driven by tests/load/mugai_load.

LoadTest runs the mix for MUGAI_LOAD_SECONDS (default 60) and checks the
daemon's Prometheus figures against the client's counts. ChaosTest runs it
for MUGAI_CHAOS_SECONDS (default 45) while workers are SIGKILLed, mugaid
itself is SIGKILLed and restarted, and its data disk (a tmpfs of its own)
fills up; then it retries what was not acknowledged and accounts for every
request. Both print their figures. Standard library only.
"""

import collections
import hashlib
import json
import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import unittest
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "integration"))
from test_daemon import BIN, CORPUS, TESTFILES, Daemon, children, free_port  # noqa: E402

LOAD_SECONDS = float(os.environ.get("MUGAI_LOAD_SECONDS", "60"))
CHAOS_SECONDS = float(os.environ.get("MUGAI_CHAOS_SECONDS", "45"))
CLIENTS = 4
RECIPIENT = "load.recipient"
MAX_INPUT_BYTES = 1_500_000
OUTCOMES = {"delivered", "delivered_with_removals", "quarantined", "rejected"}

# (corpus folder, file name suffixes, how many): mails, PDFs, Office files,
# images and archives, the smaller ones first.
MIX = [
    ("mail", (".eml",), 12),
    ("pdf/text", (".pdf",), 3),
    ("pdf/cjk", (".pdf",), 3),
    ("pdf/active", (".pdf",), 3),
    ("office/japanese", (".docx", ".xlsx", ".pptx", ".doc", ".xls"), 3),
    ("office/macro", (".docm", ".xlsm", ".doc"), 2),
    ("dangerzone-test-docs/test_docs", (".png", ".jpg", ".gif", ".bmp", ".svg", ".tiff"), 6),
    ("archive", (".zip", ".7z", ".tar", ".tgz", ".cab"), 6),
]
TESTFILE_NAMES = ["clam.exe", "clam.zip", "clam.pdf", "clam.doc", "clam.7z", "clam.tar.gz"]


def corpus_mix():
    """(call, path) pairs: every mail as a message, everything else as a
    file. Nothing that is plain text: its sanitized form may be its own
    bytes, which the unsanitized-delivery check would rightly flag."""
    picked = []
    for folder, suffixes, count in MIX:
        found = []
        for root, _, files in os.walk(os.path.join(CORPUS, folder)):
            for name in files:
                path = os.path.join(root, name)
                if name.lower().endswith(suffixes) and "bomb" not in name and os.path.getsize(path) <= MAX_INPUT_BYTES:
                    found.append((os.path.getsize(path), path))
        found.sort()
        picked += [("message" if path.endswith(".eml") else "file", path) for _, path in found[:count]]
    picked += [("file", os.path.join(TESTFILES, n)) for n in TESTFILE_NAMES
               if os.path.exists(os.path.join(TESTFILES, n))]
    return picked


def sha256_file(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def read_journal(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def tree_pids(pid):
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        todo += children(p)
    return found


def rss_kib(pid, field="VmRSS"):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0


class RssSampler(threading.Thread):
    """Peak RSS of mugaid and of mugaid with every process under it."""

    def __init__(self, daemon):
        super().__init__(daemon=True)
        self.daemon_under_test, self.stop = daemon, threading.Event()
        self.peak_daemon_kib = self.peak_tree_kib = 0
        self.samples = 0

    def run(self):
        while not self.stop.wait(0.2):
            self.samples += 1
            proc = self.daemon_under_test.proc
            if proc is None or proc.poll() is not None:
                continue
            self.peak_daemon_kib = max(self.peak_daemon_kib, rss_kib(proc.pid, "VmHWM"))
            self.peak_tree_kib = max(self.peak_tree_kib, sum(rss_kib(p) for p in tree_pids(proc.pid)))


def run_load(daemon, manifest, journal, *args, timeout=900):
    r = subprocess.run([os.path.join(BIN, "mugai_load"), "--server", daemon.ingress, "--manifest", manifest,
                        "--journal", journal, "--recipient", RECIPIENT, *args],
                       capture_output=True, timeout=timeout)
    if r.returncode != 0:
        raise AssertionError(f"mugai_load failed: {r.stderr.decode()}")
    return json.loads(r.stdout)


def scrape(port):
    """{(name, frozenset(labels)): value} from the metrics endpoint."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        text = r.read().decode()
    samples = {}
    for line in text.splitlines():
        m = re.match(r'^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$', line)
        if m:
            labels = frozenset(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(2) or ""))
            samples[(m.group(1), labels)] = float(m.group(3))
    return samples


def total(samples, name, **labels):
    want = set(labels.items())
    return sum(v for (n, l), v in samples.items() if n == name and want <= set(l))


def unsanitized_deliveries(attempts, originals):
    """Derivatives whose SHA-256 is that of any input sent: an original
    that went through as it came."""
    return [(a["seq"], a["path"], d) for a in attempts if a.get("ok")
            for d in a.get("derivatives", []) if d in originals]


def write_manifest(path, mix):
    with open(path, "w") as f:
        for call, p in mix:
            f.write(f"{call}\t{p}\n")


class LoadTest(unittest.TestCase):
    def setUp(self):
        self.port = free_port()
        self.daemon = Daemon(f'[listeners]\nmetrics = "127.0.0.1:{self.port}"\n').start()

    def tearDown(self):
        self.daemon.cleanup()

    def test_mixed_load_and_the_metrics_agree_with_the_client(self):
        mix = corpus_mix()
        self.assertGreaterEqual(len(mix), 30, mix)
        manifest, journal = self.daemon.write("mix.tsv", b""), os.path.join(self.daemon.dir, "journal.jsonl")
        write_manifest(manifest, mix)
        sampler = RssSampler(self.daemon)
        sampler.start()
        figures = run_load(self.daemon, manifest, journal, "--clients", str(CLIENTS), "--seconds", str(LOAD_SECONDS))
        sampler.stop.set()
        sampler.join()
        self.assertGreater(sampler.samples, 0)
        self.assertGreater(sampler.peak_daemon_kib, 0, "the RSS sampler stopped")
        attempts = read_journal(journal)
        samples = scrape(self.port)

        self.assertEqual(figures["errors"], {}, self.daemon.log_text()[-3000:])
        self.assertEqual(figures["attempts"], len(attempts))
        self.assertGreaterEqual(figures["acknowledged"], len(mix), "the mix did not go round once")
        # Every acknowledged item is recorded once, with the outcome the client saw.
        db = sqlite3.connect(os.path.join(self.daemon.dir, "data", "mugai.db"))
        recorded = dict(db.execute("SELECT id, outcome FROM items"))
        self.assertEqual(len(recorded), len(attempts))
        for a in attempts:
            self.assertEqual(recorded.get(a["item_id"]), a["outcome"], a)
        originals = {sha256_file(p) for _, p in mix}
        self.assertEqual(unsanitized_deliveries(attempts, originals), [])

        # The daemon's own figures agree with the client's.
        for outcome in OUTCOMES:
            self.assertEqual(total(samples, "mugai_items_total", outcome=outcome),
                             figures["outcomes"].get(outcome, 0), outcome)
        calls = collections.Counter(a["call"] for a in attempts)
        self.assertEqual(total(samples, "mugai_rpc_seconds_count", method="/mugai.v1.Sanitizer/SanitizeFile",
                               code="0"), calls["file"])
        self.assertEqual(total(samples, "mugai_rpc_seconds_count", method="/mugai.v1.Sanitizer/SanitizeMessage",
                               code="0"), calls["message"])
        codes = collections.Counter(c for a in attempts for c in set(a["codes"]))
        for code, n in codes.items():
            self.assertEqual(total(samples, "mugai_findings_total", code=code), n, code)
        self.assertGreater(total(samples, "mugai_converter_seconds_count", pool="worker", status="ok"), 0)
        self.assertGreater(total(samples, "mugai_worker_pool_workers", pool="worker"), 0)
        held = db.execute("SELECT count(*) FROM items WHERE state IN ('held', 'release_requested', 'released')")
        self.assertEqual(total(samples, "mugai_vault_items"), held.fetchone()[0])

        print(f"\nload: {len(mix)} inputs, {CLIENTS} clients, {figures['seconds']:.0f} s: "
              f"{figures['requests']:.0f} requests, {figures['per_second']:.1f}/s, p50 {figures['p50_ms']:.0f} ms, "
              f"p95 {figures['p95_ms']:.0f} ms, p99 {figures['p99_ms']:.0f} ms, outcomes {figures['outcomes']}, "
              f"errors {figures['errors']}; peak RSS mugaid {sampler.peak_daemon_kib // 1024} MiB, "
              f"with its workers {sampler.peak_tree_kib // 1024} MiB; findings {dict(codes)}")


class ChaosTest(unittest.TestCase):
    """Faults during a load run, then the accounting."""

    # Room for what the run records (originals and inbox copies are sealed
    # in the database), so that the disk is full only when the test fills it.
    DISK_BYTES = 1 << 30

    def setUp(self):
        self.daemon = Daemon()
        self.data = os.path.join(self.daemon.dir, "data")
        os.makedirs(self.data)
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={self.DISK_BYTES},mode=0700", "tmpfs", self.data],
                       check=True)
        self.daemon.start()

    def tearDown(self):
        self.daemon.stop()
        subprocess.run(["umount", "-l", self.data], check=False)
        self.daemon.cleanup()

    def leave_daemon_down(self, faults):
        self.daemon.proc.kill()
        self.daemon.proc.wait()
        self.daemon.log.close()
        faults["mugaid SIGKILL"] += 1

    def kill_daemon(self, faults):
        self.leave_daemon_down(faults)
        self.daemon.start()

    def fill_disk(self, faults, stop):
        """Fills the data disk to the last byte, holds it full, frees it."""
        filler = os.path.join(self.data, "filler")
        with open(filler, "wb", buffering=0) as f:
            for block in (1 << 20, 1):
                try:
                    while f.write(b"\0" * block):
                        pass
                except OSError:
                    pass
        faults["disk full"] += 1
        stop.wait(6)
        os.unlink(filler)

    def chaos(self, stop, faults, rng):
        try:
            self.inject(stop, faults, rng)
        except BaseException as e:  # the test fails on it: a fault plan not carried out proves nothing
            self.chaos_error = e
            raise

    def inject(self, stop, faults, rng):
        start = time.monotonic()
        # The last kill is left down as the run ends: what was in flight then
        # is for the retry.
        plan = [(0.25, self.kill_daemon), (0.50, lambda f: self.fill_disk(f, stop)), (0.75, self.kill_daemon),
                (0.97, self.leave_daemon_down)]
        while not stop.is_set():
            elapsed = (time.monotonic() - start) / CHAOS_SECONDS
            if plan and elapsed >= plan[0][0]:
                plan.pop(0)[1](faults)
                continue
            if self.daemon.proc.poll() is not None:
                stop.wait(0.1)
                continue
            pid = self.daemon.proc.pid
            victims = [p for p in children(pid) if _program(p) in ("mugai-worker", "mugai-office-worker",
                                                                  "mugai-scanner")]
            if victims:
                victim = rng.choice(victims)
                program = _program(victim)
                try:
                    os.kill(victim, signal.SIGKILL)
                    faults[program] += 1
                except ProcessLookupError:
                    pass
            stop.wait(rng.uniform(0.3, 0.8))

    def test_faults_lose_nothing_and_deliver_nothing_unsanitized(self):
        mix = corpus_mix()
        # Files go through the exchange (idempotent by submit key), mails
        # through SanitizeMessage, each made distinct.
        mix = [(call if call == "message" else "submit", p) for call, p in mix]
        self.disk_peak = 0
        manifest, journal = self.daemon.write("mix.tsv", b""), os.path.join(self.daemon.dir, "journal.jsonl")
        write_manifest(manifest, mix)
        stop, faults, rng = threading.Event(), collections.Counter(), random.Random(10)
        self.chaos_error = None
        chaos = threading.Thread(target=self.chaos, args=(stop, faults, rng), daemon=True)
        load = subprocess.Popen([os.path.join(BIN, "mugai_load"), "--server", self.daemon.ingress,
                                 "--manifest", manifest, "--journal", journal, "--recipient", RECIPIENT,
                                 "--unique", "--clients", str(CLIENTS), "--seconds", str(CHAOS_SECONDS)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        chaos.start()
        out, err = load.communicate(timeout=CHAOS_SECONDS + 600)
        stop.set()
        chaos.join()
        self.assertIsNone(self.chaos_error)
        self.assertEqual(load.returncode, 0, err.decode())
        # The whole plan was carried out, and workers of each kind died.
        self.assertEqual(faults["mugaid SIGKILL"], 3, faults)
        self.assertEqual(faults["disk full"], 1, faults)
        self.assertGreaterEqual(faults["mugai-worker"] + faults["mugai-office-worker"], 10, faults)
        figures = json.loads(out)
        first_pass = read_journal(journal)
        if self.daemon.proc.poll() is not None:
            self.daemon.start()
        retried = run_load(self.daemon, manifest, journal, "--unique", "--retry", journal, "--clients", str(CLIENTS))
        attempts = read_journal(journal)
        log = self.daemon.log_text()[-4000:]

        by_seq = collections.defaultdict(list)
        for a in attempts:
            by_seq[a["seq"]].append(a)
        # Every request ends acknowledged (at the latest when retried once).
        unacknowledged = [s for s, tries in by_seq.items() if not tries[-1]["ok"]]
        self.assertEqual(unacknowledged, [], log)
        db = sqlite3.connect(os.path.join(self.data, "mugai.db"))
        items = {row[0]: row[1:] for row in db.execute("SELECT id, sha256, outcome FROM items")}
        submissions = dict(db.execute("SELECT submit_key, item_id FROM submissions"))
        orphans = 0
        accounted = set()
        for seq, tries in by_seq.items():
            acked = [t for t in tries if t["ok"]]
            ids = {t["item_id"] for t in acked}
            for t in acked:
                self.assertIn(t["item_id"], items, t)
                self.assertEqual(items[t["item_id"]][1], t["outcome"], t)
                self.assertIn(t["outcome"], OUTCOMES)
            if tries[0]["call"] == "submit":
                # Processed once: every acknowledged attempt of one key is
                # the one recorded item of that key.
                self.assertEqual(len(ids), 1, tries)
                self.assertEqual(submissions.get(tries[0]["key"]), ids.pop(), tries)
            else:
                # A message has no key: an attempt recorded but not
                # answered (mugaid killed in between) leaves a record the
                # sender never saw, and the retry makes another.
                self.assertEqual(len(ids), 1, tries)
                same = [i for i, (sha, _) in items.items() if sha == tries[0]["sha256"]]
                extra = len(same) - 1
                self.assertLessEqual(extra, len(tries) - 1, (tries, same))
                orphans += extra
                accounted.update(same)
            accounted.update(t["item_id"] for t in acked)
        self.assertEqual(set(items) - accounted, set(), "records no request accounts for")
        originals = {a["sha256"] for a in attempts} | {sha256_file(p) for _, p in mix}
        self.assertEqual(unsanitized_deliveries(attempts, originals), [])
        # What crossed into the LGWAN side's inboxes.
        crossed = {row[0] for row in db.execute("SELECT sha256 FROM inbox")}
        self.assertEqual(crossed & originals, set(), "an original in an inbox")
        verify = self.daemon.cli("audit", "verify", server=self.daemon.admin)
        self.assertEqual(verify.returncode, 0, verify.stdout.decode() + verify.stderr.decode())

        errors = collections.Counter(a["code"] for a in first_pass if not a["ok"])
        print(f"\nchaos: {CLIENTS} clients, {figures['seconds']:.0f} s: {len(by_seq)} requests "
              f"({figures['acknowledged']:.0f} acknowledged during the run, {figures['per_second']:.1f}/s, "
              f"p50 {figures['p50_ms']:.0f} ms, p99 {figures['p99_ms']:.0f} ms), errors {dict(errors)}, "
              f"{retried['requests']:.0f} retried and acknowledged; faults {dict(faults)}; "
              f"{len(items)} records, {orphans} recorded but unanswered; outcomes lost 0, "
              f"unsanitized deliveries 0, audit chain verified")


def _program(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return os.path.basename(f.read().split(b"\0", 1)[0]).decode()
    except (FileNotFoundError, ProcessLookupError):
        return ""


if __name__ == "__main__":
    unittest.main()
