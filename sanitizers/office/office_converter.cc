#include "sanitizers/office/office_converter.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <optional>
#include <vector>

#include "sanitizers/core/child_process.h"
#include "sanitizers/core/findings.h"
#include "sanitizers/core/log.h"
#include "sanitizers/core/unique_fd.h"
#include "sanitizers/office/office_encryption.h"

namespace mugai {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

// soffice.bin's answer when it has just created a user profile and wants to
// be started again (oosplash, which we do not use, would do that).
constexpr int kRestartExitCode = 81;
// How much of LibreOffice's own output goes into a failure's reason.
constexpr size_t kLogTailBytes = 300;

// The extensions LibreOffice may take as a hint for its type detection
// (which looks at the content first). Any other claimed name gives none.
constexpr std::string_view kExtensions[] = {"doc", "docx", "docm", "dot", "dotx", "dotm", "xls", "xlsx",
                                            "xlsm", "xlt",  "xltx", "xltm", "ppt", "pptx", "pptm", "pps",
                                            "ppsx", "pot",  "potx", "odt",  "ods", "odp",  "odg",  "ott",
                                            "ots",  "otp",  "otg",  "rtf",  "xlsb"};

std::string InputFileName(std::string_view claimed) {
  const size_t dot = claimed.rfind('.');
  std::string ext(dot == std::string_view::npos ? std::string_view() : claimed.substr(dot + 1));
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  for (std::string_view known : kExtensions) {
    if (ext == known) return "input." + ext;
  }
  return "input";
}

[[noreturn]] void Fail(const std::string& what) { throw ConvertError(what); }

// A job's directory, removed with everything LibreOffice left in it.
class JobDir {
 public:
  explicit JobDir(const std::string& root) {
    std::string path = root + "/office-XXXXXX";
    if (!mkdtemp(path.data())) Fail(ErrnoText("cannot make a job directory in " + root));
    path_ = path;
  }
  ~JobDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  JobDir(const JobDir&) = delete;
  JobDir& operator=(const JobDir&) = delete;

  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

void WriteWholeFile(const fs::path& path, std::string_view bytes) {
  UniqueFd fd(open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (!fd.valid()) Fail(ErrnoText("cannot create " + path.string()));
  while (!bytes.empty()) {
    ssize_t n = write(fd.get(), bytes.data(), bytes.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) Fail(ErrnoText("cannot write " + path.string()));
    bytes.remove_prefix(static_cast<size_t>(n));
  }
}

// The whole file; nullopt when it does not exist.
std::optional<std::string> ReadWholeFile(const fs::path& path) {
  UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return std::nullopt;
  std::string bytes;
  char buffer[1 << 16];
  for (;;) {
    ssize_t n = read(fd.get(), buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) Fail(ErrnoText("cannot read " + path.string()));
    if (n == 0) return bytes;
    bytes.append(buffer, static_cast<size_t>(n));
  }
}

// The end of LibreOffice's stdout and stderr, on one line.
std::string LogTail(const fs::path& log) {
  std::string text = ReadWholeFile(log).value_or("");
  if (text.size() > kLogTailBytes) text = "..." + text.substr(text.size() - kLogTailBytes);
  std::replace_if(text.begin(), text.end(), [](unsigned char c) { return c < 0x20; }, ' ');
  while (!text.empty() && text.back() == ' ') text.pop_back();
  return text.empty() ? "no output" : text;
}

// One soffice.bin, and on destruction every process it may have left:
// its process group, and when this worker is the init of its own PID
// namespace (OfficePolicy) everything else in it too, reaped.
class OfficeRun {
 public:
  OfficeRun(const std::vector<std::string>& argv, const std::vector<std::string>& env, const int (&stdio)[3])
      : process_(ChildProcess::SpawnProgram(argv, env, stdio)), group_(process_.pid()) {}
  ~OfficeRun() {
    ::kill(-group_, SIGKILL);
    process_.Reap(std::chrono::milliseconds(0));
    if (getpid() == 1) {
      // kill(-1) from a namespace's init reaches its namespace only.
      ::kill(-1, SIGKILL);
      while (::waitpid(-1, nullptr, 0) > 0 || errno == EINTR) {
      }
    }
  }
  OfficeRun(const OfficeRun&) = delete;
  OfficeRun& operator=(const OfficeRun&) = delete;

  // The wait status, or nullopt when `deadline` passed first.
  std::optional<int> Wait(Clock::time_point deadline) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    return process_.Wait(std::max(left, std::chrono::milliseconds(0)));
  }

 private:
  ChildProcess process_;
  // The process group outlives its leader's pid in process_ (Reap clears
  // it), and LibreOffice's helpers may outlive the leader.
  pid_t group_;
};

}  // namespace

void OfficeConverter::Convert(const ConvertInput& input, RecordSink& sink) {
  if (input.content.empty()) Fail("empty document");
  const std::optional<std::string> encryption = DescribeOfficeEncryption(input.content);
  const auto limit = input.time_limit.count() > 0 ? input.time_limit : kDefaultTimeLimit;
  const Clock::time_point deadline = Clock::now() + limit;

  JobDir dir(scratch_root_);
  const fs::path document = dir.path() / InputFileName(input.name);
  const fs::path out = dir.path() / "out", home = dir.path() / "home", tmp = dir.path() / "tmp";
  const fs::path log = dir.path() / "soffice.log";
  WriteWholeFile(document, input.content);
  for (const fs::path& d : {out, home, tmp}) {
    if (mkdir(d.c_str(), 0700) != 0) Fail(ErrnoText("cannot make " + d.string()));
  }
  UniqueFd null(open("/dev/null", O_RDONLY | O_CLOEXEC));
  UniqueFd log_fd(open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600));
  if (!null.valid() || !log_fd.valid()) Fail(ErrnoText("cannot open LibreOffice's stdin or log"));

  const std::vector<std::string> argv = {
      soffice_, "--headless", "--invisible", "--nologo", "--norestore", "--nolockcheck", "--nodefault",
      "-env:UserInstallation=file://" + (dir.path() / "profile").string(),
      "--convert-to", "pdf", "--outdir", out.string(), document.string()};
  // Nothing of the worker's environment: a home, a temporary directory (for
  // LibreOffice's single-instance pipe too), a locale glibc has built in,
  // and LibreOffice's own libraries, which it finds through $ORIGIN, and
  // the loader resolves that with /proc, which the sandbox does not have.
  const std::vector<std::string> env = {"HOME=" + home.string(), "TMPDIR=" + tmp.string(), "LANG=C.UTF-8",
                                        "SAL_USE_VCLPLUGIN=svp",
                                        "LD_LIBRARY_PATH=" + fs::path(soffice_).parent_path().string()};
  const int stdio[3] = {null.get(), log_fd.get(), log_fd.get()};

  std::optional<std::string> failure;
  bool timed_out = false;
  // The first run in a fresh profile may only create it and ask for a restart.
  for (int attempt = 0; attempt < 2; ++attempt) {
    OfficeRun run(argv, env, stdio);
    std::optional<int> status = run.Wait(deadline);
    if (!status) {
      failure = "LibreOffice did not finish within " + std::to_string(limit.count()) + " ms";
      timed_out = true;
      break;
    }
    if (WIFEXITED(*status) && WEXITSTATUS(*status) == kRestartExitCode) continue;
    if (*status != 0) failure = "LibreOffice " + DescribeWaitStatus(*status) + ": " + LogTail(log);
    break;
  }
  std::optional<std::string> pdf;
  if (!failure) {
    pdf = ReadWholeFile(out / (document.stem().string() + ".pdf"));
    // LibreOffice exits 0 when it cannot load a document; only the missing
    // output tells.
    if (!pdf || !pdf->starts_with("%PDF-")) failure = "LibreOffice wrote no PDF: " + LogTail(log);
  }
  if (failure && encryption) {
    sink.Finding(finding::kDocumentEncrypted, *encryption + "; it cannot be opened without the password");
    return;
  }
  if (failure && timed_out) {
    sink.Finding(finding::kLimitTime, *failure);
    return;
  }
  if (failure) Fail(*failure);

  sink.Child(std::string(input.name) + ".pdf", std::move(*pdf));
}

}  // namespace mugai
