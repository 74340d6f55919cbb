#include "sanitizers/worker/converter.h"

namespace mugai {

void RecordSink::Text(std::string utf8) {
  v1::worker::Record record;
  record.mutable_text()->set_utf8(std::move(utf8));
  Emit(std::move(record));
}

void RecordSink::Finding(std::string_view code, std::string reason) {
  v1::worker::Record record;
  record.mutable_finding()->set_code(std::string(code));
  record.mutable_finding()->set_reason(std::move(reason));
  Emit(std::move(record));
}

}  // namespace mugai
