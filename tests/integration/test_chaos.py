"""Chaos test: random workers are SIGKILLed while a batch of 200 items runs.

Every item must still end in exactly one recorded outcome (in the CLI's
report and in the item store alike), none may be missing or recorded twice,
and nothing unsanitized may reach an output directory. Standard library only;
the daemon and the CLI are the real ones (see test_daemon.Daemon).
"""

import collections
import concurrent.futures
import hashlib
import json
import os
import random
import signal
import sqlite3
import subprocess
import threading
import time
import unittest

from test_daemon import BIN, EICAR, Daemon

ITEMS = 200
SUBMITTERS = 8
MIN_KILLS = 20
KILL_INTERVAL_S = (0.030, 0.080)
OUTCOMES = {"delivered", "delivered_with_removals", "quarantined", "rejected"}
RLO = "\u202e"
# Lines (or paragraphs) per item: REPEAT_BASE + (37 i mod REPEAT_SPREAD),
# from under 1 KB (EICAR) to about 160 KB.
REPEAT_BASE, REPEAT_SPREAD = 400, 1200


def children(pid):
    """Pids of the direct children of `pid` (every thread's children)."""
    found = set()
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except FileNotFoundError:
        return found
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/children") as f:
                found.update(int(p) for p in f.read().split())
        except (FileNotFoundError, ProcessLookupError):
            pass
    return found


def is_worker(pid):
    """True for a mugai-worker process (after exec; a child still in
    posix_spawn shows mugaid's own command line and is left alone)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv0 = f.read().split(b"\0", 1)[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return os.path.basename(argv0) == b"mugai-worker"


def workers_of(pid):
    return sorted(p for p in children(pid) if is_worker(p))


def log_digest(daemon, lines=60):
    """The daemon's log without the one-line-per-item noise."""
    kept = [line for line in daemon.log_text().splitlines()
            if " INFO item " not in line and "during the job" not in line]
    return "\n".join(kept[-lines:])


def make_items():
    """(kind, file name, bytes, expected text or None) for each item; every
    content is distinct (it carries its index), so every SHA-256 is too.
    Sizes vary (tens of KB), so jobs last long enough for kills to land
    mid-job as well as between jobs."""
    items = []
    for i in range(ITEMS):
        kind = ("utf8", "sjis", "html", "eicar")[i % 4]
        repeat = REPEAT_BASE + (i * 37) % REPEAT_SPREAD
        if kind == "utf8":
            # Half of them carry a bidi override, which must be stripped.
            # (Not starting with a kanji from U+9000-U+9FFF: libmagic takes
            # such text, once longer than the jump, for a DOS .COM file.)
            rlo = RLO if i % 8 == 0 else ""
            text = (f"件名 {i}: 請求書を送付します。{rlo}ご確認ください。\n"
                    f"Item {i}: the invoice is attached.\n") * repeat
            items.append((kind, f"item-{i:03d}.txt", text.encode("utf-8"), text.replace(RLO, "")))
        elif kind == "sjis":
            text = (f"第{i}号 日本語のテキスト、①②③ 髙橋さん\n"
                    f"請求書を送付します。番号は{i}です。よろしくお願いいたします。\n") * repeat
            items.append((kind, f"item-{i:03d}-sjis.txt", text.encode("cp932"), text))
        elif kind == "html":
            html = ("<!DOCTYPE html>\n<html><head><title>お知らせ</title>"
                    f"<script>alert({i});document.location='https://evil.example/{i}'</script></head>"
                    f"<body><p>お知らせ第{i}号 &amp; 案内</p>"
                    + f"<div><p>本文 {i} の<b>段落</b>です。<span>住民税</span>の通知。</p></div>" * repeat +
                    f"<p><a href=\"https://example.jp/notice/{i}\">詳細{i}</a></p></body></html>\n")
            items.append((kind, f"item-{i:03d}.html", html.encode("utf-8"),
                          f"詳細{i} <https://example.jp/notice/{i}>"))
        else:
            items.append((kind, f"item-{i:03d}-eicar.txt", EICAR + f"\nitem {i}\n".encode(), None))
    return items


class ChaosTest(unittest.TestCase):
    def setUp(self):
        self.daemon = Daemon("[workers]\ncount = 2\n").start()

    def tearDown(self):
        self.daemon.cleanup()

    def submit(self, index, path, outdir, abort):
        if abort.is_set():
            return index, None
        r = subprocess.run([os.path.join(BIN, "mugai"), "--server", self.daemon.ingress,
                            "sanitize-file", path, "-o", outdir, "--json"],
                           capture_output=True, timeout=120)
        # Fail fast rather than grind through the batch: a call that failed
        # or an item that timed out waiting for a worker means the pool lost
        # workers, and every later item would wait item_seconds too.
        if r.returncode not in (0, 2) or b"worker.timeout" in r.stdout:
            abort.set()
        return index, r

    def killer(self, stop, kills, rng):
        pid = self.daemon.proc.pid
        while not stop.is_set():
            workers = workers_of(pid)
            if workers:
                victim = rng.choice(workers)
                try:
                    os.kill(victim, signal.SIGKILL)
                    kills.append(victim)
                except ProcessLookupError:
                    pass
            stop.wait(rng.uniform(*KILL_INTERVAL_S))

    def test_sigkill_chaos_on_200_items(self):
        daemon = self.daemon
        started = time.monotonic()
        seed = int(os.environ.get("MUGAI_CHAOS_SEED", time.time_ns() % 1000000))
        rng = random.Random(seed)
        items = make_items()
        self.assertEqual(len({hashlib.sha256(c).hexdigest() for _, _, c, _ in items}), ITEMS)
        paths, outdirs = [], []
        for i, (_, name, content, _) in enumerate(items):
            os.makedirs(os.path.join(daemon.dir, "in", str(i)))
            paths.append(daemon.write(os.path.join("in", str(i), name), content))
            outdirs.append(os.path.join(daemon.dir, "out", str(i)))

        self.assertEqual(len(workers_of(daemon.proc.pid)), 2, "expected 2 workers at start")
        batch_started = time.monotonic()
        stop, abort, kills = threading.Event(), threading.Event(), []
        killer = threading.Thread(target=self.killer, args=(stop, kills, rng), daemon=True)
        killer.start()
        results = {}
        try:
            with concurrent.futures.ThreadPoolExecutor(SUBMITTERS) as pool:
                order = list(range(ITEMS))
                rng.shuffle(order)
                futures = [pool.submit(self.submit, i, paths[i], outdirs[i], abort) for i in order]
                for future in concurrent.futures.as_completed(futures):
                    index, r = future.result()
                    results[index] = r
        finally:
            stop.set()
            killer.join()
        batch_seconds = time.monotonic() - batch_started
        context = f"(MUGAI_CHAOS_SEED={seed} repeats the order, victims and intervals)"

        if abort.is_set():
            bad = sorted((i, r) for i, r in results.items()
                         if r is not None and (r.returncode not in (0, 2) or b"worker.timeout" in r.stdout))
            i, r = bad[0]
            self.fail(f"batch aborted after {len(kills)} kills, {batch_seconds:.1f} s: item {i} "
                      f"({items[i][1]}) exited {r.returncode}: {r.stdout.decode(errors='replace')} "
                      f"{r.stderr.decode(errors='replace')} {context}\n{log_digest(daemon)}")

        # Every call answered with exactly one outcome and an item id.
        reports = {}
        for i in range(ITEMS):
            r = results[i]
            self.assertIn(r.returncode, (0, 2),
                          f"item {i} ({items[i][1]}): mugai exited {r.returncode}: "
                          f"{r.stderr.decode(errors='replace')} {context}\n{log_digest(daemon)}")
            report = json.loads(r.stdout)
            self.assertIn(report.get("outcome"), OUTCOMES, f"item {i}: {report}")
            self.assertEqual(report["item"]["outcome"], report["outcome"], f"item {i}: {report}")
            self.assertTrue(report.get("item_id"), f"item {i}: {report}")
            self.assertEqual(r.returncode, 0 if report["outcome"].startswith("delivered") else 2,
                             f"item {i}: {report}")
            self.assertEqual(report["item"]["sha256"], hashlib.sha256(items[i][2]).hexdigest())
            reports[i] = report
        ids = [reports[i]["item_id"] for i in range(ITEMS)]
        self.assertEqual(len(set(ids)), ITEMS, "item ids are not distinct")

        # The store holds each item once, with the outcome the client heard.
        db = sqlite3.connect(f"file:{daemon.dir}/data/mugai.db?mode=ro", uri=True)
        try:
            rows = db.execute("SELECT id, outcome, sha256, finding_codes FROM items").fetchall()
        finally:
            db.close()
        self.assertEqual(len(rows), ITEMS, "the items table does not have one row per item")
        stored = {row[0]: row for row in rows}
        self.assertEqual(set(stored), set(ids))
        for i in range(ITEMS):
            _, outcome, sha256, finding_codes = stored[ids[i]]
            self.assertEqual(outcome, reports[i]["outcome"], f"item {i}")
            self.assertEqual(sha256, reports[i]["item"]["sha256"], f"item {i}")
            self.assertEqual(set(finding_codes.split()),
                             {f["code"] for f in reports[i]["item"]["findings"]}, f"item {i}")

        # Outcomes per kind; nothing unsanitized in any output directory.
        outcome_counts = collections.Counter()
        code_counts = collections.Counter()
        crashed = 0
        for i, (kind, name, content, expected) in enumerate(items):
            report = reports[i]
            item = report["item"]
            codes = [f["code"] for f in item["findings"]]
            outcome_counts[report["outcome"]] += 1
            code_counts.update(codes)
            what = f"item {i} ({name}): {report}"
            written = sorted(os.listdir(outdirs[i])) if os.path.isdir(outdirs[i]) else []
            if kind == "eicar":
                self.assertEqual(report["outcome"], "quarantined", what)
                self.assertIn("av.detected", codes, what)
            if report["outcome"] == "quarantined":
                if kind != "eicar":
                    # The only reason a clean item may be held here is a
                    # worker killed under it.
                    self.assertIn("worker.crashed", codes, what)
                    reason = next(f["reason"] for f in item["findings"]
                                  if f["code"] == "worker.crashed")
                    self.assertIn("SIGKILL", reason, what)  # ours, not a crash of its own
                    crashed += 1
                self.assertEqual(item["derivatives"], [], what)
                self.assertEqual(written, [], what)
                continue
            self.assertNotEqual(report["outcome"], "rejected", what)
            self.assertNotIn("worker.crashed", codes, what)
            self.assertEqual(len(item["derivatives"]), 1, what)
            derivative = item["derivatives"][0]
            self.assertEqual(written, [derivative["name"]], what)
            with open(os.path.join(outdirs[i], derivative["name"]), "rb") as f:
                data = f.read()
            self.assertEqual(hashlib.sha256(data).hexdigest(), derivative["sha256"], what)
            text = data.decode("utf-8")  # raises on invalid UTF-8
            self.assertNotIn("<script", text.lower(), what)
            self.assertNotIn("<p>", text.lower(), what)
            self.assertNotIn(RLO, text, what)
            if kind == "html":
                self.assertIn(expected, text, what)
                self.assertNotIn("alert", text, what)
                self.assertNotIn("evil.example", text, what)
            else:
                self.assertEqual(text, expected, what)
            if RLO.encode() in content:
                self.assertEqual(report["outcome"], "delivered_with_removals", what)
                self.assertIn("text.stripped", codes, what)
            else:
                self.assertEqual(report["outcome"], "delivered", what)

        self.assertGreaterEqual(len(kills), MIN_KILLS,
                                f"only {len(kills)} workers were killed in {batch_seconds:.1f} s")
        self.assertLessEqual(crashed, len(kills), "more items crashed than workers were killed")

        after_started = time.monotonic()
        # The daemon still serves. Two items in a row go through both pool
        # slots, so a worker last killed while idle (left dead until the
        # next job asks for it) has been replaced too: the pool is whole.
        self.assertIsNone(daemon.proc.poll(), log_digest(daemon))
        for n in range(2):
            text = f"カオスの後 {n}\nstill here\n"
            out = os.path.join(daemon.dir, f"out-after-{n}")
            rc, report = daemon.sanitize(daemon.write(f"after-{n}.txt", text.encode()), out)
            self.assertEqual(rc, 0, report)
            self.assertEqual(report["outcome"], "delivered", report)
            with open(os.path.join(out, f"after-{n}.txt"), encoding="utf-8") as f:
                self.assertEqual(f.read(), text)
        deadline = time.monotonic() + 10
        while len(workers_of(daemon.proc.pid)) != 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        # Every worker was replaced without trouble (a failed start is
        # logged as an error and leaves the pool a slot short).
        errors = [line for line in daemon.log_text().splitlines() if " ERROR " in line]
        self.assertEqual(errors, [], f"mugaid logged errors {context}")
        self.assertEqual(len(workers_of(daemon.proc.pid)), 2,
                         f"the pool did not get back to 2 workers {context}\n" + log_digest(daemon))
        stop_started = time.monotonic()
        rc = daemon.stop()
        stop_seconds = time.monotonic() - stop_started
        self.assertEqual(rc, 0, f"mugaid exited with {rc} on SIGTERM:\n{log_digest(daemon)}")

        seconds = time.monotonic() - started
        print(f"\nchaos: {ITEMS} items, {len(kills)} kills, {crashed} worker.crashed, "
              f"outcomes {dict(sorted(outcome_counts.items()))}, "
              f"codes {dict(sorted(code_counts.items()))}, "
              f"batch {batch_seconds:.1f} s, checks {after_started - batch_started - batch_seconds:.1f} s, "
              f"after {stop_started - after_started:.1f} s, stop {stop_seconds:.1f} s, "
              f"total {seconds:.1f} s, seed {seed}", flush=True)


if __name__ == "__main__":
    unittest.main()
