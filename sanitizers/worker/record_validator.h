// Trusted-side check of everything a worker sends back. A worker may be
// fully compromised, so each record is held to the protocol and to the
// limits before anything else looks at it: the right job id, one Done at the
// end, text that is valid UTF-8, pixel buffers exactly width * height *
// channels bytes, bounded totals. Any breach is a violation of the item.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "mugai/v1/worker.pb.h"

namespace mugai {

struct RecordLimits {
  uint64_t max_text_bytes = 64u << 20;      // all Text records of a job together
  uint64_t max_pixels = 100'000'000;        // width * height of one Pixels record
  uint64_t max_children = 10'000;
  uint64_t max_child_bytes = 256u << 20;    // all Child contents of a job together
  uint64_t max_findings = 1'000;
};

// Validates the records of one job, in the order received. Not thread-safe;
// one per job.
class RecordValidator {
 public:
  RecordValidator(uint64_t job_id, RecordLimits limits) : job_id_(job_id), limits_(limits) {}

  // Returns nullopt when `record` is acceptable here, else the violation.
  std::optional<std::string> Check(const v1::worker::Record& record);

  bool done() const { return done_; }

 private:
  uint64_t job_id_;
  RecordLimits limits_;
  bool done_ = false;
  uint64_t text_bytes_ = 0;
  uint64_t children_ = 0;
  uint64_t child_bytes_ = 0;
  uint64_t findings_ = 0;
};

}  // namespace mugai
