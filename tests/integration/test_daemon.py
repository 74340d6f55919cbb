"""Integration tests: the real mugaid, its real scanner and worker processes,
driven by the real mugai CLI (and mugai-probe where the CLI would refuse to
send something). Standard library only."""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest

BIN = os.environ["MUGAI_BIN_DIR"]
SAMPLES = os.environ["MUGAI_SAMPLES_DIR"]
CORPUS = os.environ.get("MUGAI_CORPUS_DIR", "")
TESTFILES = "/usr/share/clamav-testfiles"

# Built at run time from two halves, so no EICAR file exists in the tree.
EICAR = (b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$" + b"EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*")


def free_port():
    """A TCP port nothing listens on now (for a test's listener)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Process:
    """One of our programs run by a test, in its own temporary directory
    `dir`, logging to `log_path` (self.log while it runs)."""

    def log_text(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def stop(self):
        """SIGTERM, then SIGKILL after 60 s; returns the exit status."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc:
            self.log.close()
        return self.proc.returncode if self.proc else None

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class Daemon(Process):
    """A mugaid on unix sockets in a temporary directory."""

    def __init__(self, config_extra="", signatures=None):
        self.dir = tempfile.mkdtemp(prefix="mugai-it-")
        self.ingress = f"unix:{self.dir}/ingress.sock"
        self.admin = f"unix:{self.dir}/admin.sock"
        self.egress = f"unix:{self.dir}/egress.sock"
        self.config = os.path.join(self.dir, "mugai.toml")
        with open(self.config, "w") as f:
            f.write(config_extra)
        self.log_path = os.path.join(self.dir, "mugaid.log")
        self.signatures = signatures or os.path.join(SAMPLES, "signatures")
        self.proc = None

    def start(self):
        """Starts mugaid (again, after stop(): the same data directory and
        sockets) and waits for this process's own "ready" line."""
        offset = len(self.log_text())
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [os.path.join(BIN, "mugaid"), "--config", self.config,
             "--data-dir", os.path.join(self.dir, "data"),
             "--ingress", self.ingress, "--admin", self.admin, "--egress", self.egress,
             "--signatures", self.signatures],
            stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 60
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("mugaid exited at startup:\n" + self.log_text()[offset:])
            if re.search(r" ready$", self.log_text()[offset:], re.M):
                return self
            time.sleep(0.05)
        raise AssertionError("mugaid did not become ready:\n" + self.log_text()[offset:])


    @property
    def admin_token_file(self):
        """The token mugaid makes for "local-admin" on its first start."""
        return os.path.join(self.dir, "data", "admin.token")

    def cli(self, *args, server=None):
        env = dict(os.environ)
        if os.path.exists(self.admin_token_file):
            env["MUGAI_ADMIN_TOKEN_FILE"] = self.admin_token_file
        return subprocess.run([os.path.join(BIN, "mugai"), "--server", server or self.ingress, *args],
                              capture_output=True, timeout=120, env=env)

    def sanitize(self, path, out=None):
        """Returns (exit code, report dict)."""
        args = ["sanitize-file", path, "--json"]
        if out:
            args += ["-o", out]
        r = self.cli(*args)
        if r.returncode == 1:
            raise AssertionError(f"mugai failed: {r.stderr.decode()}\n{self.log_text()}")
        return r.returncode, json.loads(r.stdout)

    def quarantine(self, *args):
        r = self.cli("quarantine", *args, "--json", server=self.admin)
        return r.returncode, (json.loads(r.stdout) if r.returncode == 0 and r.stdout else None)

    def probe(self, *args):
        return subprocess.run([os.path.join(BIN, "mugai-probe"), *args], capture_output=True,
                              timeout=120)

    def write(self, name, data):
        path = os.path.join(self.dir, name)
        with open(path, "wb") as f:
            f.write(data)
        return path


def children(pid):
    """Pids of the direct children of `pid` (none once it is gone; a
    thread that ends while they are read is skipped)."""
    found = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except (FileNotFoundError, ProcessLookupError):
        return found
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/children") as f:
                found += [int(c) for c in f.read().split()]
        except (FileNotFoundError, ProcessLookupError):
            pass
    return found


def is_hostile_worker(pid):
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().startswith("mugai-hostile")
    except OSError:
        return False


def sleeping(pid):
    """True when `pid` is blocked in clock_nanosleep (x86_64 call 230)."""
    try:
        with open(f"/proc/{pid}/syscall") as f:
            return f.read().split()[0] == "230"
    except (OSError, IndexError):
        return False


def codes(report):
    return [f["code"] for f in report["item"]["findings"]]


class DaemonTestCase(unittest.TestCase):
    config_extra = ""
    use_hostile_worker = False

    @classmethod
    def setUpClass(cls):
        extra = cls.config_extra
        if cls.use_hostile_worker:
            extra = (f'[workers]\ncount = 2\nexecutable = "{BIN}/mugai-hostile-worker"\n') + extra
        cls.daemon = Daemon(extra).start()

    @classmethod
    def tearDownClass(cls):
        rc = cls.daemon.stop()
        log = cls.daemon.log_text()
        cls.daemon.cleanup()
        if rc != 0:
            raise AssertionError(f"mugaid exited with {rc} on SIGTERM:\n{log}")

    def assert_alive(self):
        self.assertIsNone(self.daemon.proc.poll(), self.daemon.log_text())
        rc, report = self.daemon.sanitize(self.daemon.write("alive.txt", b"still here\n"))
        self.assertEqual(rc, 0)
        self.assertEqual(report["outcome"], "delivered")


class SanitizeTest(DaemonTestCase):
    def test_shift_jis_text_comes_back_as_utf8(self):
        text = "日本語のテキスト、①②③ 髙橋さん\n請求書を送付します。\n"
        path = self.daemon.write("memo.txt", text.encode("cp932"))
        out = os.path.join(self.daemon.dir, "out-sjis")
        rc, report = self.daemon.sanitize(path, out)
        self.assertEqual(rc, 0, report)
        self.assertEqual(report["outcome"], "delivered")
        item = report["item"]
        self.assertEqual(item["detected_type"], "text/plain")
        self.assertEqual(item["action"], "convert_text")
        self.assertEqual(len(item["derivatives"]), 1)
        derivative = item["derivatives"][0]
        self.assertEqual(derivative["name"], "memo.txt")
        with open(os.path.join(out, "memo.txt"), "rb") as f:
            self.assertEqual(f.read().decode("utf-8"), text)
        self.assertEqual(len(item["sha256"]), 64)
        self.assertTrue(report["item_id"])

    def test_html_becomes_text_with_links(self):
        html = ('<html><head><title>T</title><script>alert(1)</script></head><body>'
                '<p>お知らせ &amp; 案内</p><p><a href="https://example.jp/x">詳細</a></p>'
                '<img src="a.png" alt="地図"></body></html>')
        path = self.daemon.write("notice.html", html.encode("utf-8"))
        out = os.path.join(self.daemon.dir, "out-html")
        rc, report = self.daemon.sanitize(path, out)
        self.assertEqual(rc, 0, report)
        self.assertEqual(report["item"]["action"], "convert_html")
        with open(os.path.join(out, "notice.txt"), encoding="utf-8") as f:
            text = f.read()
        self.assertIn("お知らせ & 案内", text)
        self.assertIn("詳細 <https://example.jp/x>", text)
        self.assertIn("[image: 地図]", text)
        self.assertNotIn("alert", text)
        self.assertNotIn("<p>", text)

    def test_bidi_override_is_stripped(self):
        path = self.daemon.write("rtlo.txt", "invoice\u202etxt.exe\nok\n".encode("utf-8"))
        out = os.path.join(self.daemon.dir, "out-rtlo")
        rc, report = self.daemon.sanitize(path, out)
        self.assertEqual(rc, 0, report)
        self.assertEqual(report["outcome"], "delivered_with_removals")
        self.assertIn("text.stripped", codes(report))
        with open(os.path.join(out, "rtlo.txt"), encoding="utf-8") as f:
            self.assertEqual(f.read(), "invoicetxt.exe\nok\n")

    def corpus(self, *parts):
        path = os.path.join(CORPUS, *parts)
        if not os.path.exists(path):
            self.skipTest("corpus not present")
        return path

    def test_pdf_becomes_a_flattened_pdf(self):
        out = os.path.join(self.daemon.dir, "out-pdf")
        rc, report = self.daemon.sanitize(
            self.corpus("dangerzone-test-docs", "test_docs", "sample-pdf.pdf"), out)
        self.assertEqual(rc, 0, report)
        self.assertEqual(report["item"]["action"], "convert_pdf")
        derivative = report["item"]["derivatives"][0]
        self.assertEqual(derivative["name"], "sample-pdf.pdf")
        self.assertEqual(derivative["media_type"], "application/pdf")
        with open(os.path.join(out, "sample-pdf.pdf"), "rb") as f:
            pdf = f.read()
        self.assertTrue(pdf.startswith(b"%PDF-"))
        self.assertEqual(pdf.count(b"/Type /Page\n") + pdf.count(b"/Type /Page "), 4)

    def test_active_content_does_not_survive_flattening(self):
        out = os.path.join(self.daemon.dir, "out-active")
        for name in ("autoprint.pdf", "doc_actions.pdf", "issue17846.pdf", "attachment.pdf"):
            rc, report = self.daemon.sanitize(self.corpus("pdf", "active", name), out)
            self.assertEqual(rc, 0, f"{name}: {report}")
            with open(os.path.join(out, report["item"]["derivatives"][0]["name"]), "rb") as f:
                pdf = f.read()
            for marker in (b"/JavaScript", b"/JS", b"/OpenAction", b"/AA", b"/Launch",
                           b"/EmbeddedFile", b"/Annots", b"/AcroForm"):
                self.assertNotIn(marker, pdf, f"{name} kept {marker}")

    def test_pdfs_whose_fonts_need_more_of_the_sandbox_render(self):
        # FreeType, loading these fonts, reaches system calls the Helvetica
        # warm-up never makes (qsort_r -> sysinfo).
        for parts in (("pdf", "text", "TAMReview.pdf"), ("pdf", "forms", "prefilled_f1040.pdf")):
            rc, report = self.daemon.sanitize(self.corpus(*parts))
            self.assertEqual(report["outcome"], "delivered", f"{parts[-1]}: {report}")

    def test_every_corpus_pdf_ends_in_one_outcome_without_a_sandbox_violation(self):
        # A seccomp kill on a real document means the allow-list misses a
        # call Poppler legitimately makes.
        root = self.corpus("pdf")
        outcomes = {}
        for folder, _, names in sorted(os.walk(root)):
            for name in sorted(names):
                rc, report = self.daemon.sanitize(os.path.join(folder, name))
                self.assertIn(report["outcome"], ("delivered", "quarantined"), name)
                self.assertNotIn("worker.violation", codes(report), f"{name}: {report['item']['findings']}")
                outcomes[report["outcome"]] = outcomes.get(report["outcome"], 0) + 1
        self.assertGreater(outcomes.get("delivered", 0), 30, outcomes)
        self.assert_alive()

    def test_japanese_pdf_without_embedded_fonts_renders(self):
        rc, report = self.daemon.sanitize(self.corpus("pdf", "cjk", "noembed-sjis.pdf"))
        self.assertEqual(rc, 0, report)
        self.assertEqual(report["item"]["action"], "convert_pdf")

    def test_pdf_needing_a_password_is_held(self):
        rc, report = self.daemon.sanitize(self.corpus("pdf", "encrypted", "issue6010_1.pdf"))
        self.assertEqual(rc, 2, report)
        self.assertEqual(report["outcome"], "quarantined")
        self.assertIn("document.encrypted", codes(report))

    def test_japanese_mail_body_from_corpus_is_blocked_until_mail_support(self):
        # An .eml is not plain text to libmagic: without the mail pipeline it
        # must be held, not passed through.
        mails = os.path.join(CORPUS, "mail", "japanese")
        if not os.path.isdir(mails):
            self.skipTest("corpus not present")
        eml = sorted(os.path.join(mails, n) for n in os.listdir(mails) if n.endswith(".eml"))[0]
        rc, report = self.daemon.sanitize(eml)
        self.assertEqual(rc, 2, report)
        self.assertEqual(report["outcome"], "quarantined")
        self.assertIn("type.blocked", codes(report))

    def test_executable_is_blocked(self):
        exe = "/bin/true"
        rc, report = self.daemon.sanitize(exe)
        self.assertEqual(rc, 2)
        self.assertEqual(report["outcome"], "quarantined")
        self.assertEqual(report["item"]["action"], "block")
        self.assertIn("type.blocked", codes(report))
        self.assertEqual(report["item"]["derivatives"], [])

    def test_human_output(self):
        r = self.daemon.cli("sanitize-file", self.daemon.write("plain.txt", b"hello\n"))
        self.assertEqual(r.returncode, 0)
        self.assertIn(b"plain.txt: delivered", r.stdout)


class QuarantineTest(DaemonTestCase):
    def test_clam_exe_renamed_to_pdf_is_quarantined_with_mismatch(self):
        path = os.path.join(self.daemon.dir, "invoice.pdf")
        shutil.copy(os.path.join(TESTFILES, "clam.exe"), path)
        rc, report = self.daemon.sanitize(path)
        self.assertEqual(rc, 2, report)
        self.assertEqual(report["outcome"], "quarantined")
        self.assertIn("av.detected", codes(report))
        self.assertIn("type.mismatch", codes(report))
        self.assertEqual(report["item"]["derivatives"], [])
        item_id = report["item_id"]

        rc, listing = self.daemon.quarantine("list")
        self.assertEqual(rc, 0)
        ids = [i["id"] for i in listing["items"]]
        self.assertIn(item_id, ids)

        rc, shown = self.daemon.quarantine("show", item_id)
        self.assertEqual(rc, 0)
        self.assertEqual(shown["name"], "invoice.pdf")
        self.assertIn("av.detected", shown["finding_codes"])
        self.assertEqual(shown["report"]["item"]["sha256"], report["item"]["sha256"])

        r = self.daemon.cli("quarantine", "delete", item_id, server=self.daemon.admin)
        self.assertEqual(r.returncode, 0, r.stderr)
        rc, listing = self.daemon.quarantine("list")
        self.assertNotIn(item_id, [i["id"] for i in listing.get("items", [])])
        rc, shown = self.daemon.quarantine("show", item_id)  # the record stays, without its original
        self.assertEqual(rc, 0)
        self.assertEqual(shown["state"], "deleted")

    def test_eicar_is_quarantined(self):
        rc, report = self.daemon.sanitize(self.daemon.write("eicar.txt", EICAR))
        self.assertEqual(rc, 2)
        self.assertEqual(report["outcome"], "quarantined")
        self.assertIn("av.detected", codes(report))
        reason = [f["reason"] for f in report["item"]["findings"] if f["code"] == "av.detected"][0]
        self.assertIn("EICAR", reason.upper())

    def test_clam_zip_is_quarantined(self):
        rc, report = self.daemon.sanitize(os.path.join(TESTFILES, "clam.zip"))
        self.assertEqual(rc, 2)
        self.assertIn("av.detected", codes(report))

    def test_every_clamav_testfile_is_detected_by_the_sandboxed_scanner(self):
        # Archives, packers, OLE, PDF, mail: libclamav unpacks them inside
        # the scanner's sandbox (scratch tmpfs, seccomp) and still finds clam.exe.
        names = sorted(os.listdir(TESTFILES))
        self.assertGreater(len(names), 40)
        for name in names:
            rc, report = self.daemon.sanitize(os.path.join(TESTFILES, name))
            self.assertEqual(report["outcome"], "quarantined", name)
            self.assertIn("av.detected", codes(report), f"{name}: {report['item']['findings']}")
        self.assertNotIn("SIGSYS", self.daemon.log_text())

    def test_original_is_kept_in_the_vault_encrypted(self):
        rc, report = self.daemon.sanitize(self.daemon.write("e2.com", EICAR + b"\n"))
        self.assertEqual(rc, 2)
        out = os.path.join(self.daemon.dir, "e2.original")
        r = self.daemon.cli("vault", "download", report["item_id"], "--reason", "test", "-o", out,
                            server=self.daemon.admin)
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(out, "rb") as f:
            self.assertEqual(f.read(), EICAR + b"\n")
        # At rest it is sealed: no file of the data directory holds its bytes.
        data = os.path.join(self.daemon.dir, "data")
        for name in os.listdir(data):
            with open(os.path.join(data, name), "rb") as f:
                self.assertNotIn(EICAR[:24], f.read(), name)

    def test_delete_unknown_item_fails_clearly(self):
        r = self.daemon.cli("quarantine", "delete", "no-such-id", server=self.daemon.admin)
        self.assertEqual(r.returncode, 1)
        self.assertIn(b"no vault item no-such-id", r.stderr)


class BadInputTest(DaemonTestCase):
    config_extra = "[limits]\nmax_file_bytes = 100000\n"

    def upload(self, name: bytes, path, *extra):
        r = self.daemon.probe("upload", self.daemon.ingress, name.hex() or "", path, *extra)
        self.assertEqual(r.returncode, 0, r.stderr)
        return json.loads(r.stdout)

    def test_empty_file_is_rejected(self):
        rc, report = self.daemon.sanitize(self.daemon.write("empty.txt", b""))
        self.assertEqual(rc, 2)
        self.assertEqual(report["outcome"], "rejected")
        self.assertEqual(codes(report), ["input.empty"])
        self.assert_alive()

    def test_zero_byte_name(self):
        report = self.upload(b"", self.daemon.write("n0.txt", b"text\n"))
        self.assertEqual(report["outcome"], "delivered")
        self.assertEqual(report["item"]["derivatives"][0]["name"], "unnamed.txt")
        self.assert_alive()

    def test_name_with_path_separators_and_controls(self):
        report = self.upload(b"../../etc/\x07pass\x1bwd\xe2\x80\xae.txt", self.daemon.write("n1.txt", b"x\n"))
        self.assertEqual(report["outcome"], "delivered")
        self.assertIn("name.unsafe", codes(report))
        self.assertEqual(report["item"]["derivatives"][0]["name"], "passwd.txt")
        report = self.upload(b"C:\\Users\\a\\b.txt", self.daemon.write("n2.txt", b"x\n"))
        self.assertEqual(report["item"]["derivatives"][0]["name"], "b.txt")
        report = self.upload(b"\xff\xfe bad utf8.txt", self.daemon.write("n3.txt", b"x\n"))
        self.assertEqual(report["outcome"], "delivered")
        self.assert_alive()

    def test_file_over_the_limit_is_rejected(self):
        rc, report = self.daemon.sanitize(self.daemon.write("big.txt", b"a" * 200000))
        self.assertEqual(rc, 2)
        self.assertEqual(report["outcome"], "rejected")
        self.assertEqual(codes(report), ["limit.file_size"])
        self.assert_alive()

    def test_lying_size_header_is_rejected(self):
        path = self.daemon.write("lie.txt", b"0123456789")
        report = self.upload(b"lie.txt", path, "--announce", "5")
        self.assertEqual(report["outcome"], "rejected")
        self.assertEqual(codes(report), ["input.size_mismatch"])
        report = self.upload(b"lie.txt", path, "--announce", "50")
        self.assertEqual(codes(report), ["input.size_mismatch"])
        self.assert_alive()

    def test_second_header_is_rejected_and_recorded(self):
        report = self.upload(b"twice.txt", self.daemon.write("twice.txt", b"abc"), "--second-header")
        self.assertEqual(report["outcome"], "rejected")
        self.assertEqual(codes(report), ["input.malformed"])
        self.assertTrue(report["item_id"])
        self.assert_alive()

    def test_client_disconnecting_mid_stream(self):
        path = self.daemon.write("half.txt", b"z" * 50000)
        r = self.daemon.probe("upload", self.daemon.ingress, b"half.txt".hex(), path,
                              "--announce", "90000", "--disconnect-after", "50000")
        self.assertEqual(r.returncode, 0, r.stderr)
        deadline = time.time() + 10
        while "input.truncated" not in self.daemon.log_text() and time.time() < deadline:
            time.sleep(0.1)
        self.assertIn("input.truncated", self.daemon.log_text())
        self.assert_alive()

    def test_unreachable_server_is_an_error(self):
        r = subprocess.run([os.path.join(BIN, "mugai"), "--server", f"unix:{self.daemon.dir}/nothing.sock",
                            "--timeout", "3", "sanitize-file", self.daemon.write("u.txt", b"u")],
                           capture_output=True, timeout=60)
        self.assertEqual(r.returncode, 1)
        self.assertIn(b"mugai:", r.stderr)

    def test_usage_errors(self):
        r = self.daemon.cli("frobnicate")
        self.assertEqual(r.returncode, 1)
        self.assertIn(b"usage:", r.stderr)
        r = self.daemon.cli("sanitize-file", "/nonexistent/file")
        self.assertEqual(r.returncode, 1)


class WorkerFaultTest(DaemonTestCase):
    use_hostile_worker = True
    config_extra = "[limits]\nitem_seconds = 3\n"

    def hostile(self, command):
        return self.daemon.sanitize(self.daemon.write(f"{command}.txt", f"MUGAI-TEST:{command}\n".encode()))

    def test_worker_killed_mid_item(self):
        rc, report = self.hostile("die-mid-record")
        self.assertEqual(rc, 2)
        self.assertEqual(report["outcome"], "quarantined")
        self.assertEqual(codes(report), ["worker.crashed"])
        self.assert_alive()

    def test_hanging_worker_times_out(self):
        started = time.time()
        rc, report = self.hostile("hang")
        self.assertEqual(rc, 2)
        self.assertEqual(codes(report), ["worker.timeout"])
        self.assertLess(time.time() - started, 15)
        self.assert_alive()

    def test_garbage_records(self):
        rc, report = self.hostile("garbage")
        self.assertEqual(rc, 2)
        self.assertEqual(codes(report), ["worker.violation"])
        self.assert_alive()

    def test_invalid_utf8_text(self):
        rc, report = self.hostile("bad-utf8")
        self.assertEqual(rc, 2)
        self.assertEqual(codes(report), ["worker.violation"])
        self.assert_alive()

    def test_oversized_page_claim(self):
        rc, report = self.hostile("huge-page")
        self.assertEqual(rc, 2)
        self.assertEqual(codes(report), ["worker.violation"])
        self.assert_alive()

    def test_sigterm_finishes_in_flight_work(self):
        daemon = Daemon(f'[workers]\nexecutable = "{BIN}/mugai-hostile-worker"\n').start()
        try:
            path = daemon.write("slow.txt", b"MUGAI-TEST:slow\nfinishes after SIGTERM\n")
            cli = subprocess.Popen([os.path.join(BIN, "mugai"), "--server", daemon.ingress,
                                    "sanitize-file", path, "--json"], stdout=subprocess.PIPE)
            # In flight once a worker sleeps in the slow job (clock_nanosleep);
            # only the workers count (the scanner or the Office worker may
            # sleep for reasons of their own).
            deadline = time.time() + 30
            while not any(sleeping(pid) for pid in children(daemon.proc.pid) if is_hostile_worker(pid)):
                self.assertLess(time.time(), deadline, "the slow job never started")
                time.sleep(0.02)
            daemon.proc.send_signal(signal.SIGTERM)
            out, _ = cli.communicate(timeout=120)
            self.assertEqual(cli.returncode, 0)
            self.assertEqual(json.loads(out)["outcome"], "delivered")
            self.assertEqual(daemon.proc.wait(timeout=60), 0)
            self.assertIn("stopped", daemon.log_text())
        finally:
            daemon.cleanup()

    def test_many_failures_in_a_row_do_not_exhaust_the_pool(self):
        for _ in range(6):
            rc, report = self.hostile("die-mid-record")
            self.assertEqual(report["outcome"], "quarantined")
        self.assert_alive()


class SandboxTest(DaemonTestCase):
    """A hostile worker tries to break out; each attempt fails or is killed,
    the item gets its code, and the daemon serves the next item."""
    use_hostile_worker = True
    config_extra = "[limits]\nitem_seconds = 3\n"

    def hostile(self, command, *lines):
        body = "\n".join([f"MUGAI-TEST:{command}", *lines]) + "\n"
        return self.daemon.sanitize(self.daemon.write(f"{command}.txt", body.encode()))

    def protections(self):
        r = self.daemon.cli("status", "--json", server=self.daemon.admin)
        return json.loads(r.stdout).get("protections", [])

    def test_status_lists_the_protections_in_force(self):
        text = "\n".join(self.protections())
        # No RLIMIT_NPROC: converters may make threads (libvips), which count
        # against it; seccomp alone refuses them children (the fork-bomb test).
        for layer in ("seccomp", "no_new_privs", "namespaces", "empty read-only root",
                      "RLIMIT_FSIZE", "RLIMIT_NOFILE", "RLIMIT_CPU"):
            self.assertIn(layer, text)
        self.assertIn("worker sandbox: seccomp", self.daemon.log_text())
        r = self.daemon.cli("status", "--json", server=self.daemon.admin)
        scanner = "\n".join(json.loads(r.stdout).get("scanner_protections", []))
        for layer in ("seccomp", "no_new_privs", "namespaces", "empty read-only root", "scratch"):
            self.assertIn(layer, scanner)

    def test_reading_etc_passwd_fails(self):
        rc, report = self.hostile("open", "/etc/passwd")
        self.assertEqual(rc, 2, report)
        self.assertEqual(codes(report), ["parse.failed"])
        self.assertIn("No such file", report["item"]["findings"][0]["reason"])
        self.assert_alive()

    def test_reading_the_vault_fails(self):
        self.daemon.sanitize(self.daemon.write("secret.com", EICAR))
        database = os.path.join(self.daemon.dir, "data", "mugai.db")
        self.assertTrue(os.path.exists(database))
        rc, report = self.hostile("open", database)
        self.assertEqual(codes(report), ["parse.failed"])
        self.assert_alive()

    def test_connecting_to_loopback_is_killed(self):
        rc, report = self.hostile("connect")
        self.assertEqual(rc, 2)
        self.assertEqual(codes(report), ["worker.violation"])
        self.assertIn("seccomp", report["item"]["findings"][0]["reason"])
        self.assert_alive()

    def test_fork_bomb_is_killed(self):
        rc, report = self.hostile("fork-bomb")
        self.assertEqual(codes(report), ["worker.violation"])
        self.assert_alive()

    def test_unbounded_allocation_hits_the_memory_limit(self):
        if not any(p.startswith("RLIMIT_AS") for p in self.protections()):
            self.skipTest("no memory limit in this build (AddressSanitizer)")
        rc, report = self.hostile("allocate")
        self.assertEqual(rc, 2)
        self.assertEqual(codes(report), ["limit.memory"])
        self.assert_alive()

    def test_busy_loop_is_stopped_by_the_deadline(self):
        started = time.time()
        rc, report = self.hostile("spin")
        self.assertEqual(codes(report), ["worker.timeout"])
        self.assertLess(time.time() - started, 15)
        self.assert_alive()

    def test_out_of_band_data_cannot_stall_the_daemon(self):
        started = time.time()
        rc, report = self.hostile("out-of-band")
        self.assertEqual(codes(report), ["worker.violation"])
        self.assertLess(time.time() - started, 15)
        self.assert_alive()

    def test_signalling_or_limiting_other_processes_is_killed(self):
        for command in ("signal-others", "limit-others"):
            rc, report = self.hostile(command)
            self.assertEqual(codes(report), ["worker.violation"], command)
        self.assert_alive()

    def test_a_log_line_to_a_file_does_not_kill_the_worker(self):
        rc, report = self.hostile("log")
        self.assertEqual(report["outcome"], "delivered", report)

    def test_oversized_record_is_a_violation(self):
        rc, report = self.hostile("oversized-record")
        self.assertEqual(codes(report), ["worker.violation"])
        self.assert_alive()


class SignatureTest(unittest.TestCase):
    def test_reload_on_sighup_and_status_warns_about_test_signatures(self):
        sigs = tempfile.mkdtemp(prefix="mugai-sigs-")
        os.chmod(sigs, 0o755)  # the sandboxed scanner reads it as nobody
        for name in os.listdir(os.path.join(SAMPLES, "signatures")):
            if name.endswith((".ndb", ".hdb")):
                shutil.copy(os.path.join(SAMPLES, "signatures", name), sigs)
        daemon = Daemon("[scanner]\nsignature_check_seconds = 3600\n", signatures=sigs).start()
        try:
            self.assertIn("TEST SIGNATURES ONLY", daemon.log_text())
            r = daemon.cli("status", "--json", server=daemon.admin)
            self.assertEqual(r.returncode, 0, r.stderr)
            status = json.loads(r.stdout)
            self.assertTrue(status["signatures"]["test_signatures_only"])
            self.assertTrue(any("TEST SIGNATURES" in w for w in status["warnings"]))
            before = int(status["signatures"]["signature_count"])

            marker = b"MUGAI-RELOAD-MARKER-7f3a9c"
            path = daemon.write("marker.txt", b"hello " + marker + b"\n")
            rc, report = daemon.sanitize(path)
            self.assertEqual(report["outcome"], "delivered")

            with open(os.path.join(sigs, "reload-test.ndb"), "w") as f:
                f.write(f"Mugai.Test.Reload:0:*:{marker.hex()}\n")
            daemon.proc.send_signal(signal.SIGHUP)
            deadline = time.time() + 30
            while time.time() < deadline:
                status = json.loads(daemon.cli("status", "--json", server=daemon.admin).stdout)
                if int(status["signatures"]["signature_count"]) > before:
                    break
                time.sleep(0.2)
            rc, report = daemon.sanitize(path)
            self.assertEqual(report["outcome"], "quarantined", daemon.log_text())
            self.assertIn("av.detected", codes(report))
        finally:
            self.assertEqual(daemon.stop(), 0)
            daemon.cleanup()
            shutil.rmtree(sigs, ignore_errors=True)


class ListenerTest(DaemonTestCase):
    def test_health_and_reflection_on_every_listener(self):
        for address in (self.daemon.ingress, self.daemon.egress, self.daemon.admin):
            r = self.daemon.probe("health", address)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(r.stdout.strip(), b"SERVING")
            r = self.daemon.probe("reflection", address)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn(b"grpc.health.v1.Health", r.stdout)
            self.assertIn(b"mugai.v1.Status", r.stdout)

    def test_ingress_and_admin_are_separate(self):
        services = self.daemon.probe("reflection", self.daemon.ingress).stdout
        self.assertIn(b"mugai.v1.Sanitizer", services)
        self.assertNotIn(b"mugai.v1.Admin", services)
        services = self.daemon.probe("reflection", self.daemon.admin).stdout
        self.assertIn(b"mugai.v1.Admin", services)
        self.assertNotIn(b"mugai.v1.Sanitizer", services)
        r = self.daemon.cli("quarantine", "list")  # ingress address: no Admin there
        self.assertEqual(r.returncode, 1)

    def start_refused(self, config, early=True, **listeners):
        """Runs a mugaid that must refuse to start (`early`: before it
        starts anything); returns its output. `listeners`:
        --ingress/--egress/--admin flags (the rest: unix sockets, or what
        `config` says when given as None)."""
        d = Daemon(config)
        self.addCleanup(d.cleanup)
        argv = [os.path.join(BIN, "mugaid"), "--config", d.config, "--data-dir", os.path.join(d.dir, "data"),
                "--signatures", d.signatures]
        for name in ("ingress", "egress", "admin"):
            address = listeners.get(name, getattr(d, name))
            if address is not None:
                argv += [f"--{name}", address]
        r = subprocess.run(argv, capture_output=True, timeout=60)
        output = r.stdout.decode() + r.stderr.decode()
        self.assertNotEqual(r.returncode, 0, output)
        self.assertNotRegex(output, r" ready$")
        if early:
            self.assertNotIn("workers started", output, "the check must come before anything starts")
        return output

    def test_plaintext_off_loopback_is_refused_at_startup(self):
        port = free_port()
        fix = "cert_file and key_file, or listen on a unix socket or loopback"
        for name, address, config in (
                ("ingress", f"0.0.0.0:{port}", ""),
                ("egress", f"[::]:{port}", ""),
                ("ingress", f"ipv4:0.0.0.0:{port}", ""),
                ("egress", f"127.example.org:{port}", ""),  # a name, not 127/8
                ("admin", f"0.0.0.0:{port}", f'[listeners]\nadmin = "0.0.0.0:{port}"\n')):
            with self.subTest(name=name, address=address):
                flags = {name: None} if config else {name: address}
                output = self.start_refused(config, **flags)
                self.assertIn(f"{name} listener {address} would be plaintext TCP off loopback", output)
                self.assertIn(f"give it [listeners.{name}_tls] {fix}", output)
        # A client CA without a certificate is no TLS: refused, not plaintext.
        output = self.start_refused('[listeners.admin_tls]\nclient_ca_file = "/etc/mugai/ca.crt"\n')
        self.assertIn("[listeners.admin_tls] needs both cert_file and key_file", output)

    def test_health_listener_is_refused_off_loopback(self):
        for address in (f"0.0.0.0:{free_port()}", f"[::]:{free_port()}", f"192.0.2.1:{free_port()}"):
            with self.subTest(address=address):
                output = self.start_refused(f'[listeners]\nhealth = "{address}"\n')
                self.assertIn(f"health listener {address} is off loopback", output)

    def test_metrics_endpoint_is_loopback_tcp_only(self):
        for address in (f"0.0.0.0:{free_port()}", f"192.0.2.1:{free_port()}", "unix:/tmp/metrics.sock"):
            with self.subTest(address=address):
                output = self.start_refused(f'[listeners]\nmetrics = "{address}"\n')
                self.assertIn(f"metrics listener {address} is not loopback TCP", output)
        # A port already taken is a clear error, not a daemon without metrics.
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            address = f"127.0.0.1:{taken.getsockname()[1]}"
            output = self.start_refused(f'[listeners]\nmetrics = "{address}"\n', early=False)
            self.assertIn(f"cannot serve metrics on {address}", output)

    def test_plaintext_on_loopback_warns_and_the_health_listener_answers_status(self):
        health = f"127.0.0.1:{free_port()}"
        d = Daemon(f'[listeners]\nhealth = "{health}"\n')
        self.addCleanup(d.cleanup)
        d.ingress = f"127.0.0.1:{free_port()}"
        d.egress = f"[::1]:{free_port()}"
        d.admin = f"localhost:{free_port()}"
        d.start()
        log = d.log_text()
        for name in ("ingress", "egress", "admin"):
            self.assertRegex(log, rf"WARN {name} listening on {re.escape(getattr(d, name))} in plaintext")
        self.assertRegex(log, rf"INFO health listening on {re.escape(health)} \(plaintext, health checks only\)")
        self.assertEqual(len(re.findall(r"listening on", log)), 4, log)
        rc, report = d.sanitize(d.write("loopback.txt", b"over loopback\n"))
        self.assertEqual((rc, report["outcome"]), (0, "delivered"))

        # What a Kubernetes exec probe runs: no token, no certificate.
        def status():
            return subprocess.run([os.path.join(BIN, "mugai"), "--server", health, "--timeout", "5", "status"],
                                  capture_output=True, timeout=60, env={**os.environ, "MUGAI_ADMIN_TOKEN_FILE": ""})
        r = status()
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(b"signatures:", r.stdout)
        self.assertEqual(d.probe("health", health).stdout.strip(), b"SERVING")
        services = d.probe("reflection", health).stdout
        self.assertIn(b"grpc.health.v1.Health", services)
        self.assertIn(b"mugai.v1.Status", services)
        for other in (b"mugai.v1.Sanitizer", b"mugai.v1.Exchange", b"mugai.v1.Inbox", b"mugai.v1.Admin"):
            self.assertNotIn(other, services)
        self.assertEqual(d.stop(), 0, d.log_text())
        r = status()
        self.assertEqual(r.returncode, 1, "mugai status must fail when mugaid does not answer")
        self.assertIn(b"cannot reach mugaid", r.stderr)

if __name__ == "__main__":
    unittest.main()
