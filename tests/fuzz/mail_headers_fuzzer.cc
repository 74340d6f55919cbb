// Header decoding of the mail converter, through GMime as the worker does
// it: the input is a message's header block (a short body is added), and
// MailConverter decodes its From, To, Cc, Reply-To, Subject, Date and ids
// (RFC 2047 words in our charsets, groups flattened). The converter's
// contract is to stay within what the daemon accepts, so every record it
// emits must pass the RecordValidator the mail pipeline uses (valid UTF-8,
// at most nine headers of bounded size, well-formed finding codes); a
// record the daemon would refuse is a bug that quarantines good mail.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "sanitizers/mail/mail_converter.h"
#include "sanitizers/pipeline/mail_sanitizer.h"
#include "sanitizers/worker/record_validator.h"
#include "tests/fuzz/fuzz_support.h"

namespace {

constexpr uint64_t kJobId = 1;

// Checks each record as the daemon would receive it.
class ValidatingSink : public mugai::RecordSink {
 public:
  void Emit(mugai::v1::worker::Record record) override {
    record.set_job_id(kJobId);
    FUZZ_ASSERT(!validator_.Check(record));
  }

 private:
  mugai::RecordValidator validator_{kJobId, mugai::RecordLimits{},
                                    mugai::kTextRecords | mugai::kChildRecords | mugai::kMailHeaderRecords};
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string message = std::string(reinterpret_cast<const char*>(data), size) + "\n\nHello.\n";
  const mugai::MailPolicy policy;
  mugai::ConvertInput input{.name = "message.eml", .content = message, .max_output_bytes = 1u << 20};
  input.mail.set_max_depth(policy.max_depth);
  input.mail.set_max_parts(policy.max_parts);
  input.mail.set_max_header_bytes(policy.max_header_bytes);
  ValidatingSink sink;
  try {
    mugai::MailConverter().Convert(input, sink);
  } catch (const mugai::ConvertError&) {
    // Documented: GMime could not read it as a message at all.
  }
  return 0;
}
