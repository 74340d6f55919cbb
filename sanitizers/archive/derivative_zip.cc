#include "sanitizers/archive/derivative_zip.h"

#include <archive_entry.h>

#include <memory>
#include <stdexcept>

namespace mugai {
namespace {

struct EntryFree {
  void operator()(archive_entry* e) const { archive_entry_free(e); }
};

// 2000-01-01: derivatives carry no time of their own (a zip cannot say 1970).
constexpr time_t kEntryTime = 946'684'800;

la_ssize_t AppendToString(archive*, void* client, const void* buffer, size_t length) {
  static_cast<std::string*>(client)->append(static_cast<const char*>(buffer), length);
  return static_cast<la_ssize_t>(length);
}

void Check(archive* a, int rc, const char* what) {
  if (rc == ARCHIVE_OK) return;
  const char* error = archive_error_string(a);
  throw std::runtime_error(std::string("writing the zip: ") + what + ": " + (error ? error : "failed"));
}

}  // namespace

DerivativeZip::DerivativeZip() : writer_(archive_write_new()) {
  if (!writer_) throw std::runtime_error("writing the zip: out of memory");
  archive* a = writer_.get();
  Check(a, archive_write_set_format_zip(a), "format");
  // Names are given as UTF-8; this makes libarchive store them as such and
  // set the flag that tells unzip tools so (Windows would read CP932 otherwise).
  Check(a, archive_write_set_options(a, "zip:hdrcharset=UTF-8,zip:compression=deflate"), "options");
  Check(a, archive_write_set_bytes_in_last_block(a, 1), "block size");
  Check(a, archive_write_open(a, &bytes_, nullptr, AppendToString, nullptr), "open");
}

void DerivativeZip::Add(std::string_view path, std::string_view bytes) {
  archive* a = writer_.get();
  std::unique_ptr<archive_entry, EntryFree> entry(archive_entry_new());
  if (!entry) throw std::runtime_error("writing the zip: out of memory");
  archive_entry_set_pathname_utf8(entry.get(), std::string(path).c_str());
  archive_entry_set_filetype(entry.get(), AE_IFREG);
  archive_entry_set_perm(entry.get(), 0644);
  archive_entry_set_size(entry.get(), static_cast<la_int64_t>(bytes.size()));
  archive_entry_set_mtime(entry.get(), kEntryTime, 0);
  Check(a, archive_write_header(a, entry.get()), "header");
  if (!bytes.empty() && archive_write_data(a, bytes.data(), bytes.size()) != static_cast<la_ssize_t>(bytes.size())) {
    Check(a, ARCHIVE_FATAL, "data");
  }
  Check(a, archive_write_finish_entry(a), "entry");
}

std::string DerivativeZip::Finish() && {
  Check(writer_.get(), archive_write_close(writer_.get()), "close");
  writer_.reset();
  return std::move(bytes_);
}

}  // namespace mugai
