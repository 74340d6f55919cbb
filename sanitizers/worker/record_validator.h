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
  uint64_t max_pixel_bytes = 1u << 30;      // all Pixels data of a job together
  uint64_t max_children = 10'000;
  uint64_t max_child_bytes = 256u << 20;    // all Child contents of a job together
  uint64_t max_findings = 1'000;
  uint64_t max_records = 100'000;           // of any kind, empty ones included
};

// The record kinds a job may produce, besides findings and Done: a text
// converter sending pixels is not behaving as the converter it was asked
// to be, and is stopped at the first such record.
enum RecordKinds : unsigned {
  kTextRecords = 1u << 0,
  kPixelRecords = 1u << 1,
  kChildRecords = 1u << 2,
  kMailHeaderRecords = 1u << 3,
};

// Validates the records of one job, in the order received. Not thread-safe;
// one per job.
class RecordValidator {
 public:
  RecordValidator(uint64_t job_id, RecordLimits limits, unsigned kinds)
      : job_id_(job_id), limits_(limits), kinds_(kinds) {}

  // The largest frame a legal record of this job can need.
  size_t MaxFrameBytes() const;

  // Returns nullopt when `record` is acceptable here, else the violation.
  std::optional<std::string> Check(const v1::worker::Record& record);

  bool done() const { return done_; }

 private:
  uint64_t job_id_;
  RecordLimits limits_;
  unsigned kinds_;
  bool done_ = false;
  uint64_t records_ = 0;
  uint64_t pixel_bytes_ = 0;
  uint64_t text_bytes_ = 0;
  uint64_t children_ = 0;
  uint64_t child_bytes_ = 0;
  uint64_t findings_ = 0;
  unsigned mail_headers_ = 0;
};

}  // namespace mugai
