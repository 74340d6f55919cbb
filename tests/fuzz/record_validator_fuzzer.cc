// RecordValidator over what a compromised worker could send: the input is a
// stream of frames as the daemon reads them (ReadFrame, over a pipe), each a
// Record checked in order, as WorkerPool does. Beyond not crashing, an
// accepted Text record must be valid UTF-8 and an accepted Pixels record
// exactly width * height * channels bytes, and nothing is accepted after
// Done or after the first violation would have stopped the job.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "sanitizers/core/unique_fd.h"
#include "sanitizers/text/safe_text.h"
#include "sanitizers/worker/frame.h"
#include "sanitizers/worker/record_validator.h"
#include "tests/fuzz/fuzz_support.h"

namespace {

constexpr uint64_t kJobId = 7;

// Small limits, so that the fuzzer reaches every limit with small inputs.
mugai::RecordLimits SmallLimits() {
  mugai::RecordLimits limits;
  limits.max_text_bytes = 4096;
  limits.max_pixels = 1024;
  limits.max_pixel_bytes = 8192;
  limits.max_children = 8;
  limits.max_child_bytes = 4096;
  limits.max_findings = 16;
  limits.max_records = 64;
  return limits;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  // The first byte chooses the record kinds the job may produce.
  const unsigned kinds = data[0] & 0x0F;
  std::string_view frames(reinterpret_cast<const char*>(data) + 1, size - 1);
  // The whole input fits in a pipe's buffer (64 KiB on Linux), so writing it
  // before reading cannot block.
  if (frames.size() > 60'000) return 0;
  int ends[2];
  if (pipe(ends) != 0) __builtin_trap();
  mugai::UniqueFd read_end(ends[0]);
  {
    mugai::UniqueFd write_end(ends[1]);
    FUZZ_ASSERT(write(write_end.get(), frames.data(), frames.size()) == static_cast<ssize_t>(frames.size()));
  }
  mugai::RecordValidator validator(kJobId, SmallLimits(), kinds);
  for (;;) {
    mugai::v1::worker::Record record;
    mugai::FrameStatus status = mugai::ReadFrame(read_end.get(), validator.MaxFrameBytes(), mugai::NoDeadline(), &record);
    if (status != mugai::FrameStatus::kOk) break;
    // A fuzzer-made record is for this job, most of the time: otherwise the
    // first check would reject nearly every input.
    if (record.job_id() == 0) record.set_job_id(kJobId);
    const bool was_done = validator.done();
    if (validator.Check(record)) break;
    FUZZ_ASSERT(!was_done);
    using Record = mugai::v1::worker::Record;
    switch (record.kind_case()) {
      case Record::kText:
        FUZZ_ASSERT(kinds & mugai::kTextRecords);
        FUZZ_ASSERT(mugai::IsValidUtf8(record.text().utf8()));
        break;
      case Record::kPixels: {
        const auto& p = record.pixels();
        FUZZ_ASSERT(kinds & mugai::kPixelRecords);
        FUZZ_ASSERT(p.data().size() == uint64_t{p.width()} * p.height() * p.channels());
        FUZZ_ASSERT(p.data().size() <= SmallLimits().max_pixel_bytes);
        break;
      }
      case Record::kChild:
        FUZZ_ASSERT(kinds & mugai::kChildRecords);
        break;
      case Record::kMailHeader:
        FUZZ_ASSERT(kinds & mugai::kMailHeaderRecords);
        FUZZ_ASSERT(mugai::IsValidUtf8(record.mail_header().value()));
        break;
      case Record::kDone:
        FUZZ_ASSERT(validator.done());
        break;
      default:
        break;
    }
  }
  return 0;
}
