#include "sanitizers/archive/archive_converter.h"

#include <archive.h>
#include <archive_entry.h>
#include <iconv.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdint>
#include <new>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "sanitizers/archive/archive_handles.h"
#include "sanitizers/core/findings.h"

namespace mugai {
namespace {

using Clock = std::chrono::steady_clock;

// Limits are checked after every block, so this bounds the overshoot.
constexpr size_t kBlockBytes = 64 << 10;

// Length of the well-formed UTF-8 sequence at the start of `s` (RFC 3629:
// no overlongs, surrogates or code points past U+10FFFF), or 0.
size_t Utf8SequenceLength(std::string_view s) {
  const auto byte = [&](size_t i) { return static_cast<unsigned char>(s[i]); };
  const unsigned char c = byte(0);
  if (c < 0x80) return 1;
  size_t tail;
  unsigned char lo = 0x80, hi = 0xBF;
  if (c >= 0xC2 && c <= 0xDF) {
    tail = 1;
  } else if (c >= 0xE0 && c <= 0xEF) {
    tail = 2;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    tail = 3;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
  } else {
    return 0;
  }
  if (s.size() <= tail || byte(1) < lo || byte(1) > hi) return 0;
  for (size_t i = 2; i <= tail; ++i) {
    if ((byte(i) & 0xC0) != 0x80) return 0;
  }
  return tail + 1;
}

bool IsValidUtf8(std::string_view s) {
  while (!s.empty()) {
    const size_t n = Utf8SequenceLength(s);
    if (n == 0) return false;
    s.remove_prefix(n);
  }
  return true;
}

// Every byte that does not start a well-formed sequence becomes U+FFFD.
std::string ReplaceInvalidUtf8(std::string_view s) {
  std::string out;
  while (!s.empty()) {
    const size_t n = Utf8SequenceLength(s);
    if (n == 0) {
      out += "\xEF\xBF\xBD";
      s.remove_prefix(1);
    } else {
      out.append(s.substr(0, n));
      s.remove_prefix(n);
    }
  }
  return out;
}

// U+FF61..U+FF9F: rare in real names, common when EUC-JP bytes are read as
// CP932 (its 0xA1..0xDF single bytes), so the tie-breaker between the two.
size_t HalfWidthKatakana(std::string_view utf8) {
  size_t count = 0;
  for (size_t i = 0; i + 2 < utf8.size(); ++i) {
    const auto b1 = static_cast<unsigned char>(utf8[i + 1]);
    const auto b2 = static_cast<unsigned char>(utf8[i + 2]);
    if (static_cast<unsigned char>(utf8[i]) != 0xEF) continue;
    if ((b1 == 0xBD && b2 >= 0xA1 && b2 <= 0xBF) || (b1 == 0xBE && b2 >= 0x80 && b2 <= 0x9F)) ++count;
  }
  return count;
}

// A strict conversion to UTF-8: a byte sequence the charset does not define
// fails the whole string, so a wrong guess is never half right.
class Iconv {
 public:
  explicit Iconv(const char* from) : cd_(iconv_open("UTF-8", from)) {}
  ~Iconv() {
    if (ok()) iconv_close(cd_);
  }
  Iconv(const Iconv&) = delete;
  Iconv& operator=(const Iconv&) = delete;

  std::optional<std::string> ToUtf8(std::string_view in) const {
    if (!ok()) return std::nullopt;
    iconv(cd_, nullptr, nullptr, nullptr, nullptr);
    std::string out(in.size() * 4 + 8, '\0');  // no Japanese charset needs more
    char* src = const_cast<char*>(in.data());  // iconv's signature; not written
    size_t src_left = in.size();
    char* dst = out.data();
    size_t dst_left = out.size();
    if (iconv(cd_, &src, &src_left, &dst, &dst_left) == static_cast<size_t>(-1) ||
        iconv(cd_, nullptr, nullptr, &dst, &dst_left) == static_cast<size_t>(-1)) {
      return std::nullopt;
    }
    out.resize(out.size() - dst_left);
    return out;
  }

 private:
  bool ok() const { return cd_ != reinterpret_cast<iconv_t>(-1); }

  iconv_t cd_;
};

// Names that are not UTF-8 are, in practice, Japanese from Windows (CP932)
// or from old Unix systems (EUC-JP). One archive's names share a charset:
// once a name has shown it, a name that is valid UTF-8 only by accident is
// read in it too (EUC-JP's 表, C9 BD, is also UTF-8's "ɽ").
class NameDecoder {
 public:
  std::string ToUtf8(std::string_view name) {
    if (IsValidUtf8(name)) {
      std::optional<std::string> legacy;
      if (legacy_ != nullptr && OnlyTwoByteSequences(name)) legacy = legacy_->ToUtf8(name);
      return legacy ? *legacy : std::string(name);
    }
    std::optional<std::string> cp932 = cp932_.ToUtf8(name);
    std::optional<std::string> eucjp = eucjp_.ToUtf8(name);
    if (eucjp && (!cp932 || HalfWidthKatakana(*eucjp) < HalfWidthKatakana(*cp932))) {
      legacy_ = &eucjp_;
      return *eucjp;
    }
    if (cp932) {
      legacy_ = &cp932_;
      return *cp932;
    }
    return ReplaceInvalidUtf8(name);
  }

  // libarchive's own form of a name (converted to the locale's charset,
  // UTF-8, where the format says what the name's charset is; the stored
  // bytes where it does not), else its UTF-8 form.
  std::string ToUtf8(const char* native, const char* utf8) {
    if (native != nullptr) return ToUtf8(native);
    return utf8 != nullptr ? ToUtf8(utf8) : std::string();
  }

 private:
  // Non-ASCII, and all of it U+0080..U+07FF: the only UTF-8 that pairs of
  // CP932 or EUC-JP bytes form often. Real Japanese UTF-8 takes 3 bytes a
  // character, and is never reinterpreted.
  static bool OnlyTwoByteSequences(std::string_view utf8) {
    bool non_ascii = false;
    for (char c : utf8) {
      const auto b = static_cast<unsigned char>(c);
      if (b >= 0xE0) return false;
      non_ascii = non_ascii || b >= 0x80;
    }
    return non_ascii;
  }

  Iconv cp932_{"CP932"};
  Iconv eucjp_{"EUC-JP"};
  const Iconv* legacy_ = nullptr;  // the charset earlier names were in
};

// A RAR5 file header's extra area can hold a file encryption record, which
// libarchive 3.6.2's reader skips (and then fails on the ciphertext), so it
// is looked for here: from `offset` (where libarchive started reading the
// entry's headers) through the blocks up to the first file header. Header
// encryption (block type 4) counts too. Anything malformed is left to
// libarchive to report.
bool Rar5Encrypted(std::string_view content, uint64_t offset) {
  constexpr std::string_view kSignature("Rar!\x1a\x07\x01\x00", 8);
  if (offset > content.size()) return false;
  std::string_view s = content.substr(offset);
  if (s.starts_with(kSignature)) s.remove_prefix(kSignature.size());
  const auto vint = [](std::string_view& in) -> std::optional<uint64_t> {
    uint64_t value = 0;
    for (int shift = 0; shift < 64 && !in.empty(); shift += 7) {
      const auto b = static_cast<unsigned char>(in.front());
      in.remove_prefix(1);
      value |= uint64_t{b & 0x7Fu} << shift;
      if ((b & 0x80) == 0) return value;
    }
    return std::nullopt;
  };
  constexpr uint64_t kFile = 2, kEncryption = 4, kFileEncryptionRecord = 1;
  constexpr uint64_t kHasExtra = 0x1, kHasData = 0x2;
  for (int block = 0; block < 64 && s.size() > 4; ++block) {
    s.remove_prefix(4);  // CRC32
    std::optional<uint64_t> size = vint(s);
    if (!size || *size > s.size()) return false;
    std::string_view header = s.substr(0, *size);
    s.remove_prefix(*size);
    std::optional<uint64_t> type = vint(header), flags = vint(header);
    if (!type || !flags) return false;
    if (*type == kEncryption) return true;
    std::optional<uint64_t> extra = (*flags & kHasExtra) ? vint(header) : uint64_t{0};
    std::optional<uint64_t> data = (*flags & kHasData) ? vint(header) : uint64_t{0};
    if (!extra || !data || *extra > header.size()) return false;
    if (*type == kFile) {
      std::string_view records = header.substr(header.size() - *extra);
      while (!records.empty()) {
        std::optional<uint64_t> record_size = vint(records);
        if (!record_size || *record_size > records.size()) return false;
        std::string_view record = records.substr(0, *record_size);
        records.remove_prefix(*record_size);
        if (vint(record) == kFileEncryptionRecord) return true;
      }
      return false;
    }
    if (*data > s.size()) return false;
    s.remove_prefix(*data);
  }
  return false;
}

// A zip the seekable reader did not take: PKWARE strong encryption can
// encrypt the central directory, and then only the first local header's
// flags (bit 0, encrypted) tell what it is.
bool ZipWithEncryptedDirectory(std::string_view content) {
  if (!content.starts_with("PK\x03\x04") || content.size() < 8) return false;
  return (static_cast<unsigned char>(content[6]) & 0x01) != 0;
}

// The claimed name without its compressor's suffix: "report.txt.gz" holds
// "report.txt".
std::string RawMemberName(std::string_view claimed) {
  static constexpr std::string_view kSuffixes[] = {".gz", ".bz2", ".xz", ".lzma", ".zst", ".lz", ".lz4", ".Z"};
  for (std::string_view suffix : kSuffixes) {
    if (claimed.size() <= suffix.size()) continue;
    std::string_view tail = claimed.substr(claimed.size() - suffix.size());
    bool same = true;
    for (size_t i = 0; i < tail.size(); ++i) {
      same = same && std::tolower(static_cast<unsigned char>(tail[i])) ==
                         std::tolower(static_cast<unsigned char>(suffix[i]));
    }
    if (same) return std::string(claimed.substr(0, claimed.size() - suffix.size()));
  }
  return "data";
}

std::string Error(archive* a, std::string_view what) {
  const char* detail = archive_error_string(a);
  return std::string(what) + ": " + (detail != nullptr ? detail : "libarchive error");
}

// The single compression layer around the archive, by its magic bytes (the
// tests libarchive's own bidders make), or ARCHIVE_FILTER_NONE.
int OuterFilter(std::string_view s) {
  static constexpr std::pair<std::string_view, int> kMagic[] = {
      {std::string_view("\x1f\x8b\x08", 3), ARCHIVE_FILTER_GZIP},
      {std::string_view("\xfd\x37\x7a\x58\x5a\x00", 6), ARCHIVE_FILTER_XZ},
      {"LZIP", ARCHIVE_FILTER_LZIP},
      {"\x28\xb5\x2f\xfd", ARCHIVE_FILTER_ZSTD},
      {"\x04\x22\x4d\x18", ARCHIVE_FILTER_LZ4},
      {"\x02\x21\x4c\x18", ARCHIVE_FILTER_LZ4},  // the legacy frame
      {"\x1f\x9d", ARCHIVE_FILTER_COMPRESS}};
  for (const auto& [magic, filter] : kMagic) {
    if (s.starts_with(magic)) return filter;
  }
  if (s.size() >= 10 && s.starts_with("BZh") && s[3] >= '1' && s[3] <= '9' &&
      (s.substr(4, 6) == "\x31\x41\x59\x26\x53\x59" || s.substr(4, 6) == "\x17\x72\x45\x38\x50\x90")) {
    return ARCHIVE_FILTER_BZIP2;
  }
  // .lzma has no magic: the usual properties byte, a dictionary size of
  // 2^n or 2^n + 2^(n-1), and the stream's first byte, always 0.
  if (s.size() >= 14 && static_cast<unsigned char>(s[0]) == 0x5D && s[13] == 0) {
    uint32_t dictionary = 0;
    for (int i = 4; i >= 1; --i) dictionary = dictionary << 8 | static_cast<unsigned char>(s[i]);
    for (int n = 12; n <= 30; ++n) {
      if (dictionary == 1u << n || dictionary == (1u << n) + (1u << (n - 1))) return ARCHIVE_FILTER_LZMA;
    }
  }
  return ARCHIVE_FILTER_NONE;
}

// Only in-process decoders: libarchive falls back to exec'ing gzip, xz and
// the like when it was built without a library, which the sandbox forbids,
// and mtree is left out because it opens the files it lists. Only one
// compression layer is undone, chosen here rather than by libarchive's
// bidders, which stack filters on their own and take minutes over a gzip
// quine (3.6.2); a compressed compressed file is one child, compressed,
// for the daemon to recurse into under its depth limit.
ArchiveReader OpenReader(std::string_view content) {
  ArchiveReader reader(archive_read_new());
  if (!reader) throw std::bad_alloc();
  archive* a = reader.get();
  // compress's decoder reads its header as it is set up, before there is
  // input to read, so that one is left to bid (against itself only).
  const int filter = OuterFilter(content);
  const int r = filter == ARCHIVE_FILTER_COMPRESS ? archive_read_support_filter_compress(a)
                : filter != ARCHIVE_FILTER_NONE   ? archive_read_append_filter(a, filter)
                                                  : ARCHIVE_OK;
  if (r != ARCHIVE_OK) throw ConvertError(Error(a, "libarchive lacks a built-in decoder"));
  using Support = int (*)(archive*);
  static constexpr Support kFormats[] = {
      archive_read_support_format_zip_seekable, archive_read_support_format_7zip,
      archive_read_support_format_rar,          archive_read_support_format_rar5,
      archive_read_support_format_tar,          archive_read_support_format_cpio,
      archive_read_support_format_cab,          archive_read_support_format_lha,
      archive_read_support_format_iso9660,      archive_read_support_format_raw};
  for (Support support : kFormats) {
    if (support(a) != ARCHIVE_OK) throw ConvertError(Error(a, "libarchive lacks a reader"));
  }
  if (archive_read_open_memory(a, content.data(), content.size()) != ARCHIVE_OK) {
    throw ConvertError(Error(a, "not a readable archive"));
  }
  return reader;
}

int Format(archive* a) { return archive_format(a) & ARCHIVE_FORMAT_BASE_MASK; }

// Encryption libarchive saw so far, and that of the RAR5 entry at hand.
bool SeesEncryption(archive* a, std::string_view content) {
  return archive_read_has_encrypted_entries(a) > 0 ||
         (Format(a) == ARCHIVE_FORMAT_RAR_V5 &&
          Rar5Encrypted(content, static_cast<uint64_t>(archive_read_header_position(a))));
}

const char* SpecialFileKind(mode_t type) {
  switch (type) {
    case AE_IFBLK: return "a block device";
    case AE_IFCHR: return "a character device";
    case AE_IFIFO: return "a FIFO";
    case AE_IFSOCK: return "a socket";
    default: return "an entry of unknown type";
  }
}

// One pass over the archive, member by member.
class Unpacker {
 public:
  explicit Unpacker(const ConvertInput& input, RecordSink& sink) : input_(input), sink_(sink) {}

  // Returns when the archive ends or a finding stopped the job.
  void Run() {
    ArchiveReader reader = OpenReader(input_.content);
    archive* a = reader.get();
    const ArchiveOptions& limits = input_.archive;
    for (uint64_t entries = 1;; ++entries) {
      archive_entry* entry = nullptr;
      const int r = archive_read_next_header(a, &entry);
      if (r == ARCHIVE_EOF) return;
      if (r < ARCHIVE_WARN && r != ARCHIVE_RETRY) {
        // 7z and PKWARE strong encryption hide the headers themselves.
        if (SeesEncryption(a, input_.content)) {
          return Stop(finding::kArchiveEncrypted, "the archive's headers are encrypted");
        }
        throw ConvertError(Error(a, "unreadable archive entry"));
      }
      if (limits.max_members() != 0 && entries > limits.max_members()) {
        return Stop(finding::kLimitMembers, "more than " + std::to_string(limits.max_members()) + " entries");
      }
      if (!InTime()) return StopForTime();
      if (r == ARCHIVE_RETRY) continue;  // libarchive skipped an entry it could not read

      std::string path;
      if (Format(a) == ARCHIVE_FORMAT_RAW) {
        // The raw reader takes any bytes: it only counts when a filter
        // (a single-file compressor) recognised them.
        if (archive_filter_count(a) < 2) {
          if (ZipWithEncryptedDirectory(input_.content)) {
            return Stop(finding::kArchiveEncrypted, "the archive's headers are encrypted");
          }
          throw ConvertError("not an archive");
        }
        path = RawMemberName(input_.name);
      } else {
        path = names_.ToUtf8(archive_entry_pathname(entry), archive_entry_pathname_utf8(entry));
        // CAB separates with backslashes, which libarchive leaves alone in
        // names it cannot decode (0x5C is also a CP932 trail byte).
        if (Format(a) == ARCHIVE_FORMAT_CAB) {
          std::replace(path.begin(), path.end(), '\\', '/');
        }
      }
      if (archive_entry_is_encrypted(entry) || SeesEncryption(a, input_.content)) {
        return Stop(finding::kArchiveEncrypted, "the member \"" + path + "\" is encrypted", path);
      }

      const mode_t type = archive_entry_filetype(entry);
      const char* hardlink = archive_entry_hardlink(entry);
      if (type == AE_IFDIR) continue;
      if (type == AE_IFLNK || hardlink != nullptr) {
        const bool symbolic = hardlink == nullptr;
        const std::string target =
            symbolic ? names_.ToUtf8(archive_entry_symlink(entry), archive_entry_symlink_utf8(entry))
                     : names_.ToUtf8(hardlink, archive_entry_hardlink_utf8(entry));
        sink_.Finding(finding::kArchiveLink,
                      std::string(symbolic ? "a symbolic" : "a hard") + " link to \"" + target + "\", not followed",
                      path);
        continue;
      }
      if (type != AE_IFREG) {
        sink_.Finding(finding::kArchiveSpecialFile, std::string(SpecialFileKind(type)) + ", refused", path);
        continue;
      }
      std::optional<std::string> content = Read(a, entry, path);
      if (!content) return;
      sink_.Child(std::move(path), std::move(*content));
    }
  }

 private:
  using ArchiveOptions = v1::worker::ArchiveOptions;

  // The current member's bytes, or nullopt when a limit stopped the job:
  // every limit is checked after each block.
  std::optional<std::string> Read(archive* a, archive_entry* entry, const std::string& path) {
    // A size the header declares over a limit stops the job before a byte
    // is decompressed (a bomb that says what it is); one within them sizes
    // the buffer. Headers can lie low, so the bytes are counted anyway.
    std::string bytes;
    if (archive_entry_size_is_set(entry) && archive_entry_size(entry) > 0) {
      const auto declared = static_cast<uint64_t>(archive_entry_size(entry));
      if (OverLimit(declared, expanded_bytes_ + declared, path, "declares")) return std::nullopt;
      bytes.reserve(declared);
    }
    uint64_t member_bytes = 0;
    for (;;) {
      const size_t at = bytes.size();
      bytes.resize(at + kBlockBytes);
      const la_ssize_t n = archive_read_data(a, bytes.data() + at, kBlockBytes);
      if (n < 0) throw ConvertError(Error(a, "unreadable member \"" + path + "\""));
      bytes.resize(at + static_cast<size_t>(n));
      if (n == 0) return bytes;
      member_bytes += static_cast<uint64_t>(n);
      expanded_bytes_ += static_cast<uint64_t>(n);
      if (OverLimit(member_bytes, expanded_bytes_, path, "unpacks to")) return std::nullopt;
      if (!InTime()) {
        StopForTime();
        return std::nullopt;
      }
    }
  }

  // Stops the job when a member of `member` bytes, with `total` unpacked
  // in all, is over a limit: the ratio first, which is what a bomb breaks.
  bool OverLimit(uint64_t member, uint64_t total, const std::string& path, std::string_view verb) {
    const ArchiveOptions& limits = input_.archive;
    const std::string size = "\"" + path + "\" " + std::string(verb) + " " + std::to_string(member) + " bytes";
    if (limits.max_ratio_bytes() != 0 && total > limits.max_ratio_bytes()) {
      Stop(finding::kLimitRatio, size + ": more than the " + std::to_string(limits.max_ratio_bytes()) +
                                     " bytes the expansion ratio allows the item");
    } else if (limits.max_expanded_bytes() != 0 && total > limits.max_expanded_bytes()) {
      Stop(finding::kLimitExpandedSize,
           size + ": more than the " + std::to_string(limits.max_expanded_bytes()) + " bytes the item may unpack");
    } else if (limits.max_member_bytes() != 0 && member > limits.max_member_bytes()) {
      Stop(finding::kLimitFileSize, size + ": more than " + std::to_string(limits.max_member_bytes()), path);
    } else {
      return false;
    }
    return true;
  }

  bool InTime() const { return input_.time_limit.count() == 0 || Clock::now() - start_ <= input_.time_limit; }

  void StopForTime() {
    Stop(finding::kLimitTime, "unpacking took longer than " + std::to_string(input_.time_limit.count()) + " ms");
  }

  void Stop(std::string_view code, std::string reason, std::string_view subject = {}) {
    sink_.Finding(code, std::move(reason), subject);
  }

  const ConvertInput& input_;
  RecordSink& sink_;
  NameDecoder names_;
  const Clock::time_point start_ = Clock::now();
  uint64_t expanded_bytes_ = 0;
};

}  // namespace

void ArchiveConverter::Convert(const ConvertInput& input, RecordSink& sink) { Unpacker(input, sink).Run(); }

}  // namespace mugai
