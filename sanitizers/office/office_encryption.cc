#include "sanitizers/office/office_encryption.h"

#include <archive_entry.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "sanitizers/archive/archive_handles.h"

namespace mugai {
namespace {

constexpr std::string_view kCfbMagic("\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1", 8);
constexpr uint32_t kEndOfChain = 0xFFFFFFFE;
constexpr uint32_t kMaxRegularSector = 0xFFFFFFFA;

uint16_t U16(std::string_view b, size_t at) {
  return at + 2 <= b.size() ? static_cast<uint16_t>(static_cast<uint8_t>(b[at]) | static_cast<uint8_t>(b[at + 1]) << 8)
                            : 0;
}
uint32_t U32(std::string_view b, size_t at) {
  return at + 4 <= b.size() ? static_cast<uint32_t>(U16(b, at)) | static_cast<uint32_t>(U16(b, at + 2)) << 16 : 0;
}

struct Entry {
  std::string name;  // ASCII names only; others stay empty
  uint8_t type = 0;  // 2 stream, 5 root
  uint32_t start = 0;
  uint64_t size = 0;
};

// Just enough of MS-CFB to list the directory and read the start of a stream.
class CompoundFile {
 public:
  // False when the header or the tables are not those of a Compound File.
  bool Open(std::string_view file) {
    file_ = file;
    if (!file.starts_with(kCfbMagic) || file.size() < 512) return false;
    const uint16_t shift = U16(file, 0x1E);
    mini_shift_ = U16(file, 0x20);
    if ((shift != 9 && shift != 12) || mini_shift_ != 6) return false;
    sector_size_ = size_t{1} << shift;
    sectors_ = file.size() / sector_size_;  // bounds every chain
    mini_cutoff_ = U32(file, 0x38);

    // The FAT's own sectors: 109 in the header, then the DIFAT chain.
    std::vector<uint32_t> fat_sectors;
    const uint32_t fat_count = U32(file, 0x2C);
    if (fat_count > sectors_) return false;
    for (size_t i = 0; i < 109 && fat_sectors.size() < fat_count; ++i) fat_sectors.push_back(U32(file, 0x4C + 4 * i));
    uint32_t difat = U32(file, 0x44);
    for (size_t hops = 0; fat_sectors.size() < fat_count && difat <= kMaxRegularSector; ++hops) {
      if (hops > sectors_ || !SectorOk(difat)) return false;
      const size_t base = Offset(difat);
      const size_t per = sector_size_ / 4 - 1;
      for (size_t i = 0; i < per && fat_sectors.size() < fat_count; ++i) fat_sectors.push_back(U32(file, base + 4 * i));
      difat = U32(file, base + 4 * per);
    }
    for (uint32_t s : fat_sectors) {
      if (!SectorOk(s)) return false;
      for (size_t i = 0; i < sector_size_ / 4; ++i) fat_.push_back(U32(file, Offset(s) + 4 * i));
    }

    std::string dir = ReadChain(fat_, U32(file, 0x30), SIZE_MAX, false);
    for (size_t at = 0; at + 128 <= dir.size(); at += 128) entries_.push_back(ParseEntry(dir.substr(at, 128)));
    if (entries_.empty() || entries_[0].type != 5) return false;
    minifat_ = ToU32s(ReadChain(fat_, U32(file, 0x3C), SIZE_MAX, false));
    return true;
  }

  const Entry* Find(std::string_view name) const {
    for (const Entry& e : entries_) {
      if (e.type == 2 && e.name == name) return &e;
    }
    return nullptr;
  }

  // Up to `max_bytes` of a stream's start.
  std::string Read(const Entry& e, size_t max_bytes) {
    const size_t want = static_cast<size_t>(std::min<uint64_t>(e.size, max_bytes));
    if (e.size >= mini_cutoff_) return ReadChain(fat_, e.start, want, false);
    if (mini_stream_.empty()) mini_stream_ = ReadChain(fat_, entries_[0].start, SIZE_MAX, false);
    return ReadChain(minifat_, e.start, want, true);
  }

 private:
  bool SectorOk(uint32_t s) const { return s <= kMaxRegularSector && Offset(s) + sector_size_ <= file_.size(); }
  size_t Offset(uint32_t s) const { return (size_t{s} + 1) * sector_size_; }

  // Follows a chain of `table`, in the file (or in the mini stream).
  std::string ReadChain(const std::vector<uint32_t>& table, uint32_t s, size_t max_bytes, bool mini) const {
    std::string out;
    const size_t unit = mini ? size_t{1} << mini_shift_ : sector_size_;
    const std::string_view from = mini ? std::string_view(mini_stream_) : file_;
    for (size_t hops = 0; s <= kMaxRegularSector && out.size() < max_bytes; ++hops) {
      const size_t at = mini ? size_t{s} * unit : Offset(s);
      if (hops > table.size() || s >= table.size() || at + unit > from.size()) break;
      out.append(from.substr(at, std::min(unit, max_bytes - out.size())));
      s = table[s];
    }
    return out;
  }

  static std::vector<uint32_t> ToU32s(std::string_view b) {
    std::vector<uint32_t> v;
    for (size_t at = 0; at + 4 <= b.size(); at += 4) v.push_back(U32(b, at));
    return v;
  }

  static Entry ParseEntry(std::string_view raw) {
    Entry e;
    const size_t name_bytes = std::min<size_t>(U16(raw, 0x40), 64);
    for (size_t i = 0; i + 2 <= name_bytes; i += 2) {
      const uint16_t c = U16(raw, i);
      if (c == 0) break;
      if (c >= 0x80) {
        e.name.clear();
        break;
      }
      e.name.push_back(static_cast<char>(c));
    }
    e.type = static_cast<uint8_t>(raw[0x42]);
    e.start = U32(raw, 0x74);
    e.size = U32(raw, 0x78) | static_cast<uint64_t>(U32(raw, 0x7C)) << 32;
    return e;
  }

  std::string_view file_;
  size_t sector_size_ = 512;
  uint16_t mini_shift_ = 6;
  size_t sectors_ = 0;
  uint32_t mini_cutoff_ = 4096;
  std::vector<uint32_t> fat_, minifat_;
  std::vector<Entry> entries_;
  std::string mini_stream_;
};

// BIFF5/8: FILEPASS (0x002F) comes right after BOF in the globals
// substream; the scan stops at that substream's EOF (0x000A).
bool HasFilePass(std::string_view workbook) {
  for (size_t at = 0; at + 4 <= workbook.size();) {
    const uint16_t type = U16(workbook, at);
    if (type == 0x002F) return true;
    if (type == 0x000A) return false;
    at += 4 + U16(workbook, at + 2);
  }
  return false;
}

// An OpenDocument file is a zip whose META-INF/manifest.xml lists the
// members; a password-protected one gives each encrypted member an
// <manifest:encryption-data> element (ODF 1.2, part 3, 4.8). libarchive
// reads the zip; the manifest is bounded before it is read.
bool IsEncryptedOpenDocument(std::string_view content) {
  constexpr la_int64_t kMaxManifestBytes = 1 << 20;
  ArchiveReader zip(archive_read_new());
  if (!zip || archive_read_support_format_zip(zip.get()) != ARCHIVE_OK ||
      archive_read_open_memory(zip.get(), content.data(), content.size()) != ARCHIVE_OK) {
    return false;
  }
  archive_entry* entry = nullptr;
  while (archive_read_next_header(zip.get(), &entry) == ARCHIVE_OK) {
    if (std::string_view(archive_entry_pathname(entry) ? archive_entry_pathname(entry) : "") !=
        "META-INF/manifest.xml") {
      continue;
    }
    if (archive_entry_size(entry) > kMaxManifestBytes) return false;
    std::string manifest(static_cast<size_t>(kMaxManifestBytes), '\0');
    const la_ssize_t read = archive_read_data(zip.get(), manifest.data(), manifest.size());
    if (read <= 0) return false;
    manifest.resize(static_cast<size_t>(read));
    return manifest.find(":encryption-data") != std::string::npos;
  }
  return false;
}

}  // namespace

std::optional<std::string> DescribeOfficeEncryption(std::string_view content) {
  if (IsEncryptedOpenDocument(content)) {
    return "an OpenDocument file protected with a password (encryption-data in its manifest)";
  }
  CompoundFile cfb;
  if (!cfb.Open(content)) return std::nullopt;
  if (cfb.Find("EncryptionInfo") && cfb.Find("EncryptedPackage")) {
    return "an Office Open XML document protected with a password (EncryptionInfo and EncryptedPackage in a "
           "Compound File)";
  }
  if (const Entry* word = cfb.Find("WordDocument")) {
    const std::string fib = cfb.Read(*word, 12);
    // FibBase: wIdent 0xA5EC, then fEncrypted (bit 8) and fObfuscated
    // (bit 15, XOR) in the flags at offset 0x0A.
    if (U16(fib, 0) == 0xA5EC && (U16(fib, 0x0A) & 0x8100) != 0) {
      return std::string("a Word 97-2003 document protected with a password (") +
             ((U16(fib, 0x0A) & 0x8000) ? "XOR obfuscation" : "RC4 encryption") + ")";
    }
  }
  for (std::string_view name : {"Workbook", "Book"}) {
    if (const Entry* book = cfb.Find(name); book && HasFilePass(cfb.Read(*book, 1 << 20))) {
      return "an Excel 97-2003 workbook protected with a password (FILEPASS record)";
    }
  }
  if (const Entry* user = cfb.Find("Current User")) {
    // CurrentUserAtom: an 8-byte record header, its size, then headerToken.
    if (U32(cfb.Read(*user, 16), 12) == 0xF3D1C4DF || cfb.Find("EncryptedSummary")) {
      return "a PowerPoint 97-2003 presentation protected with a password (encrypted CurrentUserAtom)";
    }
  }
  return std::nullopt;
}

}  // namespace mugai
