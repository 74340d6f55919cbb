// Trusted side: turns a document into its flattened PDF. The pages are
// rendered by several workers at once (each renders every n-th page, see
// RenderOptions.page_shard), each page is encoded as soon as it arrives, on
// the thread that received it, and the pages go into the PDF in order. Raw
// pixels are held one page per worker at a time; what accumulates is the
// encoded pages, which is the output itself.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "mugai/v1/worker.pb.h"
#include "sanitizers/pdf/page_encoding.h"
#include "sanitizers/worker/worker_pool.h"

namespace mugai {

// The [documents] section of the configuration. The limits go to the
// workers, which refuse early with a finding, and are enforced here on what
// they send back.
struct FlattenOptions {
  double dpi = 150;                          // (0, 600]
  uint32_t max_pages = 1000;                 // limit.pages
  uint64_t max_page_pixels = 40'000'000;     // limit.pixels; A0 at 150 DPI fits
  uint32_t max_page_side = 10'000;           // limit.pixels; as Dangerzone
  uint64_t max_total_pixels = 1'000'000'000; // limit.pixels; ~450 A4 pages at 150 DPI
  unsigned workers = 4;  // at most this many workers render one document
  PageEncodingOptions encoding;
};

struct FlattenedDocument {
  // kOk unless a worker failed (its cause in `detail`); a worker that
  // breaks the limits of `render` is a kViolation.
  JobStatus status = JobStatus::kOk;
  std::string detail;
  // Set when encoding or writing failed on this side (a bug or no memory):
  // the item cannot be finished.
  std::string internal_error;
  // What the workers reported, each distinct finding once.
  std::vector<v1::worker::WorkerFinding> findings;
  std::string pdf;  // empty unless at least one page was rendered
  uint32_t pages = 0;
  std::map<std::string, uint32_t> encodings;  // pages per EncodedPage::encoding
};

// `job` names the converter and carries the document; its render options
// are set from `options`. Thread-safe.
FlattenedDocument FlattenDocument(WorkerPool& pool, const v1::worker::Job& job, const FlattenOptions& options,
                                  Deadline deadline);

}  // namespace mugai
