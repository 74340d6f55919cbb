"""Archives (issue 5) through a real mugaid: the clamav-testfiles containers,
bombs and hostile archives built here (archive_samples.py), and every
archive of the corpus against an explicit table of outcomes and, for the
ones delivered, the names inside the zip that comes back."""

import json
import os
import tempfile
import time
import unittest
import zipfile

import archive_samples
from test_daemon import CORPUS, TESTFILES, DaemonTestCase, children, codes


def reasons(report, code):
    return [f["reason"] for f in report["item"]["findings"] if f["code"] == code]


def peak_rss_reset(pid):
    """Resets the kernel's peak-RSS mark of `pid` (VmHWM) to its RSS now."""
    with open(f"/proc/{pid}/clear_refs", "w") as f:
        f.write("5")


def status_kib(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError(f"no {field} for {pid}")


class ArchiveCase(DaemonTestCase):
    def sanitize_bytes(self, name, data):
        return self.daemon.sanitize(self.daemon.write(name, data))

    def delivered_zip(self, path):
        """Sanitizes `path`; returns (report, {name: bytes}, ZipFile infos)."""
        out = tempfile.mkdtemp(dir=self.daemon.dir)
        rc, report = self.daemon.sanitize(path, out)
        self.assertIn(report["outcome"], ("delivered", "delivered_with_removals"),
                      f"{path}: {report['item']['findings']}")
        (derivative,) = report["item"]["derivatives"]
        self.assertEqual(derivative["media_type"], "application/zip")
        with zipfile.ZipFile(os.path.join(out, derivative["name"])) as z:
            infos = z.infolist()
            return report, {i.filename: z.read(i) for i in infos}, infos


class ClamavTestfilesTest(ArchiveCase):
    """libclamav's own test containers, each with clam.exe inside: held,
    with av.detected naming the member the detection was in."""

    CONTAINERS = ["clam.zip", "clam.7z", "clam.arj", "clam.cab", "clam.tar.gz", "clam.bz2.zip",
                  "clam.impl.zip", "clam.bin-be.cpio", "clam.bin-le.cpio", "clam.newc.cpio",
                  "clam.odc.cpio", "clam_cache_emax.tgz"]

    def test_each_container_is_quarantined_naming_the_member(self):
        for name in self.CONTAINERS:
            with self.subTest(name):
                rc, report = self.daemon.sanitize(os.path.join(TESTFILES, name))
                self.assertEqual(rc, 2)
                self.assertEqual(report["outcome"], "quarantined")
                found = reasons(report, "av.detected")
                self.assertTrue(found, f"{name}: {report['item']['findings']}")
                # libclamav's name of the member (clam.impl.zip has CLAM.EXE).
                self.assertIn("clam.exe", found[0].lower(), name)
                self.assertEqual(report["item"]["derivatives"], [])


class BombTest(ArchiveCase):
    """Bombs stop at their limit, quickly, and the daemon's memory does not
    grow with what they would expand to."""

    def assert_held_bounded(self, name, path, code):
        pid = self.daemon.proc.pid
        processes = [pid] + children(pid)  # the workers and the scanner
        for p in processes:
            peak_rss_reset(p)
        before = status_kib(pid, "VmRSS")
        started = time.monotonic()
        rc, report = self.daemon.sanitize(path)
        seconds = time.monotonic() - started
        growth_mib = (status_kib(pid, "VmHWM") - before) / 1024
        helper_peak_mib = max(status_kib(p, "VmHWM") for p in processes[1:] if os.path.exists(f"/proc/{p}")) / 1024
        print(f"{name}: {os.path.getsize(path)} bytes, {report['item']['findings']}, "
              f"{seconds:.2f} s, daemon peak RSS +{growth_mib:.1f} MiB, "
              f"largest worker or scanner peak RSS {helper_peak_mib:.0f} MiB")
        self.assertEqual(report["outcome"], "quarantined")
        self.assertIn(code, codes(report), f"{name}: {report['item']['findings']}")
        # The daemon holds the upload itself a few times over (the gRPC
        # message, the scan request, the job), never what it expands to.
        self.assertLess(growth_mib, 64 + 8 * os.path.getsize(path) / 2**20, name)
        self.assert_alive()

    def test_nested_40_deep(self):
        self.assert_held_bounded("nested", self.daemon.write("nested.zip", archive_samples.nested_zip(40)),
                                 "limit.depth")

    def test_nested_within_our_depth_but_deeper_than_the_limit(self):
        # Nine levels: deeper than max_depth (8) but not than ClamAV's limit.
        self.assert_held_bounded("nested9", self.daemon.write("nested9.zip", archive_samples.nested_zip(9)),
                                 "limit.depth")

    def test_100000_members(self):
        self.assert_held_bounded("many", self.daemon.write("many.zip", archive_samples.many_members_zip(100_000)),
                                 "limit.members")

    def test_2000_members_over_our_limit(self):
        self.assert_held_bounded("2000", self.daemon.write("2000.zip", archive_samples.many_members_zip(2000)),
                                 "limit.members")

    def test_one_gibibyte_of_zeros(self):
        path = os.path.join(self.daemon.dir, "zeros.zip")
        archive_samples.zeros_zip(path, 1024)
        self.assert_held_bounded("zeros", path, "limit.ratio")

    def test_gzip_without_a_declared_size(self):
        # 90 MiB from 90 KB: under ClamAV's file size limit (100 MiB), so it
        # is the worker's count of the bytes that stops it, at 16 MiB.
        path = os.path.join(self.daemon.dir, "letters.txt.gz")
        archive_samples.repeated_gz(path, 90)
        self.assert_held_bounded("letters.gz", path, "limit.ratio")

    def test_a_compressed_file_of_zeros_is_held_not_delivered_empty(self):
        path = os.path.join(self.daemon.dir, "zeros.bin.gz")
        archive_samples.zeros_gz(path, 1)
        rc, report = self.daemon.sanitize(path)
        self.assertEqual(report["outcome"], "quarantined")
        self.assertIn("parse.failed", codes(report))

    def test_overlapping_entries(self):
        self.assert_held_bounded("overlap", self.daemon.write("overlap.zip", archive_samples.overlapping_zip(500, 2_000_000)),
                                 "archive.overlap")


class HostileArchiveTest(ArchiveCase):
    def test_traversal_and_links_are_made_safe_or_refused(self):
        report, members, infos = self.delivered_zip(
            self.daemon.write("traversal.tar", archive_samples.traversal_tar()))
        self.assertEqual(report["outcome"], "delivered_with_removals")
        self.assertEqual(sorted(members), ["MUGAI_NOTICE.txt", "docs/readme.txt", "etc/passwd.txt", "evil.txt"])
        self.assertEqual(members["evil.txt"], b"up\n")
        children = {c["claimed_name"]: c for c in report["item"]["children"]}
        self.assertIn("name.unsafe", [f["code"] for f in children["../evil.txt"]["findings"]])
        self.assertIn("name.unsafe", [f["code"] for f in children["/etc/passwd.txt"]["findings"]])
        self.assertEqual([f["code"] for f in children["docs/link"]["findings"]], ["archive.link"])
        self.assertEqual(children["docs/link"]["outcome"], "quarantined")
        notice = members["MUGAI_NOTICE.txt"].decode("utf-8")
        self.assertIn("docs/link", notice)
        self.assertIn("取り除きました", notice)
        for info in infos:
            self.assertFalse(info.external_attr >> 16 & 0o170000 == 0o120000, info.filename)

    def test_encrypted_zips_are_quarantined_with_advice(self):
        for encryption in ("zipcrypt", "aes256"):
            with self.subTest(encryption):
                data = archive_samples.encrypted_zip(self.daemon.dir, encryption)
                rc, report = self.sanitize_bytes(f"{encryption}.zip", data)
                self.assertEqual(report["outcome"], "quarantined")
                (reason,) = reasons(report, "archive.encrypted")
                self.assertIn("パスワード", reason)
                self.assertIn("without a password", reason)

    def test_cp932_names_come_out_as_japanese_with_the_utf8_flag(self):
        names = ["報告書.txt", "資料/議事録（第１回）.txt", "ﾃｽﾄ.txt"]
        report, members, infos = self.delivered_zip(
            self.daemon.write("windows.zip", archive_samples.cp932_zip(names)))
        self.assertEqual(report["outcome"], "delivered")
        self.assertEqual(sorted(members), sorted(names))
        for info in infos:
            self.assertTrue(info.flag_bits & 0x800, info.filename)
        self.assertEqual(members["資料/議事録（第１回）.txt"].decode("utf-8"), "資料/議事録（第１回）.txt\n")

    def test_compressed_tars_and_single_compressed_files(self):
        for kind in ("tar.gz", "tar.bz2", "tar.xz", "gz", "bz2", "xz"):
            with self.subTest(kind):
                data = archive_samples.compressed(kind, "お知らせ\n".encode("utf-8"))
                name = "memo.tar." + kind[4:] if kind.startswith("tar.") else "memo.txt." + kind
                report, members, _ = self.delivered_zip(self.daemon.write(name, data))
                self.assertEqual(report["outcome"], "delivered")
                self.assertEqual(report["item"]["derivatives"][0]["name"], "memo.zip" if kind.startswith("tar.") else "memo.txt.zip")
                self.assertEqual(members, {"memo.txt": "お知らせ\n".encode("utf-8")})

    def test_blocked_member_is_removed_and_listed(self):
        report, members, _ = self.delivered_zip(self.daemon.write("mixed.zip", archive_samples.mixed_zip()))
        self.assertEqual(report["outcome"], "delivered_with_removals")
        self.assertEqual(sorted(members), ["MUGAI_NOTICE.txt", "memo.txt"])
        self.assertIn("setup.sh", members["MUGAI_NOTICE.txt"].decode("utf-8"))
        # The original stays in the vault when something was removed.
        r = self.daemon.cli("vault", "show", report["item_id"], "--json", server=self.daemon.admin)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout)["state"], "held")


class BlockedMembersQuarantineTest(ArchiveCase):
    config_extra = '[archives]\nblocked_members = "quarantine"\n'

    def test_a_blocked_member_holds_the_whole_archive(self):
        rc, report = self.sanitize_bytes("mixed.zip", archive_samples.mixed_zip())
        self.assertEqual(report["outcome"], "quarantined")
        self.assertTrue(any(r.startswith("setup.sh: ") for r in reasons(report, "type.blocked")),
                        report["item"]["findings"])


class ArchiveWorkerBudgetTest(ArchiveCase):
    """The daemon checks what an archive worker sends against what was left
    of the item's budget: a worker that ignores it gets the item held."""
    use_hostile_worker = True
    config_extra = "[archives]\nmax_members = 4\n"

    def test_a_worker_over_the_budget_holds_the_item(self):
        # The outer zip uses one member of four; the inner one's worker sends four.
        rc, report = self.sanitize_bytes("outer.zip", archive_samples.overspending_zip())
        self.assertEqual(report["outcome"], "quarantined")
        self.assertIn("limit.members", codes(report), report["item"]["findings"])
        self.assertTrue(any("the worker sent 4 members; 3 were left" in r for r in reasons(report, "limit.members")),
                        report["item"]["findings"])


class CorpusArchivesTest(ArchiveCase):
    """Every archive of the corpus: (outcome, finding or member names)."""

    TABLE = {
        "archive/7z/test_read_format_7zip_lzma2.7z": ("delivered", ['file1.txt']),
        "archive/cab/test_read_format_cab_1.cab": ("delivered", ['dir1/file1.txt', 'dir2/file2.txt', 'empty']),
        "archive/cab/test_read_format_cab_filename_cp932.cab": ("delivered", ['表だよ/一覧表.txt', '表だよ/漢字.txt']),
        "archive/encrypted/deco_test-encrypted.zip": ("quarantined", "archive.encrypted"),
        "archive/encrypted/test_read_format_7zip_encryption.7z": ("quarantined", "archive.encrypted"),
        "archive/encrypted/test_read_format_7zip_encryption_header.7z": ("quarantined", "archive.encrypted"),
        "archive/encrypted/test_read_format_rar4_encrypted.rar": ("quarantined", "archive.encrypted"),
        "archive/encrypted/test_read_format_rar5_encrypted.rar": ("quarantined", "archive.encrypted"),
        "archive/encrypted/test_read_format_zip_encryption_header.zip": ("quarantined", "archive.encrypted"),
        "archive/encrypted/test_read_format_zip_traditional_encryption_data.zip": ("quarantined", "archive.encrypted"),
        "archive/encrypted/test_read_format_zip_winzip_aes128.zip": ("quarantined", "archive.encrypted"),
        "archive/encrypted/test_read_format_zip_winzip_aes256.zip": ("quarantined", "archive.encrypted"),
        "archive/encrypted/zip-aes-256.zip": ("quarantined", "archive.encrypted"),
        "archive/encrypted/zipWithEncryption.zip": ("quarantined", "archive.encrypted"),
        "archive/iso/test_read_format_iso_joliet.iso.Z": ("delivered_with_removals", ['MUGAI_NOTICE.txt', 'hardlink.txt']),
        "archive/lzh/test_read_format_lha_filename_cp932.lzh": ("delivered", ['漢字.txt', '表.txt']),
        "archive/lzh/test_read_format_lha_lh6.lzh": ("delivered_with_removals", ['MUGAI_NOTICE.txt', 'file1.txt', 'file2.txt']),
        "archive/malformed/circl_archivebomb.zip": ("delivered", ['2.zip']),
        "archive/malformed/test_read_filter_gzip_recursive.gz": ("quarantined", "limit.file_size"),
        "archive/malformed/test_read_format_7zip_malformed.7z": ("quarantined", "parse.failed"),
        "archive/malformed/test_read_format_zip_malformed1.zip": ("quarantined", "parse.failed"),
        "archive/malformed/zipWithCDirHeadersInPayload.zip": ("quarantined", "type.blocked"),
        "archive/malformed/zipWithTooBigCDirSizeField.zip": ("delivered", ['file.txt']),
        "archive/path-traversal/absolute1.zip": ("delivered", ['tmp/moo.txt']),
        "archive/path-traversal/absolutepath.zip": ("delivered", ['tmp/file.txt']),
        "archive/path-traversal/dirsymlink.zip": ("delivered_with_removals", ['MUGAI_NOTICE.txt', 'tmp/moo.txt']),
        "archive/path-traversal/out_evil.zip": ("delivered", ['out_evil/breakout.txt']),
        "archive/path-traversal/relative1.zip": ("delivered", ['tmp/moo.txt']),
        "archive/path-traversal/symlink.zip": ("delivered_with_removals", ['MUGAI_NOTICE.txt', 'moo.txt']),
        "archive/path-traversal/tilde.zip": ("delivered_with_removals", ['MUGAI_NOTICE.txt', '~tilde~.txt']),
        "archive/rar/circl_rar_archive.rar": ("delivered", ['rartest/test.txt']),
        "archive/rar/test_read_format_rar.rar": ("delivered_with_removals", ['MUGAI_NOTICE.txt', 'test.txt', 'testdir/test.txt']),
        "archive/rar/test_read_format_rar5_compressed.rar": ("quarantined", "type.blocked"),
        "archive/rar/test_read_format_rar5_zip_in_rar.rar": ("delivered", ['THIS_IS_INSIDE_THE_ZIP.txt']),
        "archive/rar/test_read_format_rar_unicode.rar": ("delivered_with_removals", ['MUGAI_NOTICE.txt', 'abcdefghijklmnopqrsテスト.txt', '表だよ/新しいフォルダ/新規テキスト ドキュメント.txt', '表だよ/漢字長いファイル名long-filename-in-漢字.txt']),
        "archive/tar/test_compat_bzip2_1.tbz": ("delivered", ['d1/f1.txt', 'd1/f2.txt', 'd1/f3.txt', 'f1.txt', 'f2.txt', 'f3.txt']),
        "archive/tar/test_compat_gzip_1.tgz": ("delivered", ['d1/f1.txt', 'd1/f2.txt', 'd1/f3.txt', 'f1.txt', 'f2.txt', 'f3.txt']),
        "archive/tar/test_compat_zstd_1.tar.zst": ("delivered", ['d1/f1.txt', 'd1/f2.txt', 'd1/f3.txt', 'f1.txt', 'f2.txt', 'f3.txt']),
        "archive/tar/test_read_format_gtar_filename_eucjp.tar.Z": ("delivered", ['漢字.txt', '表.txt']),
        "archive/tar/test_read_format_ustar_filename_eucjp.tar.Z": ("delivered", ['漢字.txt', '表.txt']),
        "archive/zip/deco_test.zip": ("delivered", ['test.txt']),
        "archive/zip/gpbit3stored.zip": ("delivered_with_removals", ['MUGAI_NOTICE.txt', 'file1.txt']),
        "archive/zip/test_read_format_zip_comment_stored_1.zip": ("delivered_with_removals", ['MUGAI_NOTICE.txt', 'file0']),
        "archive/zip/test_read_format_zip_filename_cp932.zip": ("delivered", ['表だよ/一覧表.txt', '表だよ/漢字.txt']),
        "archive/zip/test_read_format_zip_filename_utf8_jp.zip": ("delivered", ['表だよ/一覧表.txt', '表だよ/漢字.txt']),
        "archive/zip/test_read_format_zip_nested.zip": ("delivered", ['file.txt', 'small.zip']),
        "archive/zip/test_read_format_zip_zip64a.zip": ("delivered", ['-.txt']),
    }

    def test_corpus_table(self):
        root = os.path.join(CORPUS, "archive")
        found = sorted(os.path.relpath(os.path.join(d, f), CORPUS)
                       for d, _, files in os.walk(root) for f in files)
        self.assertEqual(found, sorted(self.TABLE), "the table lists every corpus archive")
        for path in found:
            outcome, expected = self.TABLE[path]
            with self.subTest(path):
                if outcome == "quarantined":
                    rc, report = self.daemon.sanitize(os.path.join(CORPUS, path))
                    self.assertEqual(report["outcome"], "quarantined")
                    self.assertIn(expected, codes(report), report["item"]["findings"])
                else:
                    report, members, _ = self.delivered_zip(os.path.join(CORPUS, path))
                    self.assertEqual(report["outcome"], outcome)
                    self.assertEqual(sorted(members), sorted(expected))


if __name__ == "__main__":
    unittest.main()
