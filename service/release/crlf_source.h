// A message as SMTP DATA carries it: every bare LF becomes CRLF; CRLF, a
// bare CR and every other byte pass unchanged, so the content arrives as
// it was. (libcurl's own CURLOPT_CRLF would turn an existing CRLF into
// CR CR LF.) Dot-stuffing and the final "." are libcurl's.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace mugai {

class CrlfSource {
 public:
  // `message` must outlive this.
  explicit CrlfSource(std::string_view message);

  // Bytes Read produces in all.
  uint64_t size() const { return size_; }

  // Up to `capacity` bytes of the converted message into `out`; 0 at the end.
  size_t Read(char* out, size_t capacity);

 private:
  std::string_view message_;
  uint64_t size_ = 0;
  size_t offset_ = 0;
  bool cr_written_ = false;  // the CR before message_[offset_], a bare LF, went out
};

}  // namespace mugai
