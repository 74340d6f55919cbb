// Daemon side of the scanner process (mugai-scanner). The scanner owns the
// only libclamav engine (with the full official database it is ~1.2 GB, so
// it is loaded once, never per worker) and libmagic, and answers each scan
// request with a verdict and the detected type; it never returns content.
//
// Thread-safe: many threads may Scan() at once; requests are multiplexed on
// one channel and the scanner works on them in parallel. If the scanner
// process dies, scans in flight fail (the caller fails closed) and the
// process is restarted for the next request.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <string>
#include <string_view>

#include "mugai/v1/worker.pb.h"
#include "sanitizers/worker/frame.h"

namespace mugai {

struct ScannerOptions {
  std::string executable;      // path of mugai-scanner
  std::string signatures_dir;  // a ClamAV database directory
  unsigned threads = 2;        // scan threads inside the scanner
  std::chrono::seconds reload_check{10};  // how often to look for new signatures
  size_t max_scan_bytes = 256u << 20;     // largest content accepted
};

struct ScanVerdict {
  bool ok = false;        // false: not scanned; `error` says why
  std::string error;
  bool detected = false;  // ClamAV matched `signature`
  std::string signature;
  // Where inside the content it matched: layer names joined by "/", ""
  // for the content itself (see ScanResult.location). Raw bytes from the
  // content, not yet made valid UTF-8 or safe to show.
  std::string location;
  std::string mime_type;  // libmagic
  std::string description;
};

// The system ClamAV database directory when it holds a main or daily
// database, else the bundled test signatures (samples/signatures/).
std::string DefaultSignatureDirectory();

class ScannerClient {
 public:
  explicit ScannerClient(ScannerOptions options);
  ~ScannerClient();  // stops the scanner process
  ScannerClient(const ScannerClient&) = delete;
  ScannerClient& operator=(const ScannerClient&) = delete;

  // Starts the scanner and waits for its first engine. Throws
  // std::runtime_error when it cannot start or load any signatures.
  void Start(Deadline deadline);

  // Not ok, with `error` saying why, when `content` is larger than
  // max_scan_bytes (it is not sent), the scanner died ("scanner process
  // died"), or the deadline passed ("scan timed out"). A scanner that has
  // said nothing for seconds while a scan timed out is taken for stuck and
  // restarted.
  ScanVerdict Scan(std::string_view content, Deadline deadline);

  // The engine in use (updated after every reload).
  v1::worker::EngineInfo engine() const;

  // Asks the scanner to reload its signatures now (as on SIGHUP). Returns at
  // once; engine() changes when the reload is done.
  void Reload();

  // The scanner's process id, or -1 while none is running. For tests that
  // need to kill it.
  pid_t scanner_pid() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace mugai
