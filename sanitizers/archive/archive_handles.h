// Owning handles for libarchive's reader and writer (they are freed by
// different functions).
#pragma once

#include <archive.h>

#include <memory>

namespace mugai {

struct ArchiveReadFree {
  void operator()(archive* a) const { archive_read_free(a); }
};
struct ArchiveWriteFree {
  void operator()(archive* a) const { archive_write_free(a); }
};

using ArchiveReader = std::unique_ptr<archive, ArchiveReadFree>;
using ArchiveWriter = std::unique_ptr<archive, ArchiveWriteFree>;

}  // namespace mugai
