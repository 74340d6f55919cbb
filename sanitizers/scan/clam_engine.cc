#include "sanitizers/scan/clam_engine.h"

#include <clamav.h>

#include <mutex>
#include <stdexcept>

#include "sanitizers/core/log.h"
#include "sanitizers/scan/official_database.h"

namespace mugai {
namespace {

// libclamav logs to stderr in its own format; route it through ours.
void ForwardClamMessage(enum cl_msg severity, const char*, const char* message, void*) {
  std::string_view text(message ? message : "");
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.remove_suffix(1);
  LogLevel level = severity == CL_MSG_ERROR  ? LogLevel::kError
                   : severity == CL_MSG_WARN ? LogLevel::kWarn
                                             : LogLevel::kInfo;
  Log(level, std::string("libclamav: ") + std::string(text));
}

// cl_init sets up process-wide state and must run once, before any engine.
void InitClamAv() {
  static std::once_flag once;
  std::call_once(once, [] {
    cl_set_clcb_msg(ForwardClamMessage);
    if (cl_error_t rc = cl_init(CL_INIT_DEFAULT); rc != CL_SUCCESS) {
      throw std::runtime_error(std::string("cl_init: ") + cl_strerror(rc));
    }
  });
}

void Check(cl_error_t rc, const char* what) {
  if (rc != CL_SUCCESS) throw std::runtime_error(std::string(what) + ": " + cl_strerror(rc));
}

struct FmapClose {
  void operator()(cl_fmap_t* map) const { cl_fmap_close(map); }
};

}  // namespace

void ClamEngine::EngineFree::operator()(cl_engine* engine) const { cl_engine_free(engine); }

ClamEngine::ClamEngine(std::string directory, uint64_t max_scan_bytes)
    : directory_(std::move(directory)), max_file_bytes_(max_scan_bytes) {
  InitClamAv();
  engine_.reset(cl_engine_new());
  if (!engine_) throw std::runtime_error("cl_engine_new failed");
  // A single file (the item or anything extracted from it) may be as large
  // as an item we accept; an archive may expand to a few times that, as in
  // libclamav's own defaults (100 MB file, 400 MB scan).
  const auto max_file = static_cast<long long>(max_file_bytes_);
  Check(cl_engine_set_num(engine_.get(), CL_ENGINE_MAX_FILESIZE, max_file), "max file size");
  Check(cl_engine_set_num(engine_.get(), CL_ENGINE_MAX_SCANSIZE, 4 * max_file), "max scan size");
  Check(cl_engine_set_num(engine_.get(), CL_ENGINE_MAX_RECURSION, 16), "max recursion");
  Check(cl_engine_set_num(engine_.get(), CL_ENGINE_MAX_FILES, 10000), "max files");
  Check(cl_load(directory_.c_str(), engine_.get(), &signature_count_, CL_DB_STDOPT),
        ("cl_load " + directory_).c_str());
  if (signature_count_ == 0) throw std::runtime_error("no signatures in " + directory_);
  Check(cl_engine_compile(engine_.get()), "cl_engine_compile");
  test_signatures_only_ = !HoldsOfficialDatabase(directory_);
}

ClamEngine::~ClamEngine() = default;

ClamVerdict ClamEngine::Scan(std::string_view content) const {
  // Nothing can match zero bytes, and libclamav will not map an empty buffer.
  if (content.empty()) return {ClamVerdict::kClean, "", ""};
  std::unique_ptr<cl_fmap_t, FmapClose> map(cl_fmap_open_memory(content.data(), content.size()));
  if (!map) return {ClamVerdict::kError, "", "cannot map content"};
  cl_scan_options options{};
  options.parse = ~0u;
  options.general = CL_SCAN_GENERAL_HEURISTICS;
  options.heuristic = CL_SCAN_HEURISTIC_EXCEEDS_MAX;
  const char* virname = nullptr;
  unsigned long scanned = 0;
  cl_error_t rc =
      cl_scanmap_callback(map.get(), nullptr, &virname, &scanned, engine_.get(), &options, nullptr);
  switch (rc) {
    case CL_CLEAN:
      return {ClamVerdict::kClean, "", ""};
    case CL_VIRUS:
      // Includes Heuristics.Limits.Exceeded.*: too big or too deep to scan
      // completely is treated as a detection, never as clean. libclamav
      // (1.4) names no signature when the item itself is over the size limit.
      if (virname) return {ClamVerdict::kDetected, virname, ""};
      return {ClamVerdict::kDetected,
              content.size() > max_file_bytes_ ? "Heuristics.Limits.Exceeded.MaxFileSize"
                                               : "Unnamed.Detection",
              ""};
    default:
      return {ClamVerdict::kError, "", cl_strerror(rc)};
  }
}

SignatureDirectoryWatch::SignatureDirectoryWatch(const std::string& directory)
    : stat_(std::make_unique<cl_stat>()) {
  InitClamAv();
  if (cl_error_t rc = cl_statinidir(directory.c_str(), stat_.get()); rc != CL_SUCCESS) {
    cl_statfree(stat_.get());
    throw std::runtime_error("cannot watch " + directory + ": " + cl_strerror(rc));
  }
}

SignatureDirectoryWatch::~SignatureDirectoryWatch() { cl_statfree(stat_.get()); }

// cl_statchkdir returns 1 on a change and a negative error when it cannot
// tell (the directory vanished, say); both call for a reload attempt.
bool SignatureDirectoryWatch::Changed() const { return cl_statchkdir(stat_.get()) != 0; }

}  // namespace mugai
