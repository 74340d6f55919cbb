// Content-addressed blob directory: each blob lives at
// <root>/<first two hex digits>/<sha256 hex>, so identical originals are kept
// once however many items share them. The owning item store (SQLite now,
// PostgreSQL later) records which items reference a blob and decides when it
// may be removed.
//
// Durability: Put() returns only after the blob is on disk under its final
// name (temporary file in <root>/tmp, fsync, rename, directory fsync), so a
// crash leaves either no blob or a complete one, never a partial file under
// a content address.
//
// Safe to call from several threads, except that the owner must not run
// Remove() concurrently with a Put() of the same digest: Put() keeps an
// existing identical blob, which the Remove() could then delete.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "service/store/item_store.h"  // StoreError

namespace mugai {

// Creates `dir` with mode 0700 unless it already exists as a directory, and
// makes a newly created entry durable (fsync of the parent). The parent must
// exist. Throws StoreError.
void EnsurePrivateDirectory(const std::filesystem::path& dir);

class BlobStore {
 public:
  // Creates <root> and <root>/tmp if missing. Throws StoreError.
  explicit BlobStore(std::filesystem::path root);

  // Stores `bytes` under `sha256`, their lowercase hex SHA-256 (checked, so a
  // wrong digest cannot produce a blob that fails verification later). An
  // existing identical blob is kept; one whose content no longer matches its
  // name (corruption, tampering) is replaced. Throws StoreError.
  void Put(std::string_view sha256, std::string_view bytes);

  // The blob's bytes, verified against `sha256`; nullopt when there is no
  // such blob. Throws StoreError on a mismatch or an I/O error.
  std::optional<std::string> Get(std::string_view sha256) const;

  // Removes the blob durably; an absent blob is not an error. Throws
  // StoreError.
  void Remove(std::string_view sha256);

 private:
  // Throws StoreError unless `sha256` is 64 lowercase hex digits, so a digest
  // can never name a path outside the blob directory.
  std::filesystem::path PathOf(std::string_view sha256) const;

  std::filesystem::path root_;
};

}  // namespace mugai
