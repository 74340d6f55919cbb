// Real type of a byte string, from libmagic. Names and declared types are
// never consulted here.
#pragma once

#include <memory>
#include <string>
#include <string_view>

namespace mugai {

struct DetectedType {
  std::string mime_type;    // e.g. "application/pdf"
  std::string description;  // e.g. "PDF document, version 1.4"
};

// Not thread-safe (a libmagic cookie is not): use one per thread.
class TypeDetector {
 public:
  // Loads the system magic database. Throws std::runtime_error on failure.
  TypeDetector();
  ~TypeDetector();
  TypeDetector(const TypeDetector&) = delete;
  TypeDetector& operator=(const TypeDetector&) = delete;

  DetectedType Detect(std::string_view bytes);

 private:
  struct Cookies;
  std::unique_ptr<Cookies> cookies_;
};

}  // namespace mugai
