#include "sanitizers/text/text_converter.h"

#include <glib.h>
#include <iconv.h>
#include <uchardet/uchardet.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <memory>
#include <new>
#include <optional>
#include <stdexcept>
#include <type_traits>

#include "sanitizers/core/findings.h"
#include "sanitizers/text/safe_text.h"

namespace mugai {
namespace {

using namespace std::string_view_literals;

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD

struct IconvCloser {
  void operator()(iconv_t cd) const { iconv_close(cd); }
};
using UniqueIconv = std::unique_ptr<std::remove_pointer_t<iconv_t>, IconvCloser>;

struct UchardetDeleter {
  void operator()(uchardet_t detector) const { uchardet_delete(detector); }
};
using UniqueUchardet = std::unique_ptr<std::remove_pointer_t<uchardet_t>, UchardetDeleter>;

struct Bom {
  std::string_view bytes;
  std::string_view charset;
};
// Longest first: the UTF-32LE mark begins with the UTF-16LE one.
constexpr std::array kBoms = {
    Bom{"\xFF\xFE\0\0"sv, "UTF-32LE"}, Bom{"\0\0\xFE\xFF"sv, "UTF-32BE"}, Bom{"\xEF\xBB\xBF"sv, "UTF-8"},
    Bom{"\xFF\xFE"sv, "UTF-16LE"},     Bom{"\xFE\xFF"sv, "UTF-16BE"},
};

struct Alias {
  std::string_view label;
  std::string_view charset;
};
// Labels (from uchardet or from a document) whose iconv name is not simply
// the label upper-cased. Japanese charsets decode as their Microsoft
// supersets, which add the NEC and IBM extensions (①, ㈱, 髙) and map
// everything else the same way; ISO-8859-1 decodes as windows-1252, as
// browsers do, so that its curly quotes do not become C1 controls; ASCII
// decodes as its superset UTF-8.
constexpr std::array kAliases = {
    Alias{"shift_jis", "CP932"},
    Alias{"shift-jis", "CP932"},
    Alias{"sjis", "CP932"},
    Alias{"x-sjis", "CP932"},
    Alias{"ms_kanji", "CP932"},
    Alias{"csshiftjis", "CP932"},
    Alias{"windows-31j", "CP932"},
    Alias{"ms932", "CP932"},
    Alias{"euc-jp", "EUC-JP-MS"},
    Alias{"eucjp", "EUC-JP-MS"},
    Alias{"x-euc-jp", "EUC-JP-MS"},
    Alias{"csiso2022jp", "ISO-2022-JP"},
    Alias{"iso-8859-1", "WINDOWS-1252"},
    Alias{"iso8859-1", "WINDOWS-1252"},
    Alias{"latin1", "WINDOWS-1252"},
    Alias{"ascii", "UTF-8"},
    Alias{"us-ascii", "UTF-8"},
    // Outlook's label for Korean, which it writes in CP949 (EUC-KR and more).
    Alias{"ks_c_5601-1987", "CP949"},
};

bool EqualsIgnoringCase(std::string_view a, std::string_view b) {
  return std::ranges::equal(a, b, [](char x, char y) { return g_ascii_tolower(x) == g_ascii_tolower(y); });
}

// The iconv name for a charset label, or "" for something that is not a
// label at all. Labels can come from the document itself, so they are kept
// to plain names: iconv gives "//" suffixes a meaning of their own.
std::string CanonicalCharset(std::string_view label) {
  auto is_label_char = [](char c) {
    return g_ascii_isalnum(c) || c == '-' || c == '_' || c == '.' || c == ':';
  };
  if (label.empty() || label.size() > 40 || !std::ranges::all_of(label, is_label_char)) return {};
  for (const Alias& alias : kAliases) {
    if (EqualsIgnoringCase(label, alias.label)) return std::string(alias.charset);
  }
  std::string name(label);
  std::ranges::transform(name, name.begin(), g_ascii_toupper);
  return name;
}

// Appends `bytes` to `out`, each byte that is not part of well-formed UTF-8
// replaced by U+FFFD; returns how many were.
size_t AppendRepairedUtf8(std::string_view bytes, std::string& out) {
  size_t invalid = 0;
  while (!bytes.empty()) {
    size_t valid = ValidUtf8Prefix(bytes);
    out.append(bytes.substr(0, valid));
    bytes.remove_prefix(valid);
    if (!bytes.empty()) {
      out.append(kReplacement);
      ++invalid;
      bytes.remove_prefix(1);
    }
  }
  return invalid;
}

// glibc's ISO-2022-JP decoder rejects the NEC and IBM extensions (①, ㈱)
// that Outlook and other Windows mailers write in ISO-2022-JP (Microsoft's
// CP50220/50221, which is defined as a re-framing of CP932). So ISO-2022-JP
// is re-framed here as Shift_JIS and then decoded as CP932: the escape
// sequences go, and each JIS X 0208 pair maps arithmetically onto its
// Shift_JIS pair. A byte that cannot be re-framed becomes 0xFF, which CP932
// rejects on its own, so it is replaced and counted like any other; so do
// an unknown escape sequence and every character in the set it designates.
std::string Iso2022JpToShiftJis(std::string_view jis) {
  constexpr char kInvalid = '\xFF';
  enum class Set { kAscii, kKanji, kKatakana, kUnknown } set = Set::kAscii;
  auto is_jis_byte = [](unsigned char c) { return c >= 0x21 && c <= 0x7E; };
  std::string sjis;
  sjis.reserve(jis.size());
  for (size_t i = 0; i < jis.size(); ++i) {
    unsigned char c = jis[i];
    if (c == 0x1B) {
      // ESC, intermediate bytes 0x20..0x2F, one final byte 0x30..0x7E.
      size_t last = i + 1;
      while (last < jis.size() && jis[last] >= 0x20 && jis[last] <= 0x2F) ++last;
      if (last == jis.size() || jis[last] < 0x30 || jis[last] > 0x7E) {
        sjis += kInvalid;
        continue;
      }
      std::string_view designation = jis.substr(i + 1, last - i);
      if (designation == "(B" || designation == "(J") {
        set = Set::kAscii;
      } else if (designation == "$B" || designation == "$@") {
        set = Set::kKanji;
      } else if (designation == "(I") {
        set = Set::kKatakana;
      } else {
        set = Set::kUnknown;
        sjis += kInvalid;
      }
      i = last;
    } else if (c >= 0x80) {
      sjis += kInvalid;
    } else if (set == Set::kAscii || !is_jis_byte(c)) {
      sjis += static_cast<char>(c);  // controls and line ends pass in any set
    } else if (set == Set::kUnknown) {
      sjis += kInvalid;
    } else if (set == Set::kKatakana) {
      sjis += c <= 0x5F ? static_cast<char>(c + 0x80) : kInvalid;
    } else if (i + 1 < jis.size() && is_jis_byte(jis[i + 1])) {
      unsigned char c2 = jis[++i];
      sjis += static_cast<char>(((c + 1) >> 1) + (c <= 0x5E ? 0x70 : 0xB0));
      sjis += static_cast<char>(c2 + (c % 2 == 0 ? 0x7E : c2 >= 0x60 ? 0x20 : 0x1F));
    } else {
      sjis += kInvalid;
    }
  }
  return sjis;
}

// Decodes `bytes` as `charset` (an iconv name), or nullopt when iconv does
// not know it.
std::optional<DecodedText> Decode(std::string_view bytes, const std::string& charset) {
  std::string reframed;
  std::string from = charset;
  if (charset == "ISO-2022-JP") {
    reframed = Iso2022JpToShiftJis(bytes);
    bytes = reframed;
    from = "CP932";
  }
  iconv_t cd = iconv_open("UTF-8", from.c_str());
  if (cd == reinterpret_cast<iconv_t>(-1)) return std::nullopt;
  UniqueIconv closer(cd);

  DecodedText decoded;
  decoded.charset = charset;
  std::string raw;
  raw.reserve(bytes.size() + bytes.size() / 2);
  char* in = const_cast<char*>(bytes.data());  // iconv's signature; it does not write
  size_t in_left = bytes.size();
  while (in_left > 0) {
    char chunk[4096];
    char* out = chunk;
    size_t out_left = sizeof chunk;
    size_t result = iconv(cd, &in, &in_left, &out, &out_left);
    int error = errno;
    raw.append(chunk, out - chunk);
    if (result == static_cast<size_t>(-1) && error != E2BIG) {
      // EILSEQ, or EINVAL for a sequence cut off by the end of the input.
      raw.append(kReplacement);
      ++decoded.invalid_sequences;
      ++in;
      --in_left;
    }
  }
  // glibc's UTF-8 and UCS-4 decoders pass through sequences above U+10FFFF
  // (and 5-byte forms), which the daemon would rightly refuse.
  decoded.invalid_sequences += AppendRepairedUtf8(raw, decoded.utf8);
  return decoded;
}

std::string Uchardet(std::string_view bytes) {
  UniqueUchardet detector(uchardet_new());
  if (!detector) throw std::bad_alloc();
  if (uchardet_handle_data(detector.get(), bytes.data(), bytes.size()) != 0) throw std::bad_alloc();
  uchardet_data_end(detector.get());
  return uchardet_get_charset(detector.get());
}

// What a reading of `bytes` as UTF-16 in one byte order looks like.
struct Utf16Reading {
  bool plausible = true;  // no unpaired surrogates, controls or non-characters
  size_t telling = 0;     // units that text in other charsets rarely yields
};

Utf16Reading ReadUtf16(std::string_view bytes, bool little_endian) {
  Utf16Reading reading;
  auto unit = [&](size_t i) -> unsigned {
    unsigned char a = bytes[i], b = bytes[i + 1];
    return little_endian ? (b << 8) | a : (a << 8) | b;
  };
  for (size_t i = 0; i + 1 < bytes.size(); i += 2) {
    unsigned u = unit(i);
    bool high_surrogate = u >= 0xD800 && u <= 0xDBFF;
    if (high_surrogate && i + 3 < bytes.size() && unit(i + 2) >= 0xDC00 && unit(i + 2) <= 0xDFFF) {
      i += 2;
    } else if ((u >= 0xD800 && u <= 0xDFFF) || u == 0xFFFE || u == 0xFFFF ||
               (u < 0x20 && u != '\t' && u != '\n' && u != '\r' && u != '\f')) {
      reading.plausible = false;
    } else if (u < 0x100 || (u >= 0x3041 && u <= 0x30FF)) {
      ++reading.telling;  // ASCII and Latin-1, or kana
    }
  }
  return reading;
}

// uchardet 0.0.7 only recognises UTF-16 by its BOM; without one it calls
// Japanese UTF-16 GB18030 and English UTF-16 ASCII. Real UTF-16 text is
// mostly ASCII (a NUL in every other byte, which no other charset has in
// text) or, for Japanese, full of kana (U+3041..U+30FF, a 0x30 in every
// other byte). One byte order must read as plausible UTF-16 with at least a
// fifth of such telling units, and more of them than the other order.
// Pure ASCII is never taken for UTF-16: "0A0B" would read as kana.
std::string_view GuessUtf16(std::string_view bytes) {
  if (bytes.size() < 2 || bytes.size() % 2 != 0) return {};
  if (std::ranges::none_of(bytes, [](char c) { return c == '\0' || (c & 0x80) != 0; })) return {};
  Utf16Reading le = ReadUtf16(bytes, true);
  Utf16Reading be = ReadUtf16(bytes, false);
  size_t units = bytes.size() / 2;
  auto convincing = [units](const Utf16Reading& r, const Utf16Reading& other) {
    return r.plausible && r.telling * 5 >= units && (!other.plausible || r.telling > other.telling);
  };
  if (convincing(le, be)) return "UTF-16LE";
  if (convincing(be, le)) return "UTF-16BE";
  return {};
}

// When nothing is known: UTF-8 if it is valid, else CP932, the legacy
// charset Japanese senders most likely used, which decodes most byte
// strings with few replacements.
std::string FallbackCharset(std::string_view bytes) { return IsValidUtf8(bytes) ? "UTF-8" : "CP932"; }

bool IsJapaneseOrUnicode(std::string_view charset) {
  return charset == "CP932" || charset == "EUC-JP-MS" || charset.starts_with("ISO-2022-JP") ||
         charset.starts_with("UTF");
}

// Hiragana and kanji: what Japanese text is mostly made of, and what a
// wrong Japanese reading (EUC-JP read as CP932 gives half-width katakana)
// mostly lacks.
size_t JapaneseCharacters(std::string_view utf8) {
  size_t count = 0;
  for (const char* p = utf8.data(); p < utf8.data() + utf8.size(); p = g_utf8_next_char(p)) {
    gunichar c = g_utf8_get_char(p);
    if ((c >= 0x3040 && c <= 0x309F) || (c >= 0x4E00 && c <= 0x9FFF)) ++count;
  }
  return count;
}

// uchardet 0.0.7 calls some Shift_JIS text windows-1252 (seen on short
// memos with ① and 〜). Mugai's senders are overwhelmingly Japanese, so a
// Western guess yields to a Japanese charset that decodes every byte and
// reads as Japanese; Western text ("caf\xE9 ") is not clean CP932 or EUC-JP.
// Returns "" when neither qualifies.
std::string CleanJapaneseReading(std::string_view bytes) {
  std::string best;
  size_t best_score = 0;
  for (const char* candidate : {"CP932", "EUC-JP-MS"}) {
    std::optional<DecodedText> d = Decode(bytes, candidate);
    if (!d || d->invalid_sequences > 0) continue;
    if (size_t score = JapaneseCharacters(d->utf8); score > best_score) {
      best = candidate;
      best_score = score;
    }
  }
  return best;
}

std::string DetectCharset(std::string_view bytes) {
  if (std::string_view utf16 = GuessUtf16(bytes); !utf16.empty()) return std::string(utf16);
  std::string charset = CanonicalCharset(Uchardet(bytes));  // uchardet says "" when unsure
  // Valid UTF-8 beats a statistical guess: legacy Japanese text is almost
  // never valid UTF-8 by chance, while short UTF-8 text with a few non-ASCII
  // characters often looks like windows-1252 to uchardet. Only the 7-bit
  // ISO-2022 charsets, valid UTF-8 by construction, go by the guess.
  if (IsValidUtf8(bytes) && !charset.starts_with("ISO-2022")) return "UTF-8";
  if (!IsJapaneseOrUnicode(charset)) {
    if (std::string japanese = CleanJapaneseReading(bytes); !japanese.empty()) return japanese;
  }
  return charset.empty() ? FallbackCharset(bytes) : charset;
}

// For the charsets every glibc has: a failure means a broken system (or a
// sandbox entered before iconv loaded its converters), not a bad input.
DecodedText Required(std::optional<DecodedText> decoded, std::string_view charset) {
  if (!decoded) throw std::runtime_error("iconv cannot convert from " + std::string(charset));
  return std::move(*decoded);
}

DecodedText DecodeDetected(std::string_view bytes) {
  if (std::optional<DecodedText> decoded = Decode(bytes, DetectCharset(bytes))) return std::move(*decoded);
  std::string fallback = FallbackCharset(bytes);
  return Required(Decode(bytes, fallback), fallback);
}

bool IsSingleByteWestern(std::string_view charset) {
  return charset.starts_with("ISO-8859-") || charset.starts_with("ISO8859") || charset.starts_with("WINDOWS-125") ||
         charset.starts_with("CP125") || charset.starts_with("LATIN");
}

// Japanese text in CP932 or EUC-JP is runs of 8-bit byte pairs; Western
// text in a single-byte charset has its 8-bit letters one at a time between
// ASCII ones ("caf\xE9 cr\xE8me").
bool MostHighBytesPaired(std::string_view bytes) {
  auto high = [&](size_t i) { return i < bytes.size() && (bytes[i] & 0x80) != 0; };
  size_t total = 0, paired = 0;
  for (size_t i = 0; i < bytes.size(); ++i) {
    if (!high(i)) continue;
    ++total;
    if ((i > 0 && high(i - 1)) || high(i + 1)) ++paired;
  }
  return total > 0 && paired * 2 >= total;
}

}  // namespace

DecodedText DecodeToUtf8(std::string_view bytes) { return DecodeToUtf8(bytes, {}); }

DecodedText DecodeToUtf8(std::string_view bytes, std::string_view declared) {
  std::string label = CanonicalCharset(declared);
  for (const Bom& bom : kBoms) {
    if (bytes.starts_with(bom.bytes)) {
      DecodedText decoded = Required(Decode(bytes.substr(bom.bytes.size()), std::string(bom.charset)), bom.charset);
      // "UTF-16" names both byte orders; the mark says which.
      decoded.declared_ignored = !declared.empty() && (label.empty() || !bom.charset.starts_with(label));
      return decoded;
    }
  }
  if (!label.empty()) {
    if (std::optional<DecodedText> decoded = Decode(bytes, label)) return std::move(*decoded);
  }
  DecodedText detected = DecodeDetected(bytes);
  detected.declared_ignored = !declared.empty();
  return detected;
}

DecodedText DecodeToUtf8CheckingLabel(std::string_view bytes, std::string_view declared) {
  DecodedText labelled = DecodeToUtf8(bytes, declared);
  if (declared.empty() || labelled.declared_ignored) return labelled;
  std::optional<DecodedText> better;
  if (labelled.invalid_sequences > 0) {
    better = Decode(bytes, DetectCharset(bytes));
    if (better && better->invalid_sequences >= labelled.invalid_sequences) better.reset();
  } else if (IsSingleByteWestern(labelled.charset) && MostHighBytesPaired(bytes)) {
    // Western text is practically never valid UTF-8 by chance ("\xC3\xA9"
    // would have to read "Ã©"), and never clean CP932 or EUC-JP in pairs.
    if (IsValidUtf8(bytes)) {
      better = Decode(bytes, "UTF-8");
    } else if (std::string japanese = CleanJapaneseReading(bytes); !japanese.empty()) {
      better = Decode(bytes, japanese);
    }
  }
  if (!better) return labelled;
  better->declared_ignored = true;
  return std::move(*better);
}

void EmitText(const ConvertInput& input, std::string utf8, RecordSink& sink) {
  if (utf8.size() > input.max_output_bytes) {
    sink.Finding(finding::kLimitOutput, "text of " + std::to_string(utf8.size()) +
                                            " bytes exceeds the output limit of " +
                                            std::to_string(input.max_output_bytes) + " bytes");
    return;
  }
  sink.Text(std::move(utf8));
}

void TextConverter::Convert(const ConvertInput& input, RecordSink& sink) {
  DecodedText decoded = DecodeToUtf8(input.content);
  size_t invalid = decoded.invalid_sequences;
  EmitText(input, std::move(decoded.utf8), sink);
  if (invalid > 0) {
    sink.Finding(finding::kTextInvalidBytes, std::to_string(invalid) + " bytes did not decode as " +
                                                 decoded.charset + " and were replaced by U+FFFD");
  }
}

}  // namespace mugai
