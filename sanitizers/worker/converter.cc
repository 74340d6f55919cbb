#include "sanitizers/worker/converter.h"

namespace mugai {

void RecordSink::Text(std::string utf8) {
  v1::worker::Record record;
  record.mutable_text()->set_utf8(std::move(utf8));
  Emit(std::move(record));
}

void RecordSink::Finding(std::string_view code, std::string reason, std::string_view subject) {
  v1::worker::Record record;
  record.mutable_finding()->set_code(std::string(code));
  record.mutable_finding()->set_reason(std::move(reason));
  record.mutable_finding()->set_subject(std::string(subject));
  Emit(std::move(record));
}

void RecordSink::Child(std::string name, std::string content) {
  v1::worker::Record record;
  record.mutable_child()->set_name(std::move(name));
  record.mutable_child()->set_content(std::move(content));
  Emit(std::move(record));
}

void RecordSink::Child(std::string name, std::string content, std::string declared_type, bool shown_inline) {
  v1::worker::Record record;
  v1::worker::Child* child = record.mutable_child();
  child->set_name(std::move(name));
  child->set_content(std::move(content));
  child->set_declared_type(std::move(declared_type));
  child->set_shown_inline(shown_inline);
  Emit(std::move(record));
}

void RecordSink::MailHeader(v1::worker::MailHeader header) {
  v1::worker::Record record;
  *record.mutable_mail_header() = std::move(header);
  Emit(std::move(record));
}

v1::worker::Record PixelsRecord(uint32_t width, uint32_t height, uint32_t channels) {
  v1::worker::Record record;
  v1::worker::Pixels* pixels = record.mutable_pixels();
  pixels->set_width(width);
  pixels->set_height(height);
  pixels->set_channels(channels);
  pixels->mutable_data()->resize(size_t{width} * height * channels);
  return record;
}

}  // namespace mugai
