#include <archive.h>
#include <archive_entry.h>
#include <gtest/gtest.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <iostream>
#include <memory>
#include <string>

#include "sanitizers/core/findings.h"
#include "sanitizers/office/office_encryption.h"
#include "sanitizers/sandbox/sandbox.h"
#include "sanitizers/worker/worker_pool.h"
#include "tests/unit/test_support.h"

namespace mugai {
namespace {

using v1::worker::Job;
using v1::worker::Record;

// One pool for the whole binary: each worker confines itself once, and
// every job below runs in it, as in production.
class OfficePool : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    WorkerPoolOptions options;
    options.executable = MUGAI_BIN_DIR "/mugai-office-worker";
    options.size = 2;
    options.memory_bytes = uint64_t{2} << 30;  // what the Office pool should get
    pool_ = std::make_unique<WorkerPool>(options);
    pool_->Start();
  }
  static void TearDownTestSuite() { pool_.reset(); }

  static JobResult Convert(const std::string& name, std::string content, uint32_t time_limit_ms = 0) {
    Job job;
    job.set_converter("office");
    job.set_name(name);
    job.set_content(std::move(content));
    job.set_time_limit_ms(time_limit_ms);
    auto start = std::chrono::steady_clock::now();
    JobResult result = pool_->Run(job, Clock::now() + std::chrono::seconds(120), kChildRecords);
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);
    std::cout << "[ time ] " << name << ": " << ms.count() << " ms\n";
    return result;
  }

  static inline std::unique_ptr<WorkerPool> pool_;
};

std::string Findings(const JobResult& r) {
  std::string all;
  for (const Record& record : r.records) {
    if (record.has_finding()) all += record.finding().code() + " (" + record.finding().reason() + ") ";
  }
  return all;
}

TEST_F(OfficePool, HelloReportsTheOfficeSandbox) {
  v1::worker::WorkerHello hello = pool_->protections();
  std::string all;
  for (const std::string& p : hello.protections()) all += p + "\n";
  std::cout << all;
  EXPECT_EQ(test::MissingLayers(hello), "");
  EXPECT_NE(all.find("PID namespace"), std::string::npos) << all;
  EXPECT_NE(all.find("seccomp deny-list"), std::string::npos) << all;
  EXPECT_NE(all.find("/usr/lib/libreoffice"), std::string::npos) << all;
}

class EveryFormat : public OfficePool, public ::testing::WithParamInterface<const char*> {};

TEST_P(EveryFormat, BecomesOnePdfChild) {
  const std::string path = GetParam();
  const std::string name = path.substr(path.rfind('/') + 1);
  JobResult r = Convert(name, test::ReadCorpusFile(path));
  ASSERT_EQ(r.status, JobStatus::kOk) << r.detail;
  ASSERT_EQ(r.records.size(), 1u) << Findings(r);
  ASSERT_TRUE(r.records[0].has_child()) << Findings(r);
  EXPECT_EQ(r.records[0].child().name(), name + ".pdf");
  EXPECT_TRUE(r.records[0].child().content().starts_with("%PDF-"));
}

INSTANTIATE_TEST_SUITE_P(
    Corpus, EveryFormat,
    ::testing::Values("dangerzone-test-docs/test_docs/sample-doc.doc", "dangerzone-test-docs/test_docs/sample-docx.docx",
                      "dangerzone-test-docs/test_docs/sample-docm.docm", "dangerzone-test-docs/test_docs/sample-xls.xls",
                      "dangerzone-test-docs/test_docs/sample-xlsx.xlsx", "dangerzone-test-docs/test_docs/sample-ppt.ppt",
                      "dangerzone-test-docs/test_docs/sample-pptx.pptx", "dangerzone-test-docs/test_docs/sample-odt.odt",
                      "dangerzone-test-docs/test_docs/sample-ods.ods", "dangerzone-test-docs/test_docs/sample-odp.odp",
                      "dangerzone-test-docs/test_docs/sample-odg.odg", "office/plain/rich_text.rtf",
                      // a read-only workbook under Excel's default password: converted
                      "office/encrypted/autostart-encrypt-standardpassword.xls"));

class Encrypted : public OfficePool, public ::testing::WithParamInterface<const char*> {};

TEST_P(Encrypted, IsDocumentEncrypted) {
  const std::string path = std::string("office/encrypted/") + GetParam();
  const std::string content = test::ReadCorpusFile(path);
  EXPECT_TRUE(DescribeOfficeEncryption(content));
  JobResult r = Convert(GetParam(), content);
  ASSERT_EQ(r.status, JobStatus::kOk) << r.detail;
  ASSERT_EQ(r.records.size(), 1u);
  ASSERT_TRUE(r.records[0].has_finding());
  EXPECT_EQ(r.records[0].finding().code(), finding::kDocumentEncrypted) << r.records[0].finding().reason();
  EXPECT_NE(r.records[0].finding().reason().find("password"), std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(Corpus, Encrypted,
                         ::testing::Values("Password_Protected-hello.ppt", "bug53475-password-is-pass.docx",
                                           "password.xls", "password_tika_binaryrc4.doc",
                                           "protected_passtika.xlsx"));

// Runs `body` in a process confined by OfficePolicy; returns its wait status.
int InOfficeSandbox(int (*body)()) {
  pid_t pid = fork();
  if (pid == 0) {
    EnterSandbox(OfficePolicy(uint64_t{4} << 30, 1 << 20));
    _exit(body());
  }
  int status = 0;
  waitpid(pid, &status, 0);
  return status;
}

bool KilledBySeccomp(int status) { return WIFSIGNALED(status) && WTERMSIG(status) == SIGSYS; }

TEST(OfficeSandbox, DeniesTheDangerousCalls) {
  EXPECT_TRUE(KilledBySeccomp(InOfficeSandbox([] { return static_cast<int>(ptrace(PTRACE_TRACEME, 0, 0, 0)); })));
  EXPECT_TRUE(KilledBySeccomp(InOfficeSandbox([] { return unshare(CLONE_NEWUSER); })));
  EXPECT_TRUE(KilledBySeccomp(InOfficeSandbox([] { return mount("none", "/tmp", "tmpfs", 0, nullptr); })));
  EXPECT_TRUE(KilledBySeccomp(InOfficeSandbox([] { return static_cast<int>(syscall(SYS_bpf, 0, 0, 0)); })));
  // Refused without a kill: libraries probe for these.
  EXPECT_EQ(InOfficeSandbox([] { return socket(AF_INET, SOCK_STREAM, 0) < 0 && errno == EAFNOSUPPORT ? 0 : 1; }), 0);
  EXPECT_EQ(InOfficeSandbox([] { return socket(AF_UNIX, SOCK_STREAM, 0) >= 0 ? 0 : 1; }), 0);
}

TEST(OfficeSandbox, SeesOnlyItsBindsAndRunsOnlyWhatIsBound) {
  // Host files are out of view; the binds are read-only; the scratch is
  // writable but nothing in it runs.
  EXPECT_EQ(InOfficeSandbox([] { return access("/etc/passwd", F_OK) != 0 && errno == ENOENT ? 0 : 1; }), 0);
  EXPECT_EQ(InOfficeSandbox([] {
              return open("/usr/lib/libreoffice/x", O_WRONLY | O_CREAT, 0600) < 0 && errno == EROFS ? 0 : 1;
            }),
            0);
  EXPECT_EQ(InOfficeSandbox([] {
              int fd = open("/tmp/run", O_WRONLY | O_CREAT, 0700);
              if (fd < 0 || write(fd, "#!/x\n", 5) != 5 || close(fd) != 0) return 2;
              char* argv[] = {nullptr};
              execve("/tmp/run", argv, argv);
              return errno == EACCES ? 0 : 1;
            }),
            0);
  // It may start processes, and they die with it: fork works.
  EXPECT_EQ(InOfficeSandbox([] {
              pid_t child = fork();
              if (child == 0) _exit(7);
              int status = 0;
              return child > 0 && waitpid(child, &status, 0) == child && WEXITSTATUS(status) == 7 ? 0 : 1;
            }),
            0);
}

// A password-protected ODT as LibreOffice writes one, as far as the
// detector and LibreOffice can tell: its manifest gives content.xml
// encryption-data, and content.xml is ciphertext.
std::string EncryptedOdt() {
  std::string zip(64 << 10, '\0');
  size_t used = 0;
  std::unique_ptr<archive, int (*)(archive*)> writer(archive_write_new(), archive_write_free);
  EXPECT_EQ(archive_write_set_format_zip(writer.get()), ARCHIVE_OK);
  EXPECT_EQ(archive_write_open_memory(writer.get(), zip.data(), zip.size(), &used), ARCHIVE_OK);
  const std::pair<const char*, std::string> members[] = {
      {"mimetype", "application/vnd.oasis.opendocument.text"},
      {"META-INF/manifest.xml",
       "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
       "<manifest:manifest xmlns:manifest=\"urn:oasis:names:tc:opendocument:xmlns:manifest:1.0\" "
       "manifest:version=\"1.2\">\n"
       " <manifest:file-entry manifest:full-path=\"/\" manifest:media-type=\"application/vnd.oasis.opendocument.text\"/>\n"
       " <manifest:file-entry manifest:full-path=\"content.xml\" manifest:media-type=\"text/xml\" manifest:size=\"4000\">\n"
       "  <manifest:encryption-data manifest:checksum-type=\"SHA1/1K\" manifest:checksum=\"AAAA\">\n"
       "   <manifest:algorithm manifest:algorithm-name=\"http://www.w3.org/2001/04/xmlenc#aes256-cbc\" "
       "manifest:initialisation-vector=\"AAAA\"/>\n"
       "  </manifest:encryption-data>\n"
       " </manifest:file-entry>\n"
       "</manifest:manifest>\n"},
      {"content.xml", std::string(4000, '\x5a')},
  };
  for (const auto& [name, data] : members) {
    std::unique_ptr<archive_entry, void (*)(archive_entry*)> entry(archive_entry_new(), archive_entry_free);
    archive_entry_set_pathname(entry.get(), name);
    archive_entry_set_filetype(entry.get(), AE_IFREG);
    archive_entry_set_perm(entry.get(), 0644);
    archive_entry_set_size(entry.get(), static_cast<la_int64_t>(data.size()));
    EXPECT_EQ(archive_write_header(writer.get(), entry.get()), ARCHIVE_OK);
    EXPECT_EQ(archive_write_data(writer.get(), data.data(), data.size()), static_cast<la_ssize_t>(data.size()));
  }
  EXPECT_EQ(archive_write_close(writer.get()), ARCHIVE_OK);
  zip.resize(used);
  return zip;
}

TEST_F(OfficePool, PasswordProtectedOpenDocumentIsDocumentEncrypted) {
  const std::string odt = EncryptedOdt();
  ASSERT_TRUE(DescribeOfficeEncryption(odt));
  JobResult r = Convert("secret.odt", odt);
  ASSERT_EQ(r.status, JobStatus::kOk) << r.detail;
  EXPECT_EQ(Findings(r).find("document.encrypted"), 0u) << Findings(r);
}

TEST(OfficeEncryption, DefaultPasswordWorkbookIsRecognizedButPlainFilesAreNot) {
  EXPECT_TRUE(DescribeOfficeEncryption(test::ReadCorpusFile("office/encrypted/autostart-encrypt-standardpassword.xls")));
  for (const char* plain : {"dangerzone-test-docs/test_docs/sample-doc.doc", "dangerzone-test-docs/test_docs/sample-xls.xls",
                            "dangerzone-test-docs/test_docs/sample-ppt.ppt", "dangerzone-test-docs/test_docs/sample-docx.docx"}) {
    EXPECT_FALSE(DescribeOfficeEncryption(test::ReadCorpusFile(plain))) << plain;
  }
  EXPECT_FALSE(DescribeOfficeEncryption(test::ReadCorpusFile("dangerzone-test-docs/test_docs/sample-odt.odt")));
  // A Compound File header with nothing behind it.
  EXPECT_FALSE(DescribeOfficeEncryption(std::string("\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1", 8) + std::string(600, '\xff')));
}

// Japanese text is set in Noto CJK (fonts-noto-cjk, bound into the
// sandbox), not in a font without the glyphs (tofu).
TEST_F(OfficePool, JapaneseDocumentsEmbedNotoCjk) {
  for (const char* path : {"office/japanese/61470.docx", "office/japanese/Bug41898.doc"}) {
    JobResult r = Convert(path, test::ReadCorpusFile(path));
    ASSERT_EQ(r.records.size(), 1u) << path;
    ASSERT_TRUE(r.records[0].has_child()) << Findings(r);
    EXPECT_NE(r.records[0].child().content().find("CJK"), std::string::npos) << path;
  }
}

TEST_F(OfficePool, GarbageIsParseFailed) {
  JobResult r = Convert("garbage.docx", std::string("\x00\x01garbage that no filter takes\xff", 32));
  ASSERT_EQ(r.status, JobStatus::kOk) << r.detail;
  ASSERT_EQ(r.records.size(), 1u);
  ASSERT_TRUE(r.records[0].has_finding());
  EXPECT_EQ(r.records[0].finding().code(), finding::kParseFailed);
}

TEST_F(OfficePool, TooShortATimeLimitIsLimitTime) {
  JobResult r = Convert("sample-docx.docx", test::ReadCorpusFile("dangerzone-test-docs/test_docs/sample-docx.docx"), 50);
  ASSERT_EQ(r.status, JobStatus::kOk) << r.detail;
  ASSERT_EQ(r.records.size(), 1u);
  ASSERT_TRUE(r.records[0].has_finding());
  EXPECT_EQ(r.records[0].finding().code(), finding::kLimitTime);
  EXPECT_NE(r.records[0].finding().reason().find("did not finish"), std::string::npos);
  // The worker is still good for the next document.
  r = Convert("rich_text.rtf", test::ReadCorpusFile("office/plain/rich_text.rtf"));
  ASSERT_EQ(r.records.size(), 1u);
  EXPECT_TRUE(r.records[0].has_child()) << Findings(r);
}

}  // namespace
}  // namespace mugai
