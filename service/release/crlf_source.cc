#include "service/release/crlf_source.h"

namespace mugai {
namespace {

bool IsBareLf(std::string_view message, size_t i) {
  return message[i] == '\n' && (i == 0 || message[i - 1] != '\r');
}

}  // namespace

CrlfSource::CrlfSource(std::string_view message) : message_(message), size_(message.size()) {
  for (size_t i = 0; i < message.size(); ++i) size_ += IsBareLf(message, i);
}

size_t CrlfSource::Read(char* out, size_t capacity) {
  size_t written = 0;
  while (written < capacity && offset_ < message_.size()) {
    if (!cr_written_ && IsBareLf(message_, offset_)) {
      out[written++] = '\r';
      cr_written_ = true;
      continue;
    }
    out[written++] = message_[offset_++];
    cr_written_ = false;
  }
  return written;
}

}  // namespace mugai
