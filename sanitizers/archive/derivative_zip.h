// Trusted side: the zip an archive is delivered as. It holds only what the
// daemon made itself (the members' derivatives and its notice), so it is
// written here, with libarchive's writer, never by a worker. Every entry is
// a regular file with a UTF-8 name (the zip's UTF-8 flag set), mode 0644
// and one fixed time; there are no directories, links or extra metadata.
#pragma once

#include <string>
#include <string_view>

#include "sanitizers/archive/archive_handles.h"

namespace mugai {

class DerivativeZip {
 public:
  // Throws std::runtime_error when libarchive cannot start a zip.
  DerivativeZip();

  // Adds `bytes`, deflated, at `path`: a relative path of safe components
  // joined by "/" (MakeSafePath), not yet in the zip. (libarchive takes the
  // method for the whole zip, so PNG, JPEG and PDF derivatives, compressed
  // already, are deflated too: it costs little and gains nothing.) Throws
  // std::runtime_error.
  void Add(std::string_view path, std::string_view bytes);

  // The finished zip. Throws std::runtime_error.
  std::string Finish() &&;

 private:
  std::string bytes_;
  ArchiveWriter writer_;
};

}  // namespace mugai
