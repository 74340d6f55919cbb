#include "sanitizers/detect/type_detector.h"

#include <magic.h>

#include <memory>
#include <stdexcept>
#include <string>
#include <type_traits>

namespace mugai {
namespace {

// libmagic never decompresses unless MAGIC_COMPRESS is set; saying
// NO_CHECK_COMPRESS as well keeps it that way should a default ever change.
// Compressed and encoded formats are still recognised by their own magic.
constexpr int kCommonFlags = MAGIC_NO_CHECK_COMPRESS;

struct MagicCloser {
  void operator()(magic_t cookie) const { magic_close(cookie); }
};
using MagicCookie = std::unique_ptr<std::remove_pointer_t<magic_t>, MagicCloser>;

MagicCookie OpenCookie(int flags) {
  MagicCookie cookie(magic_open(kCommonFlags | flags));
  if (!cookie) throw std::runtime_error("magic_open failed");
  if (magic_load(cookie.get(), nullptr) != 0) {
    const char* error = magic_error(cookie.get());
    throw std::runtime_error(std::string("cannot load the magic database: ") +
                             (error ? error : "unknown error"));
  }
  return cookie;
}

// See DetectedType::description. None of these is a type the DOS .COM
// check below or the policy's generic-type cases look at.
bool NamesItsFormat(std::string_view mime) {
  static constexpr std::string_view kTypes[] = {
      "text/plain", "text/html", "text/csv", "message/rfc822", "application/pdf", "image/png",
      "image/jpeg", "image/gif", "image/tiff", "image/webp", "application/zip"};
  for (std::string_view type : kTypes) {
    if (mime == type) return true;
  }
  return false;
}

}  // namespace

// One cookie per question: libmagic answers either the MIME type or the
// description per call, depending on how the cookie was opened.
struct TypeDetector::Cookies {
  MagicCookie mime = OpenCookie(MAGIC_MIME_TYPE);
  // Without MAGIC_RAW, libmagic escapes unprintable bytes as \ooo, so the
  // description is ASCII even when it quotes strings from the content.
  MagicCookie description = OpenCookie(MAGIC_NONE);
  // libmagic's built-in text and encoding tests only, without the magic
  // database: for second opinions on header-less guesses.
  MagicCookie text_only = OpenCookie(MAGIC_MIME_TYPE | MAGIC_NO_CHECK_SOFT);
};

TypeDetector::TypeDetector() : cookies_(std::make_unique<Cookies>()) {}
TypeDetector::~TypeDetector() = default;

DetectedType TypeDetector::Detect(std::string_view bytes) {
  // An empty view may have a null data(), which magic_buffer rejects; the
  // answer is known anyway.
  if (bytes.empty()) return {"application/x-empty", "empty"};
  const char* mime = magic_buffer(cookies_->mime.get(), bytes.data(), bytes.size());
  if (mime != nullptr && NamesItsFormat(mime)) return {mime, mime};
  const char* description = mime ? magic_buffer(cookies_->description.get(), bytes.data(), bytes.size()) : nullptr;
  if (mime == nullptr || description == nullptr) {
    // Unidentifiable is treated like unknown content downstream: blocked.
    const char* error =
        magic_error(mime == nullptr ? cookies_->mime.get() : cookies_->description.get());
    return {"application/octet-stream",
            std::string("unidentified (libmagic: ") + (error ? error : "unknown error") + ")"};
  }
  // A DOS .COM file has no header; libmagic guesses one from a leading 0xE9
  // (JMP), which is also the first byte of every UTF-8 character from U+9000
  // to U+9FFF (関, 開, 重, 電...), so long Japanese memos came out as
  // programs. When libmagic's own text tests accept the bytes as text, they
  // are text: converting them as such yields only a text derivative, so a
  // real COM file gains nothing by passing this test.
  if (std::string_view(description).starts_with("DOS executable (COM")) {
    const char* text = magic_buffer(cookies_->text_only.get(), bytes.data(), bytes.size());
    if (text != nullptr && std::string_view(text).starts_with("text/")) {
      return {text, std::string("text (not a DOS executable, whatever its first byte says)")};
    }
  }
  return {mime, description};
}

}  // namespace mugai
