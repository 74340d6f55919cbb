#include "sanitizers/pipeline/document_flattener.h"

#include <algorithm>
#include <atomic>
#include <exception>
#include <mutex>
#include <optional>
#include <set>
#include <thread>
#include <utility>

#include "sanitizers/pdf/flattened_pdf.h"

namespace mugai {
namespace {

// The state the shards of one document share.
class Assembly {
 public:
  Assembly(const FlattenOptions& options, unsigned shards)
      : options_(options), shards_(shards), writer_(options.dpi) {}

  // Takes shard `shard`'s next record; false stops that shard's job.
  bool Take(unsigned shard, uint32_t& shard_pages, v1::worker::Record record) {
    if (failed_) return false;
    if (record.has_finding()) {
      std::lock_guard lock(mutex_);
      if (seen_.insert({record.finding().code(), record.finding().reason()}).second) {
        result_.findings.push_back(std::move(*record.mutable_finding()));
      }
      return true;
    }
    if (!record.has_pixels()) return true;  // the validator admits pixels and findings only
    const uint32_t index = shard + shard_pages++ * shards_;
    const v1::worker::Pixels& pixels = record.pixels();
    const uint64_t page_pixels = uint64_t{pixels.width()} * pixels.height();
    if (std::max(pixels.width(), pixels.height()) > options_.max_page_side) {
      return Fail(JobStatus::kViolation, "the workers sent a page of " + std::to_string(pixels.width()) + " x " +
                                             std::to_string(pixels.height()) + " pixels, over the limit of " +
                                             std::to_string(options_.max_page_side) + " a side");
    }
    if (std::optional<std::string> breach = CheckLimits(index, page_pixels)) {
      return Fail(JobStatus::kViolation, *breach);
    }
    try {
      EncodedPage page = EncodePage({pixels.width(), pixels.height(), pixels.channels(), pixels.data()},
                                    options_.encoding);
      record.Clear();  // the pixels are no longer needed
      std::lock_guard lock(mutex_);
      pending_.emplace(index, std::move(page));
      for (auto next = pending_.begin(); next != pending_.end() && next->first == writer_.pages();
           next = pending_.erase(next)) {
        ++result_.encodings[std::string(next->second.encoding)];
        writer_.AddPage(std::move(next->second));
      }
      return true;
    } catch (const std::exception& e) {
      std::lock_guard lock(mutex_);
      if (result_.internal_error.empty()) result_.internal_error = std::string("cannot encode a page: ") + e.what();
      failed_ = true;
      return false;
    }
  }

  // A shard's job ended with `result` (records already taken).
  void Ended(const JobResult& result) {
    if (result.status == JobStatus::kOk || result.status == JobStatus::kAbandoned) return;
    Fail(result.status, result.detail);
  }

  FlattenedDocument Finish() {
    FlattenedDocument result = std::move(result_);
    if (result.status != JobStatus::kOk || !result.internal_error.empty()) return result;
    if (!pending_.empty()) {
      result.status = JobStatus::kViolation;
      result.detail = "the workers' pages have a gap before page " + std::to_string(pending_.begin()->first + 1);
      return result;
    }
    result.pages = static_cast<uint32_t>(writer_.pages());
    if (result.pages == 0) return result;
    try {
      result.pdf = writer_.Finish();
    } catch (const std::exception& e) {
      result.internal_error = std::string("cannot write the flattened PDF: ") + e.what();
    }
    return result;
  }

 private:
  std::optional<std::string> CheckLimits(uint32_t index, uint64_t page_pixels) {
    if (index >= options_.max_pages) return "the workers sent more than " + std::to_string(options_.max_pages) + " pages";
    if (page_pixels > options_.max_page_pixels) {
      return "the workers sent a page of " + std::to_string(page_pixels) + " pixels, over the limit of " +
             std::to_string(options_.max_page_pixels);
    }
    if ((total_pixels_ += page_pixels) > options_.max_total_pixels) {
      return "the workers sent more than " + std::to_string(options_.max_total_pixels) + " pixels in all";
    }
    return std::nullopt;
  }

  bool Fail(JobStatus status, const std::string& detail) {
    std::lock_guard lock(mutex_);
    if (result_.status == JobStatus::kOk) {
      result_.status = status;
      result_.detail = detail;
    }
    failed_ = true;
    return false;
  }

  const FlattenOptions& options_;
  const unsigned shards_;
  std::atomic<bool> failed_ = false;
  std::atomic<uint64_t> total_pixels_ = 0;
  std::mutex mutex_;  // guards the members below
  FlattenedPdfWriter writer_;
  std::map<uint32_t, EncodedPage> pending_;  // encoded, waiting for an earlier page
  std::set<std::pair<std::string, std::string>> seen_;
  FlattenedDocument result_;
};

}  // namespace

FlattenedDocument FlattenDocument(WorkerPool& pool, const v1::worker::Job& job, const FlattenOptions& options,
                                  Deadline deadline) {
  // Even under load: a shard waits for a worker like any job, holds none
  // while it waits, and a long document otherwise finishes last on one
  // worker while the others fall idle (measured in tests/bench/pdf_bench.py:
  // starting only as many shards as there were idle workers was slower).
  const unsigned shards = std::clamp(options.workers, 1u, std::max(1u, pool.size()));
  Assembly assembly(options, shards);
  auto run_shard = [&](unsigned shard) {
    v1::worker::Job shard_job = job;
    v1::worker::RenderOptions* render = shard_job.mutable_render();
    render->set_dpi(options.dpi);
    render->set_max_pages(options.max_pages);
    render->set_max_page_pixels(options.max_page_pixels);
    render->set_max_total_pixels(options.max_total_pixels);
    render->set_max_page_side(options.max_page_side);
    render->set_page_shard(shard);
    render->set_page_shards(shards);
    uint32_t shard_pages = 0;
    JobResult result = pool.Run(std::move(shard_job), deadline, kPixelRecords, [&](v1::worker::Record record) {
      return assembly.Take(shard, shard_pages, std::move(record));
    });
    assembly.Ended(result);
  };
  std::vector<std::jthread> helpers;
  for (unsigned shard = 1; shard < shards; ++shard) helpers.emplace_back(run_shard, shard);
  run_shard(0);
  helpers.clear();  // joins
  return assembly.Finish();
}

}  // namespace mugai
