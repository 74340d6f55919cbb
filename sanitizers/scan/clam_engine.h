// A compiled libclamav engine and the verdicts it gives on bytes in memory.
// Loading compiles every database in a directory (seconds to a minute and
// ~1.2 GB with the official one), so an engine is built once and shared:
// Scan() is const and safe to call from many threads at once.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

struct cl_engine;
struct cl_stat;

namespace mugai {

struct ClamVerdict {
  enum Kind { kClean, kDetected, kError };
  Kind kind = kError;
  std::string signature;  // when kDetected
  // When kDetected: the layer libclamav matched in, as the names of the
  // layers below the item joined by "/" (e.g. "docs.tar/clam.exe").
  // Layers libclamav gives no name, and those it names after its temporary
  // files (normalized ones), are left out, so "" is the item itself, a match
  // in unnamed layers only (the content of a .bz2), or a heuristic
  // (Heuristics.*, PUA.*), which libclamav reports against the item. Names
  // come from the content: raw bytes, not necessarily UTF-8, cut at
  // kMaxLocationBytes.
  std::string location;
  std::string error;  // when kError

  static constexpr size_t kMaxLocationBytes = 1024;
};

class ClamEngine {
 public:
  // Loads and compiles the databases in `directory`. Every file, and every
  // file extracted from it, larger than `max_scan_bytes` is reported rather
  // than skipped (see Scan). Throws std::runtime_error when nothing usable
  // can be loaded.
  ClamEngine(std::string directory, uint64_t max_scan_bytes);
  ~ClamEngine();
  ClamEngine(const ClamEngine&) = delete;
  ClamEngine& operator=(const ClamEngine&) = delete;

  // All parsers on, heuristics on. Content that exceeds an engine limit
  // (size, recursion, file count, scan time) is not passed as clean: libclamav
  // reports it as "Heuristics.Limits.Exceeded.*" and that is kDetected, like
  // any other match, so the caller quarantines it (fail closed). A detection
  // says which layer inside the content matched (ClamVerdict::location).
  ClamVerdict Scan(std::string_view content) const;

  const std::string& directory() const { return directory_; }
  unsigned signature_count() const { return signature_count_; }
  // True unless the directory holds an official database
  // (HoldsOfficialDatabase): real malware will not be detected.
  bool test_signatures_only() const { return test_signatures_only_; }

 private:
  struct EngineFree {
    void operator()(cl_engine* engine) const;
  };

  std::string directory_;
  uint64_t max_file_bytes_;
  std::unique_ptr<cl_engine, EngineFree> engine_;
  unsigned signature_count_ = 0;
  bool test_signatures_only_ = true;
};

// Notices changes to a database directory, with libclamav's own check (the
// one clamd uses): a database file added, or one rewritten.
class SignatureDirectoryWatch {
 public:
  // Records the current state of `directory`. Throws std::runtime_error.
  explicit SignatureDirectoryWatch(const std::string& directory);
  ~SignatureDirectoryWatch();
  SignatureDirectoryWatch(const SignatureDirectoryWatch&) = delete;
  SignatureDirectoryWatch& operator=(const SignatureDirectoryWatch&) = delete;

  // True when the directory differs from the recorded state.
  bool Changed() const;

 private:
  std::unique_ptr<cl_stat> stat_;
};

}  // namespace mugai
