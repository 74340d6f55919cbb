#include <archive.h>
#include <archive_entry.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <algorithm>
#include <chrono>
#include <clocale>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "sanitizers/archive/archive_converter.h"
#include "sanitizers/archive/archive_handles.h"
#include "sanitizers/core/findings.h"
#include "sanitizers/worker/worker_pool.h"
#include "tests/unit/test_support.h"

namespace mugai {
namespace {

using v1::worker::ArchiveOptions;
using v1::worker::Record;

// As WorkerMain does before it confines itself: libarchive converts the
// names it knows the charset of to the locale's.
const bool kUtf8Locale = std::setlocale(LC_CTYPE, "C.UTF-8") != nullptr;

struct Unpacked {
  std::vector<std::string> children;  // names, in order
  std::vector<std::string> findings;  // "code subject" (or just "code")
  std::vector<std::string> contents;
};

Unpacked Summarize(const std::vector<Record>& records) {
  Unpacked u;
  for (const Record& r : records) {
    if (r.has_child()) {
      u.children.push_back(r.child().name());
      u.contents.push_back(r.child().content());
    }
    if (r.has_finding()) {
      const std::string& subject = r.finding().subject();
      u.findings.push_back(r.finding().code() + (subject.empty() ? "" : " " + subject));
    }
  }
  return u;
}

Unpacked Unpack(std::string_view name, std::string_view content, ArchiveOptions options = {},
                std::chrono::milliseconds time_limit = std::chrono::milliseconds(0)) {
  test::Recorder recorder;
  ConvertInput input{name, content, 1 << 20};
  input.archive = options;
  input.time_limit = time_limit;
  ArchiveConverter().Convert(input, recorder);
  return Summarize(recorder.records);
}

using Names = std::vector<std::string>;

struct CorpusCase {
  const char* path;  // under corpus archive/
  Names children;
  Names findings;
};

class Corpus : public ::testing::TestWithParam<CorpusCase> {};

TEST_P(Corpus, UnpacksWithTheRightNames) {
  ASSERT_TRUE(kUtf8Locale);
  const CorpusCase& c = GetParam();
  const std::string path = std::string("archive/") + c.path;
  Unpacked u = Unpack(path.substr(path.rfind('/') + 1), test::ReadCorpusFile(path));
  EXPECT_EQ(u.children, c.children);
  EXPECT_EQ(u.findings, c.findings);
}

// The Japanese names are those libarchive's own tests expect (and what the
// stored bytes decode to with iconv).
INSTANTIATE_TEST_SUITE_P(
    Archives, Corpus,
    ::testing::Values(
        CorpusCase{"zip/deco_test.zip", {"test.txt"}, {}},
        CorpusCase{"zip/gpbit3stored.zip", {"file1.txt", "file2.txt"}, {}},
        CorpusCase{"zip/test_read_format_zip_comment_stored_1.zip", {"file0", "build.sh"}, {}},
        // CP932 without the UTF-8 flag, and the same names flagged as UTF-8.
        CorpusCase{"zip/test_read_format_zip_filename_cp932.zip", {"表だよ/一覧表.txt", "表だよ/漢字.txt"}, {}},
        CorpusCase{"zip/test_read_format_zip_filename_utf8_jp.zip", {"表だよ/一覧表.txt", "表だよ/漢字.txt"}, {}},
        CorpusCase{"zip/test_read_format_zip_nested.zip", {"small.zip", "file.txt"}, {}},
        CorpusCase{"zip/test_read_format_zip_zip64a.zip", {"-"}, {}},
        CorpusCase{"7z/test_read_format_7zip_lzma2.7z", {"file1"}, {}},
        CorpusCase{"rar/circl_rar_archive.rar", {"rartest/test.txt"}, {}},
        CorpusCase{"rar/test_read_format_rar.rar", {"test.txt", "testdir/test.txt"}, {"archive.link testlink"}},
        CorpusCase{"rar/test_read_format_rar5_compressed.rar", {"test.bin"}, {}},
        CorpusCase{"rar/test_read_format_rar5_zip_in_rar.rar", {"THIS_IS_INSIDE_THE_ZIP.txt"}, {}},
        CorpusCase{"rar/test_read_format_rar_unicode.rar",
                   {"表だよ/新しいフォルダ/新規テキスト ドキュメント.txt", "表だよ/漢字長いファイル名long-filename-in-漢字.txt",
                    "abcdefghijklmnopqrsテスト.txt"},
                   {"archive.link 表だよ/ファイル"}},
        CorpusCase{"tar/test_compat_gzip_1.tgz", {"f1", "f2", "f3", "d1/f1", "d1/f2", "d1/f3"}, {}},
        CorpusCase{"tar/test_compat_bzip2_1.tbz", {"f1", "f2", "f3", "d1/f1", "d1/f2", "d1/f3"}, {}},
        CorpusCase{"tar/test_compat_zstd_1.tar.zst", {"f1", "f2", "f3", "d1/f1", "d1/f2", "d1/f3"}, {}},
        // 表 in EUC-JP (C9 BD) is also valid UTF-8 ("ɽ"): read in the charset
        // the archive's other name showed.
        CorpusCase{"tar/test_read_format_gtar_filename_eucjp.tar.Z", {"漢字.txt", "表.txt"}, {}},
        CorpusCase{"tar/test_read_format_ustar_filename_eucjp.tar.Z", {"漢字.txt", "表.txt"}, {}},
        CorpusCase{"cab/test_read_format_cab_1.cab", {"empty", "dir1/file1", "dir2/file2"}, {}},
        CorpusCase{"cab/test_read_format_cab_filename_cp932.cab", {"表だよ/漢字.txt", "表だよ/一覧表.txt"}, {}},
        CorpusCase{"lzh/test_read_format_lha_filename_cp932.lzh", {"漢字.txt", "表.txt"}, {}},
        CorpusCase{"lzh/test_read_format_lha_lh6.lzh",
                   {"file1", "file2"},
                   {"archive.link dir2/symlink1", "archive.link dir2/symlink2"}},
        // libarchive reports the second name of one extent as a hard link.
        CorpusCase{"iso/test_read_format_iso_joliet.iso.Z",
                   {"hardlink"},
                   {"archive.link long-joliet-file-name.textfile", "archive.link symlink"}},
        // Links are refused; names go out as stored, for the daemon to judge.
        CorpusCase{"path-traversal/symlink.zip", {"moo"}, {"archive.link moo"}},
        CorpusCase{"path-traversal/dirsymlink.zip", {"tmp/moo"}, {"archive.link tmp"}},
        CorpusCase{"path-traversal/out_evil.zip", {"../out_evil/breakout.txt"}, {}},
        CorpusCase{"path-traversal/absolute1.zip", {"/tmp/moo"}, {}},
        CorpusCase{"path-traversal/absolutepath.zip", {"/tmp/file.txt"}, {}},
        CorpusCase{"path-traversal/relative1.zip", {"tmp/../../moo"}, {}},
        CorpusCase{"path-traversal/tilde.zip", {"~tilde~", "__MACOSX/._~tilde~"}, {}},
        // Malformed ones that libarchive reads anyway: the central directory
        // is what counts, whatever the payload holds.
        CorpusCase{"malformed/circl_archivebomb.zip", {"2.zip"}, {}},
        CorpusCase{"malformed/zipWithTooBigCDirSizeField.zip", {"file.txt"}, {}},
        CorpusCase{"malformed/zipWithCDirHeadersInPayload.zip", {"testfile"}, {}}));

TEST(Archive, SymlinkFindingNamesTheTarget) {
  test::Recorder r;
  const std::string zip = test::ReadCorpusFile("archive/path-traversal/symlink.zip");
  ArchiveConverter().Convert({"symlink.zip", zip, 1 << 20}, r);
  ASSERT_FALSE(r.records.empty());
  ASSERT_TRUE(r.records[0].has_finding());
  EXPECT_EQ(r.records[0].finding().code(), finding::kArchiveLink);
  EXPECT_EQ(r.records[0].finding().subject(), "moo");
  EXPECT_NE(r.records[0].finding().reason().find("/tmp/moo"), std::string::npos) << r.records[0].finding().reason();
}

class Encrypted : public ::testing::TestWithParam<const char*> {};

// One finding, and the job stops there. Plain members before the encrypted
// one (rar4/rar5: a.txt is plain, b.txt encrypted) have been sent; the
// daemon holds the whole item on the finding.
TEST_P(Encrypted, IsArchiveEncryptedAndStops) {
  Unpacked u = Unpack(GetParam(), test::ReadCorpusFile(std::string("archive/encrypted/") + GetParam()));
  const bool plain_first = std::string_view(GetParam()).starts_with("test_read_format_rar");
  EXPECT_EQ(u.children, plain_first ? Names{"a.txt"} : Names{});
  ASSERT_EQ(u.findings.size(), 1u);
  EXPECT_TRUE(u.findings[0].starts_with(finding::kArchiveEncrypted)) << u.findings[0];
}

INSTANTIATE_TEST_SUITE_P(Corpus, Encrypted,
                         ::testing::Values("deco_test-encrypted.zip", "test_read_format_7zip_encryption.7z",
                                           "test_read_format_7zip_encryption_header.7z",
                                           "test_read_format_rar4_encrypted.rar", "test_read_format_rar5_encrypted.rar",
                                           "test_read_format_zip_encryption_header.zip",
                                           "test_read_format_zip_traditional_encryption_data.zip",
                                           "test_read_format_zip_winzip_aes128.zip",
                                           "test_read_format_zip_winzip_aes256.zip", "zip-aes-256.zip",
                                           "zipWithEncryption.zip"));

TEST(Archive, EncryptedFindingsNameTheMemberOrTheHeaders) {
  EXPECT_EQ(Unpack("r.rar", test::ReadCorpusFile("archive/encrypted/test_read_format_rar5_encrypted.rar")).findings,
            Names{"archive.encrypted b.txt"});
  EXPECT_EQ(Unpack("h.7z", test::ReadCorpusFile("archive/encrypted/test_read_format_7zip_encryption_header.7z")).findings,
            Names{"archive.encrypted"});
}

// Corrupt or hostile inputs libarchive refuses: parse.failed in the worker.
TEST(Archive, MalformedThrowsConvertError) {
  EXPECT_THROW(Unpack("m.7z", test::ReadCorpusFile("archive/malformed/test_read_format_7zip_malformed.7z")),
               ConvertError);
  // No central directory the seekable reader accepts: not an archive.
  EXPECT_THROW(Unpack("m.zip", test::ReadCorpusFile("archive/malformed/test_read_format_zip_malformed1.zip")),
               ConvertError);
  EXPECT_THROW(Unpack("plain.txt", "just some text\n"), ConvertError);
  EXPECT_THROW(Unpack("empty", ""), ConvertError);
}

TEST(Archive, ClamAvTestFiles) {
  std::string exe;
  for (const char* name : {"clam.zip", "clam.7z", "clam.cab", "clam.tar.gz", "clam.bz2.zip", "clam.bin-le.cpio"}) {
    Unpacked u = Unpack(name, test::ReadFile(std::string(MUGAI_TESTFILES_DIR) + "/" + name));
    ASSERT_EQ(u.children, Names{"clam.exe"}) << name;
    EXPECT_EQ(u.findings, Names{}) << name;
    if (exe.empty()) exe = u.contents[0];
    EXPECT_EQ(u.contents[0], exe) << name;
  }
  EXPECT_TRUE(exe.starts_with("MZ"));
  // PKWARE implode (method 6) is beyond libarchive 3.6.2: parse.failed.
  try {
    Unpack("clam.impl.zip", test::ReadFile(MUGAI_TESTFILES_DIR "/clam.impl.zip"));
    ADD_FAILURE() << "clam.impl.zip unpacked";
  } catch (const ConvertError& e) {
    EXPECT_NE(std::string(e.what()).find("imploded"), std::string::npos) << e.what();
  }
}

// Archives built here with libarchive's writer.
struct EntryFree {
  void operator()(archive_entry* e) const { archive_entry_free(e); }
};

class Builder {
 public:
  Builder(int format, int filter = ARCHIVE_FILTER_NONE) : writer_(archive_write_new()) {
    archive_write_set_format(writer_.get(), format);
    archive_write_add_filter(writer_.get(), filter);
    archive_write_set_bytes_in_last_block(writer_.get(), 1);
    archive_write_open(writer_.get(), &bytes_, nullptr, &Builder::Append, nullptr);
  }

  // A regular file of `size` bytes of `content` repeated (zeros when empty).
  Builder& File(const std::string& path, std::string_view content, size_t size = 0) {
    if (size == 0) size = content.size();
    Add(path, AE_IFREG, size, [&] {
      const std::string block = content.empty() ? std::string(1 << 20, '\0') : std::string(content);
      for (size_t left = size; left > 0;) {
        const size_t n = std::min(left, block.size());
        EXPECT_EQ(archive_write_data(writer_.get(), block.data(), n), static_cast<la_ssize_t>(n));
        left -= n;
      }
    });
    return *this;
  }

  Builder& Entry(const std::string& path, mode_t type, const char* symlink = nullptr, const char* hardlink = nullptr) {
    Add(path, type, 0, [] {}, symlink, hardlink);
    return *this;
  }

  std::string Finish() {
    EXPECT_EQ(archive_write_close(writer_.get()), ARCHIVE_OK) << archive_error_string(writer_.get());
    return bytes_;
  }

 private:
  static la_ssize_t Append(archive*, void* bytes, const void* data, size_t n) {
    static_cast<std::string*>(bytes)->append(static_cast<const char*>(data), n);
    return static_cast<la_ssize_t>(n);
  }

  void Add(const std::string& path, mode_t type, size_t size, const std::function<void()>& data,
           const char* symlink = nullptr, const char* hardlink = nullptr) {
    std::unique_ptr<archive_entry, EntryFree> entry(archive_entry_new());
    archive_entry_set_pathname(entry.get(), path.c_str());
    archive_entry_set_filetype(entry.get(), type);
    archive_entry_set_perm(entry.get(), 0644);
    archive_entry_set_size(entry.get(), static_cast<la_int64_t>(size));
    if (symlink != nullptr) archive_entry_set_symlink(entry.get(), symlink);
    if (hardlink != nullptr) archive_entry_set_hardlink(entry.get(), hardlink);
    if (type == AE_IFCHR) archive_entry_set_rdev(entry.get(), makedev(1, 3));
    ASSERT_EQ(archive_write_header(writer_.get(), entry.get()), ARCHIVE_OK) << archive_error_string(writer_.get());
    data();
  }

  std::string bytes_;
  ArchiveWriter writer_;
};

constexpr size_t kMiB = 1 << 20;

std::string ZipOfZeros() {
  static const std::string zip = Builder(ARCHIVE_FORMAT_ZIP).File("zeros", "", 64 * kMiB).Finish();
  return zip;
}

TEST(Limits, RatioStopsABombBeforeAnyChild) {
  ArchiveOptions options;
  options.set_max_ratio_bytes(8 * kMiB);
  Unpacked u = Unpack("bomb.zip", ZipOfZeros(), options);
  EXPECT_EQ(u.children, Names{});
  EXPECT_EQ(u.findings, Names{"limit.ratio"});
  // With no limit it is one 64 MiB member.
  EXPECT_EQ(Unpack("bomb.zip", ZipOfZeros()).children, Names{"zeros"});
}

TEST(Limits, ExpandedSize) {
  const std::string tar =
      Builder(ARCHIVE_FORMAT_TAR_PAX_RESTRICTED).File("a", "x", kMiB).File("b", "x", kMiB).File("c", "x", kMiB).Finish();
  ArchiveOptions options;
  options.set_max_expanded_bytes(5 * kMiB / 2);
  Unpacked u = Unpack("three.tar", tar, options);
  EXPECT_EQ(u.children, (Names{"a", "b"}));
  EXPECT_EQ(u.findings, Names{"limit.expanded_size"});
}

TEST(Limits, MemberSize) {
  const std::string tar = Builder(ARCHIVE_FORMAT_TAR_PAX_RESTRICTED).File("small", "hello").File("big", "x", 2 * kMiB).Finish();
  ArchiveOptions options;
  options.set_max_member_bytes(kMiB);
  Unpacked u = Unpack("two.tar", tar, options);
  EXPECT_EQ(u.children, Names{"small"});
  EXPECT_EQ(u.findings, Names{"limit.file_size big"});
}

TEST(Limits, Members) {
  ArchiveOptions options;
  options.set_max_members(100);
  for (int format : {ARCHIVE_FORMAT_ZIP, ARCHIVE_FORMAT_TAR_PAX_RESTRICTED}) {
    Builder builder(format);
    builder.Entry("dir", AE_IFDIR);  // directories count too
    for (int i = 0; i < 199; ++i) builder.File("f" + std::to_string(i), "x");
    Unpacked u = Unpack("many", builder.Finish(), options);
    EXPECT_EQ(u.findings, Names{"limit.members"}) << format;
    EXPECT_EQ(u.children.size(), 99u) << format;
  }
}

TEST(Limits, Time) {
  Unpacked u = Unpack("bomb.zip", ZipOfZeros(), {}, std::chrono::milliseconds(1));
  EXPECT_EQ(u.children, Names{});
  EXPECT_EQ(u.findings, Names{"limit.time"});
}

TEST(Archive, LinksAndSpecialFilesAreRefused) {
  const std::string tar = Builder(ARCHIVE_FORMAT_TAR_PAX_RESTRICTED)
                              .File("file", "content")
                              .Entry("symlink", AE_IFLNK, "/etc/passwd")
                              .Entry("hardlink", AE_IFREG, nullptr, "file")
                              .Entry("fifo", AE_IFIFO)
                              .Entry("null", AE_IFCHR)
                              .Finish();
  Unpacked u = Unpack("links.tar", tar);
  EXPECT_EQ(u.children, Names{"file"});
  EXPECT_EQ(u.findings, (Names{"archive.link symlink", "archive.link hardlink", "archive.special_file fifo",
                               "archive.special_file null"}));
}

TEST(Archive, SingleFileCompressorsNameTheirMember) {
  for (int filter : {ARCHIVE_FILTER_GZIP, ARCHIVE_FILTER_BZIP2, ARCHIVE_FILTER_XZ, ARCHIVE_FILTER_LZMA,
                     ARCHIVE_FILTER_LZIP, ARCHIVE_FILTER_ZSTD, ARCHIVE_FILTER_LZ4, ARCHIVE_FILTER_COMPRESS}) {
    const std::string packed = Builder(ARCHIVE_FORMAT_RAW, filter).File("ignored", "hello").Finish();
    Unpacked u = Unpack("report.txt.gz", packed);
    EXPECT_EQ(u.children, Names{"report.txt"}) << filter;
    EXPECT_EQ(u.contents, Names{"hello"}) << filter;
  }
  const std::string gz = Builder(ARCHIVE_FORMAT_RAW, ARCHIVE_FILTER_GZIP).File("ignored", "hello").Finish();
  EXPECT_EQ(Unpack("REPORT.TXT.GZ", gz).children, Names{"REPORT.TXT"});
  EXPECT_EQ(Unpack("report.tar.xz", gz).children, Names{"report.tar"});
  EXPECT_EQ(Unpack("attachment", gz).children, Names{"data"});
  EXPECT_EQ(Unpack(".gz", gz).children, Names{"data"});
}

// A gzip quine: libarchive's own bidders would stack gzip on gzip for
// minutes (3.6.2); one layer is undone, and what is inside is a gzip again,
// for the daemon to recurse into under its depth limit.
TEST(Archive, OneCompressionLayerAtATime) {
  Unpacked u = Unpack("test_read_filter_gzip_recursive.gz",
                      test::ReadCorpusFile("archive/malformed/test_read_filter_gzip_recursive.gz"));
  EXPECT_EQ(u.children, Names{"test_read_filter_gzip_recursive"});
  EXPECT_EQ(u.findings, Names{});
  ASSERT_EQ(u.contents.size(), 1u);
  EXPECT_TRUE(u.contents[0].starts_with("\x1f\x8b")) << u.contents[0].size();
  const std::string gz = Builder(ARCHIVE_FORMAT_RAW, ARCHIVE_FILTER_GZIP).File("x", "hello").Finish();
  const std::string gzgz = Builder(ARCHIVE_FORMAT_RAW, ARCHIVE_FILTER_GZIP).File("x", gz).Finish();
  EXPECT_EQ(Unpack("a.txt.gz.gz", gzgz).contents, Names{gz});
}

// Through the real, sandboxed mugai-worker: the locale and the iconv
// modules the names need are in place inside its root.
TEST(ArchiveWorker, JapaneseNamesInTheSandbox) {
  WorkerPoolOptions options;
  options.executable = MUGAI_BIN_DIR "/mugai-worker";
  options.size = 1;
  WorkerPool pool(options);
  pool.Start();
  EXPECT_EQ(test::MissingLayers(pool.protections()), "");
  const std::pair<const char*, Names> kCases[] = {
      {"zip/test_read_format_zip_filename_cp932.zip", {"表だよ/一覧表.txt", "表だよ/漢字.txt"}},
      {"tar/test_read_format_ustar_filename_eucjp.tar.Z", {"漢字.txt", "表.txt"}},
      {"rar/test_read_format_rar_unicode.rar",
       {"表だよ/新しいフォルダ/新規テキスト ドキュメント.txt", "表だよ/漢字長いファイル名long-filename-in-漢字.txt",
        "abcdefghijklmnopqrsテスト.txt"}},
      {"7z/test_read_format_7zip_lzma2.7z", {"file1"}},
      {"encrypted/test_read_format_rar5_encrypted.rar", {"a.txt"}}};
  for (const auto& [path, children] : kCases) {
    v1::worker::Job job;
    job.set_converter("archive");
    job.set_name(path);
    job.set_content(test::ReadCorpusFile(std::string("archive/") + path));
    job.set_time_limit_ms(10'000);
    job.mutable_archive()->set_max_members(1000);
    job.mutable_archive()->set_max_expanded_bytes(64 * kMiB);
    job.mutable_archive()->set_max_ratio_bytes(64 * kMiB);
    job.mutable_archive()->set_max_member_bytes(64 * kMiB);
    JobResult result = pool.Run(job, Clock::now() + std::chrono::seconds(30), kChildRecords);
    ASSERT_EQ(result.status, JobStatus::kOk) << path << ": " << result.detail;
    Unpacked u = Summarize(result.records);
    EXPECT_EQ(u.children, children) << path;
    if (std::string_view(path).starts_with("encrypted/")) {
      EXPECT_EQ(u.findings, Names{"archive.encrypted b.txt"}) << path;
    }
  }
}

}  // namespace
}  // namespace mugai
