// Real type of a byte string, from libmagic. Names and declared types are
// never consulted here.
#pragma once

#include <memory>
#include <string>
#include <string_view>

namespace mugai {

struct DetectedType {
  std::string mime_type;    // e.g. "application/pdf"
  // e.g. "Zip archive data, at least v2.0 to extract"; the MIME type itself
  // for the types whose MIME type names their format fully (text/plain,
  // application/pdf, image/png, message/rfc822, ...): a second libmagic
  // pass costs as much as the first, and nothing reads the description of
  // those (the policy reads it only to tell apart formats that share a
  // generic type, and reasons quote it only for blocked types).
  std::string description;
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
