// The data directory's own files: made private to mugaid and durable
// before anything relies on them.
#pragma once

#include <filesystem>

namespace mugai {

// Creates `dir` with mode 0700 unless it already exists as a directory, and
// makes a newly created entry durable (fsync of the parent). The parent must
// exist. Throws StoreError.
void EnsurePrivateDirectory(const std::filesystem::path& dir);

// fsync(2) of a directory, so that entries just created, renamed or removed
// in it survive a crash. Throws StoreError.
void SyncDirectory(const std::filesystem::path& dir);

}  // namespace mugai
