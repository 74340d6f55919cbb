// Durable record of every item's outcome, and the quarantine: the originals
// of items that were held, content-addressed by SHA-256 under the data
// directory, with item metadata in SQLite (WAL, synchronous=FULL).
//
// Durability contract: Record() returns only after the blob (written to a
// temporary file, fsync'd, renamed, directory fsync'd) and the row
// (committed) are on disk. A crash at any point leaves either no record or
// a complete one; an orphaned blob is harmless.
//
// Thread-safe.
#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "mugai/v1/admin.pb.h"
#include "mugai/v1/report.pb.h"

namespace mugai {

class StoreError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class ItemStore {
 public:
  // Opens (creating if needed) <data_dir>/mugai.db and <data_dir>/blobs/.
  static std::unique_ptr<ItemStore> Open(const std::filesystem::path& data_dir);
  virtual ~ItemStore() = default;

  struct Stamp {
    std::string id;
    std::string received_at;  // RFC 3339 UTC
  };
  // An id (and time) for an item whose derivative must carry its id before
  // it is recorded: a rebuilt message names it in X-Mugai-Id. Ids issued
  // here and by Record() are unique and increase.
  virtual Stamp Reserve() = 0;

  // Stores `original` (when not null) and the report, durably, with
  // report->item_id and report->received_at as Reserve() gave them, or, when
  // item_id is empty, new ones (set in `report`). Throws StoreError.
  virtual void Record(v1::Report* report, const std::string* original) = 0;

  // Items whose outcome is "quarantined", newest first; paging by id.
  virtual std::vector<v1::QuarantineItem> ListQuarantined(size_t limit,
                                                          std::string_view before_id) = 0;
  // One quarantined item, with its report.
  virtual std::optional<v1::QuarantineItem> GetQuarantined(std::string_view id) = 0;
  // The original bytes, verified against the recorded SHA-256 (throws
  // StoreError on a mismatch).
  virtual std::optional<std::string> ReadOriginal(std::string_view id) = 0;
  // Deletes the item and its blob when no other item shares it. False when
  // there is no such quarantined item.
  virtual bool DeleteQuarantined(std::string_view id) = 0;
};

}  // namespace mugai
