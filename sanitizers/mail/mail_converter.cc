#include "sanitizers/mail/mail_converter.h"

#include <glib.h>
#include <gmime/gmime.h>

#include <algorithm>
#include <cstdio>  // ytnef.h uses FILE without including it
#include <cstring>
#include <iterator>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

extern "C" {
#include <tnef-errors.h>
#include <ytnef.h>
}

#include "sanitizers/core/ascii.h"
#include "sanitizers/core/findings.h"
#include "sanitizers/core/glib_handles.h"
#include "sanitizers/html/html_converter.h"
#include "sanitizers/text/safe_text.h"
#include "sanitizers/text/text_converter.h"

namespace mugai {
namespace {

using v1::worker::MailHeader;
using v1::worker::MailOptions;

// Within what RecordValidator accepts: reasons of 1024 bytes, declared
// types of 255, nine headers of 64 KiB with at most 1000 mailboxes each.
constexpr size_t kMaxFindingsPerCode = 20;
constexpr size_t kMaxReasonBytes = 1000;
constexpr size_t kMaxQuotedBytes = 200;  // of untrusted text inside a reason
constexpr size_t kMaxNameBytes = 255;    // of one path component
constexpr size_t kMaxDeclaredTypeBytes = 255;
constexpr size_t kMaxHeaderBytes = 32 * 1024;  // of one kept header's value and mailboxes
constexpr size_t kMaxMailboxBytes = 1000;      // of one mailbox's name or address
constexpr size_t kMaxMailboxes = 1000;

// ---------------------------------------------------------------------------
// Text

std::string_view View(const char* s) { return s ? std::string_view(s) : std::string_view(); }

// `bytes` with every invalid UTF-8 sequence (and NUL) replaced by U+FFFD.
std::string ValidUtf8(std::string_view bytes) {
  if (bytes.empty()) return {};
  GMallocPtr<gchar> valid(g_utf8_make_valid(bytes.data(), static_cast<gssize>(bytes.size())));
  return valid.get();
}

// Text in no declared charset (a raw 8-bit parameter) as UTF-8: as it is
// when it is valid, else by detection (CP932 for Japanese senders).
std::string Utf8(std::string_view bytes) { return IsValidUtf8(bytes) ? std::string(bytes) : DecodeToUtf8(bytes).utf8; }

// At most `max` bytes of `utf8`, cut at a character boundary.
std::string_view Truncated(std::string_view utf8, size_t max) {
  if (utf8.size() <= max) return utf8;
  size_t end = max;
  while (end > 0 && (static_cast<unsigned char>(utf8[end]) & 0xC0) == 0x80) --end;
  return utf8.substr(0, end);
}

// `utf8` as one line: each run of ASCII spaces and controls (folded header
// lines, tabs) is one space, and there is none at either end.
std::string OneLine(std::string_view utf8) {
  std::string line;
  bool space = false;
  for (char c : utf8) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7F) {
      space = !line.empty();
    } else {
      if (space) line += ' ';
      space = false;
      line += c;
    }
  }
  return line;
}

// Untrusted text for a reason: valid, on one line, bounded, in quotes.
std::string Quoted(std::string_view untrusted, size_t max = kMaxQuotedBytes) {
  return "\"" + std::string(Truncated(OneLine(ValidUtf8(untrusted)), max)) + "\"";
}

std::string Base64(std::string_view bytes) {
  GMallocPtr<gchar> encoded(g_base64_encode(reinterpret_cast<const guchar*>(bytes.data()), bytes.size()));
  return encoded.get();
}

// Lenient, as mail readers are: characters outside the alphabet are skipped.
std::string Base64Decode(std::string_view text) {
  std::string bytes(text.size() / 4 * 3 + 3, '\0');
  gint state = 0;
  guint save = 0;
  bytes.resize(g_base64_decode_step(text.data(), text.size(), reinterpret_cast<guchar*>(bytes.data()), &state, &save));
  return bytes;
}

// RFC 2047's Q encoding: "_" is a space, "=XX" a byte.
std::string QDecode(std::string_view text) {
  std::string bytes;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '_') {
      bytes += ' ';
    } else if (text[i] == '=' && i + 2 < text.size() && g_ascii_isxdigit(text[i + 1]) &&
               g_ascii_isxdigit(text[i + 2])) {
      bytes += static_cast<char>(g_ascii_xdigit_value(text[i + 1]) * 16 + g_ascii_xdigit_value(text[i + 2]));
      i += 2;
    } else {
      bytes += text[i];
    }
  }
  return bytes;
}

// Code points other than white space: how much a text says, whatever its
// layout.
size_t NonSpaceCharacters(std::string_view utf8) {
  size_t count = 0;
  for (const char* p = utf8.data(); p < utf8.data() + utf8.size(); p = g_utf8_next_char(p)) {
    if (!g_unichar_isspace(g_utf8_get_char(p))) ++count;
  }
  return count;
}

std::string WithLfLineEnds(std::string text) {
  size_t out = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\r' && i + 1 < text.size() && text[i + 1] == '\n') continue;
    text[out++] = text[i];
  }
  text.resize(out);
  return text;
}

// The body texts in order, a blank line between them, ending in a newline.
std::string JoinTexts(const std::vector<std::string>& texts) {
  std::string joined;
  for (std::string_view text : texts) {
    text = text.substr(0, text.find_last_not_of(" \t\r\n") + 1);  // npos + 1 == 0: all blank
    if (text.empty()) continue;
    if (!joined.empty()) joined += "\n\n";
    joined += text;
  }
  if (!joined.empty()) joined += '\n';
  return joined;
}

// The last component of a path a sender named, valid UTF-8 on one line: a
// name is never a place to write to. A long one keeps its extension, which
// the daemon reads the claimed type from. "" for none.
std::string BaseName(std::string_view name) {
  std::string line = OneLine(ValidUtf8(name));
  std::string_view base = line;
  if (size_t slash = base.find_last_of("/\\"); slash != std::string_view::npos) base.remove_prefix(slash + 1);
  if (base == "." || base == "..") return {};
  if (base.size() <= kMaxNameBytes) return std::string(base);
  size_t dot = base.rfind('.');
  std::string_view extension = dot != std::string_view::npos && base.size() - dot <= 16 ? base.substr(dot) : "";
  return std::string(Truncated(base, kMaxNameBytes - extension.size())) + std::string(extension);
}

// ---------------------------------------------------------------------------
// Findings

struct Finding {
  std::string_view code;
  std::string reason;
  std::string subject;  // the child it is about, or "" for the message
};

// The findings of one message: each once, at most kMaxFindingsPerCode of
// any code.
class Findings {
 public:
  void Add(Finding finding) {
    if (per_code_[finding.code] >= kMaxFindingsPerCode) return;
    finding.reason = std::string(Truncated(ValidUtf8(finding.reason), kMaxReasonBytes));
    if (!seen_.emplace(finding.code, finding.reason, finding.subject).second) return;
    ++per_code_[finding.code];
    findings_.push_back(std::move(finding));
  }

  void EmitTo(RecordSink& sink) {
    for (Finding& f : findings_) sink.Finding(f.code, std::move(f.reason), f.subject);
  }

 private:
  std::vector<Finding> findings_;
  std::set<std::tuple<std::string_view, std::string, std::string>> seen_;
  std::map<std::string_view, size_t> per_code_;
};

std::string_view DescribeWarning(GMimeParserWarning kind) {
  switch (kind) {
    case GMIME_WARN_DUPLICATED_HEADER:
      return "a header repeated that belongs once";
    case GMIME_WARN_DUPLICATED_PARAMETER:
      return "a header parameter repeated";
    case GMIME_WARN_UNENCODED_8BIT_HEADER:
      return "8-bit characters in a header without RFC 2047 encoding";
    case GMIME_WARN_INVALID_CONTENT_TYPE:
      return "an invalid Content-Type, read as application/octet-stream";
    case GMIME_WARN_INVALID_RFC2047_HEADER_VALUE:
      return "an invalid RFC 2047 encoded word";
    case GMIME_WARN_MALFORMED_MULTIPART:
      return "a multipart without parts";
    case GMIME_WARN_TRUNCATED_MESSAGE:
      return "the message truncated";
    case GMIME_WARN_MALFORMED_MESSAGE:
      return "the message malformed";
    case GMIME_CRIT_INVALID_HEADER_NAME:
      return "an invalid header name (the parser may have skipped part of the message)";
    case GMIME_CRIT_CONFLICTING_HEADER:
      return "headers that conflict with each other";
    case GMIME_CRIT_CONFLICTING_PARAMETER:
      return "header parameters that conflict with each other";
    case GMIME_CRIT_MULTIPART_WITHOUT_BOUNDARY:
      return "a multipart without a boundary parameter";
    case GMIME_WARN_INVALID_PARAMETER:
      return "an invalid header parameter";
    case GMIME_WARN_INVALID_ADDRESS_LIST:
      return "an invalid address list";
    case GMIME_CRIT_NESTING_OVERFLOW:
      return "MIME parts nested deeper than the parser allows";
    case GMIME_WARN_PART_WITHOUT_CONTENT:
      return "a part whose headers a boundary ends, without content";
    case GMIME_CRIT_PART_WITHOUT_HEADERS_OR_CONTENT:
      return "a part with neither headers nor content";
  }
  return "a structure error";
}

// Takes GMime's parser warnings: one mail.malformed for each kind.
class WarningCollector {
 public:
  explicit WarningCollector(Findings& findings) : findings_(findings) {}

  // Past its nesting limit GMime keeps a multipart's parts as its unread
  // prologue: content the message would lose, not a quirk to note.
  bool nesting_overflowed() const { return kinds_.contains(GMIME_CRIT_NESTING_OVERFLOW); }

  static void Callback(gint64 offset, GMimeParserWarning kind, const gchar* item, gpointer self) {
    static_cast<WarningCollector*>(self)->Add(offset, kind, View(item));
  }

 private:
  void Add(gint64 offset, GMimeParserWarning kind, std::string_view item) {
    if (!kinds_.insert(kind).second) return;
    std::string reason = "GMime found " + std::string(DescribeWarning(kind));
    if (offset >= 0) reason += " at byte " + std::to_string(offset);
    if (!item.empty()) reason += ": " + Quoted(item);
    findings_.Add({finding::kMailMalformed, std::move(reason), {}});
  }

  Findings& findings_;
  std::set<GMimeParserWarning> kinds_;
};

// ---------------------------------------------------------------------------
// GMime

struct ParserOptionsFree {
  void operator()(GMimeParserOptions* options) const { g_mime_parser_options_free(options); }
};
using ParserOptions = std::unique_ptr<GMimeParserOptions, ParserOptionsFree>;

struct ReferencesFree {
  void operator()(GMimeReferences* references) const { g_mime_references_free(references); }
};
using References = std::unique_ptr<GMimeReferences, ReferencesFree>;

void InitGMime() {
  // Once per process; never shut down (the worker simply exits).
  static std::once_flag once;
  // GMime reads message/rfc822, message/news and message/global parts as
  // embedded messages.
  std::call_once(once, [] { g_mime_init(); });
}

ParserOptions NewParserOptions(WarningCollector& warnings) {
  ParserOptions options(g_mime_parser_options_new());
  // For header text in raw 8-bit: GMime takes the first that converts.
  const char* fallback_charsets[] = {"UTF-8", "CP932", "EUC-JP", nullptr};
  g_mime_parser_options_set_fallback_charsets(options.get(), fallback_charsets);
  g_mime_parser_options_set_warning_callback(options.get(), &WarningCollector::Callback, &warnings);
  return options;
}

// The message's bytes for GMime to read in place, without a copy: its
// memory stream reads a GByteArray's data and length, and, not its owner,
// never frees or grows it. Must outlive the stream and every part read
// through it.
class BorrowedBytes {
 public:
  explicit BorrowedBytes(std::string_view bytes)
      : array_(g_byte_array_new_take(reinterpret_cast<guint8*>(const_cast<char*>(bytes.data())), bytes.size())) {}
  ~BorrowedBytes() { g_byte_array_free(array_, FALSE); }  // gives the bytes back unfreed
  BorrowedBytes(const BorrowedBytes&) = delete;
  BorrowedBytes& operator=(const BorrowedBytes&) = delete;

  GObjectPtr<GMimeStream> NewStream() const {
    GObjectPtr<GMimeStream> stream(g_mime_stream_mem_new_with_byte_array(array_));
    g_mime_stream_mem_set_owner(GMIME_STREAM_MEM(stream.get()), FALSE);
    return stream;
  }

 private:
  GByteArray* array_;
};

GObjectPtr<GMimeMessage> ParseMessage(const BorrowedBytes& bytes, GMimeParserOptions* options) {
  GObjectPtr<GMimeStream> stream = bytes.NewStream();
  GObjectPtr<GMimeParser> parser(g_mime_parser_new_with_stream(stream.get()));
  GObjectPtr<GMimeMessage> message(g_mime_parser_construct_message(parser.get(), options));
  if (!message) throw ConvertError("GMime could not read a message in it");
  return message;
}

// "type/subtype", lower-case, as the sender declared it.
std::string MimeType(GMimeObject* object) {
  GMimeContentType* type = g_mime_object_get_content_type(object);
  if (!type) return {};
  GMallocPtr<char> mime(g_mime_content_type_get_mime_type(type));
  return AsciiLower(Truncated(ValidUtf8(View(mime.get())), kMaxDeclaredTypeBytes));
}

std::string ContentTypeParameter(GMimeObject* object, const char* name) {
  return std::string(View(g_mime_object_get_content_type_parameter(object, name)));
}

bool IsAttachmentDisposition(GMimeObject* object) {
  return EqualsIgnoringAsciiCase(View(g_mime_object_get_disposition(object)), GMIME_DISPOSITION_ATTACHMENT);
}

bool IsInlineDisposition(GMimeObject* object) {
  return EqualsIgnoringAsciiCase(View(g_mime_object_get_disposition(object)), GMIME_DISPOSITION_INLINE);
}

// A part's content with its transfer encoding undone.
std::string DecodedContent(GMimePart* part) {
  GMimeDataWrapper* content = g_mime_part_get_content(part);
  if (!content) return {};
  GObjectPtr<GMimeStream> decoded(g_mime_stream_mem_new());
  if (g_mime_data_wrapper_write_to_stream(content, decoded.get()) < 0) {
    throw ConvertError("GMime could not decode a MIME part");
  }
  GByteArray* bytes = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(decoded.get()));
  return std::string(reinterpret_cast<const char*>(bytes->data), bytes->len);
}

size_t Length(const char* s) { return s ? std::strlen(s) : 0; }

// Header name and raw value bytes of a part's or message's own headers.
size_t HeaderBytes(GMimeObject* object) {
  GMimeHeaderList* headers = g_mime_object_get_header_list(object);
  size_t bytes = 0;
  for (int i = 0; headers && i < g_mime_header_list_get_count(headers); ++i) {
    GMimeHeader* header = g_mime_header_list_get_header_at(headers, i);
    bytes += Length(g_mime_header_get_raw_name(header)) + Length(g_mime_header_get_raw_value(header));
  }
  return bytes;
}

// The raw (encoded, folded) values of every header of `object` named `name`.
std::vector<std::string_view> RawValues(GMimeObject* object, std::string_view name) {
  std::vector<std::string_view> values;
  GMimeHeaderList* headers = g_mime_object_get_header_list(object);
  for (int i = 0; headers && i < g_mime_header_list_get_count(headers); ++i) {
    GMimeHeader* header = g_mime_header_list_get_header_at(headers, i);
    if (EqualsIgnoringAsciiCase(View(g_mime_header_get_name(header)), name)) {
      values.push_back(View(g_mime_header_get_raw_value(header)));
    }
  }
  return values;
}

// ---------------------------------------------------------------------------
// RFC 2047 encoded words, in our charset decoder rather than GMime's:
// GMime hands Shift_JIS and ISO-2022-JP to iconv as they are labelled, and
// glibc's decoders for them reject the NEC and IBM characters (①, ㈱, 髙)
// that Japanese senders' Windows mailers write. Each run of words in one
// charset becomes a single UTF-8 word, and GMime then parses the header as
// it would have.

struct EncodedWord {
  size_t end;           // just past its "?="
  std::string charset;  // without an RFC 2231 language suffix
  std::string bytes;    // its text, B or Q decoded
};

// The word "=?charset?B|Q?text?=" that starts at raw[at], if it is one.
std::optional<EncodedWord> ParseEncodedWord(std::string_view raw, size_t at) {
  if (raw.compare(at, 2, "=?") != 0) return std::nullopt;
  size_t charset_end = raw.find('?', at + 2);
  if (charset_end == std::string_view::npos || charset_end + 2 >= raw.size() || raw[charset_end + 2] != '?') {
    return std::nullopt;
  }
  char encoding = g_ascii_toupper(raw[charset_end + 1]);
  size_t text_begin = charset_end + 3;
  size_t close = raw.find("?=", text_begin);
  if ((encoding != 'B' && encoding != 'Q') || close == std::string_view::npos) return std::nullopt;
  std::string_view charset = raw.substr(at + 2, charset_end - at - 2);
  charset = charset.substr(0, charset.find('*'));
  std::string_view text = raw.substr(text_begin, close - text_begin);
  auto space = [](char c) { return g_ascii_isspace(c); };
  if (charset.empty() || std::ranges::any_of(charset, space) || std::ranges::any_of(text, space)) return std::nullopt;
  return EncodedWord{close + 2, std::string(charset), encoding == 'B' ? Base64Decode(text) : QDecode(text)};
}

std::string EncodedWordsAsUtf8(std::string_view raw) {
  std::string out;
  size_t copied = 0;  // raw[0, copied) is in `out`
  for (size_t at = raw.find("=?"); at != std::string_view::npos;) {
    std::optional<EncodedWord> word = ParseEncodedWord(raw, at);
    if (!word) {
      at = raw.find("=?", at + 2);
      continue;
    }
    // Whitespace between words is not text (RFC 2047), and senders split a
    // character's bytes across two words of one charset.
    std::string bytes = std::move(word->bytes);
    size_t end = word->end;
    for (;;) {
      size_t next = raw.find_first_not_of(" \t\r\n", end);
      if (next == std::string_view::npos) break;
      std::optional<EncodedWord> following = ParseEncodedWord(raw, next);
      if (!following || !EqualsIgnoringAsciiCase(following->charset, word->charset)) break;
      bytes += following->bytes;
      end = following->end;
    }
    out.append(raw.substr(copied, at - copied));
    out += "=?UTF-8?B?" + Base64(DecodeToUtf8CheckingLabel(bytes, word->charset).utf8) + "?=";
    copied = end;
    at = raw.find("=?", end);
  }
  out.append(raw.substr(copied));
  return out;
}

// A raw header value unfolded, its encoded words made UTF-8 ones.
std::string Prepared(std::string_view raw) {
  GMallocPtr<char> unfolded(g_mime_utils_header_unfold(std::string(raw).c_str()));
  return EncodedWordsAsUtf8(View(unfolded.get()));
}

// RFC 2231 extended parameters ("name*0*=iso-2022-jp'ja'%1B%24B...;
// name*1*=...") likewise: each one's pieces are joined, decoded by our
// charsets and written back as one "name*=UTF-8''..." parameter.

// A header value's parts, split at the semicolons outside quoted strings.
std::vector<std::string_view> SplitParameters(std::string_view value) {
  std::vector<std::string_view> parameters;
  bool quoted = false;
  size_t begin = 0;
  for (size_t i = 0; i < value.size(); ++i) {
    if (quoted && value[i] == '\\') {
      ++i;
    } else if (value[i] == '"') {
      quoted = !quoted;
    } else if (!quoted && value[i] == ';') {
      parameters.push_back(value.substr(begin, i - begin));
      begin = i + 1;
    }
  }
  parameters.push_back(value.substr(begin));
  return parameters;
}

struct ExtendedPiece {
  std::string name;  // lower-case
  unsigned index;    // of the piece: name*<index>
  bool encoded;      // name*<index>*= : percent-encoded, the first with "charset'language'"
  std::string_view value;
  size_t parameter;  // where it is among the header value's parts
};

std::optional<ExtendedPiece> ParseExtendedPiece(std::string_view parameter, size_t position) {
  size_t equals = parameter.find('=');
  if (equals == std::string_view::npos) return std::nullopt;
  std::string_view attribute = Trim(parameter.substr(0, equals), " \t");
  size_t star = attribute.find('*');
  if (star == std::string_view::npos || star == 0) return std::nullopt;
  std::string_view index = attribute.substr(star + 1);
  bool encoded = index.empty() || index.ends_with('*');
  if (index.ends_with('*')) index.remove_suffix(1);
  if (index.size() > 3 || !std::ranges::all_of(index, [](char c) { return g_ascii_isdigit(c); })) return std::nullopt;
  std::string_view value = Trim(parameter.substr(equals + 1), " \t");
  if (value.size() >= 2 && value.starts_with('"') && value.ends_with('"')) value = value.substr(1, value.size() - 2);
  return ExtendedPiece{AsciiLower(attribute.substr(0, star)),
                       index.empty() ? 0u : static_cast<unsigned>(std::stoul(std::string(index))), encoded, value,
                       position};
}

std::string PercentDecode(std::string_view text) {
  std::string bytes;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '%' && i + 2 < text.size() && g_ascii_isxdigit(text[i + 1]) && g_ascii_isxdigit(text[i + 2])) {
      bytes += static_cast<char>(g_ascii_xdigit_value(text[i + 1]) * 16 + g_ascii_xdigit_value(text[i + 2]));
      i += 2;
    } else {
      bytes += text[i];
    }
  }
  return bytes;
}

std::string PercentEncode(std::string_view bytes) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string text;
  for (unsigned char c : bytes) {
    if (g_ascii_isalnum(c) || std::strchr("!#$&+-.^_`|~", c) != nullptr) {
      text += static_cast<char>(c);
    } else {
      text += '%';
      text += kHex[c >> 4];
      text += kHex[c & 0xF];
    }
  }
  return text;
}

// One parameter's pieces, in index order, as "name*=UTF-8''...".
std::string JoinedAsUtf8(std::vector<ExtendedPiece> pieces) {
  std::ranges::stable_sort(pieces, {}, &ExtendedPiece::index);
  std::string charset, bytes;
  for (const ExtendedPiece& piece : pieces) {
    std::string_view value = piece.value;
    if (piece.encoded && &piece == &pieces.front()) {
      size_t quote = value.find('\'');
      size_t language_end = quote == std::string_view::npos ? quote : value.find('\'', quote + 1);
      if (language_end != std::string_view::npos) {
        charset = value.substr(0, quote);
        value.remove_prefix(language_end + 1);
      }
    }
    bytes += piece.encoded ? PercentDecode(value) : std::string(value);
  }
  return pieces.front().name + "*=UTF-8''" + PercentEncode(DecodeToUtf8CheckingLabel(bytes, charset).utf8);
}

std::string ExtendedParametersAsUtf8(std::string_view value) {
  std::vector<std::string_view> parameters = SplitParameters(value);
  std::map<std::string, std::vector<ExtendedPiece>> extended;
  for (size_t i = 1; i < parameters.size(); ++i) {
    if (std::optional<ExtendedPiece> piece = ParseExtendedPiece(parameters[i], i)) {
      extended[piece->name].push_back(*piece);
    }
  }
  if (extended.empty()) return std::string(value);
  std::map<size_t, std::string> replaced;  // parameter position: its new text, or "" to drop it
  for (auto& [name, pieces] : extended) {
    for (const ExtendedPiece& piece : pieces) replaced[piece.parameter] = "";
    size_t first = pieces.front().parameter;
    replaced[first] = " " + JoinedAsUtf8(std::move(pieces));
  }
  std::string rewritten(parameters[0]);
  for (size_t i = 1; i < parameters.size(); ++i) {
    auto it = replaced.find(i);
    if (it != replaced.end() && it->second.empty()) continue;
    rewritten += ";";
    rewritten += it == replaced.end() ? std::string(parameters[i]) : it->second;
  }
  return rewritten;
}

// A Content-Type or Content-Disposition value, ready for GMime's parser.
std::string PreparedParameters(std::string_view raw) { return ExtendedParametersAsUtf8(Prepared(raw)); }

// ---------------------------------------------------------------------------
// Headers

struct Mailbox {
  std::string name;
  std::string address;
};

std::string MailboxesText(const std::vector<Mailbox>& mailboxes) {
  std::string text;
  for (const Mailbox& m : mailboxes) {
    if (!text.empty()) text += ", ";
    text += m.name.empty() ? m.address : m.name + " <" + m.address + ">";
  }
  return text;
}

// Reads the kept headers of a message (or of an embedded one) as UTF-8.
class HeaderReader {
 public:
  HeaderReader(GMimeParserOptions* options, Findings& findings) : options_(options), findings_(findings) {}

  // Every header named `name`, groups flattened.
  std::vector<Mailbox> Mailboxes(GMimeObject* object, std::string_view name) {
    std::vector<Mailbox> mailboxes;
    size_t bytes = 0;
    bool cut = false;
    for (std::string_view raw : RawValues(object, name)) {
      GObjectPtr<InternetAddressList> list(internet_address_list_parse(options_, Prepared(raw).c_str()));
      if (list) Flatten(list.get(), mailboxes, bytes, cut);
    }
    if (cut) NoteCut(name);
    return mailboxes;
  }

  // The first header named `name` as one line of text, or nullopt.
  std::optional<std::string> Text(GMimeObject* object, std::string_view name) {
    std::vector<std::string_view> raw = RawValues(object, name);
    if (raw.empty()) return std::nullopt;
    GMallocPtr<char> decoded(g_mime_utils_header_decode_text(options_, Prepared(raw.front()).c_str()));
    return Bounded(name, OneLine(ValidUtf8(View(decoded.get()))));
  }

  // The message ids of the first header named `name`, "<a> <b>".
  std::optional<std::string> Ids(GMimeObject* object, std::string_view name) {
    std::vector<std::string_view> raw = RawValues(object, name);
    if (raw.empty()) return std::nullopt;
    References references(g_mime_references_parse(options_, std::string(raw.front()).c_str()));
    std::string ids;
    for (int i = 0; references && i < g_mime_references_length(references.get()); ++i) {
      std::string id = OneLine(ValidUtf8(View(g_mime_references_get_message_id(references.get(), i))));
      if (id.empty()) continue;
      if (!ids.empty()) ids += ' ';
      ids += "<" + id + ">";
    }
    if (ids.empty()) return std::nullopt;
    return Bounded(name, std::move(ids));
  }

 private:
  void Flatten(InternetAddressList* list, std::vector<Mailbox>& mailboxes, size_t& bytes, bool& cut) {
    for (int i = 0; i < internet_address_list_length(list); ++i) {
      InternetAddress* address = internet_address_list_get_address(list, i);
      if (INTERNET_ADDRESS_IS_GROUP(address)) {
        Flatten(internet_address_group_get_members(INTERNET_ADDRESS_GROUP(address)), mailboxes, bytes, cut);
        continue;
      }
      if (!INTERNET_ADDRESS_IS_MAILBOX(address)) continue;
      Mailbox m{std::string(Truncated(OneLine(ValidUtf8(View(internet_address_get_name(address)))), kMaxMailboxBytes)),
                std::string(Truncated(
                    OneLine(ValidUtf8(View(internet_address_mailbox_get_addr(INTERNET_ADDRESS_MAILBOX(address))))),
                    kMaxMailboxBytes))};
      bytes += m.name.size() + m.address.size();
      if (mailboxes.size() >= kMaxMailboxes || bytes > kMaxHeaderBytes) {
        cut = true;
        return;
      }
      mailboxes.push_back(std::move(m));
    }
  }

  std::string Bounded(std::string_view name, std::string value) {
    if (value.size() <= kMaxHeaderBytes) return value;
    NoteCut(name);
    return std::string(Truncated(value, kMaxHeaderBytes));
  }

  void NoteCut(std::string_view name) {
    findings_.Add({finding::kMailMalformed,
                   "the " + std::string(name) + " header is longer than the " + std::to_string(kMaxHeaderBytes) +
                       " bytes kept of it; the rest was left out",
                   {}});
  }

  GMimeParserOptions* options_;
  Findings& findings_;
};

// The headers the daemon keeps, as MailHeader records.
std::vector<MailHeader> KeptHeaders(GMimeMessage* message, HeaderReader& reader) {
  GMimeObject* object = GMIME_OBJECT(message);
  std::vector<MailHeader> headers;
  auto add = [&headers](const char* name) -> MailHeader& {
    headers.emplace_back().set_name(name);
    return headers.back();
  };
  for (const char* name : {"From", "To", "Cc", "Reply-To"}) {
    std::vector<Mailbox> mailboxes = reader.Mailboxes(object, name);
    if (mailboxes.empty()) continue;
    MailHeader& header = add(name);
    for (Mailbox& m : mailboxes) {
      v1::worker::Mailbox* mailbox = header.add_mailboxes();
      mailbox->set_name(std::move(m.name));
      mailbox->set_address(std::move(m.address));
    }
  }
  if (std::optional<std::string> subject = reader.Text(object, "Subject")) add("Subject").set_value(*subject);
  if (GDateTime* date = g_mime_message_get_date(message)) {
    MailHeader& header = add("Date");
    header.set_date_seconds(g_date_time_to_unix(date));
    header.set_date_offset_minutes(static_cast<int32_t>(g_date_time_get_utc_offset(date) / G_TIME_SPAN_MINUTE));
  }
  for (const char* name : {"Message-ID", "In-Reply-To", "References"}) {
    if (std::optional<std::string> ids = reader.Ids(object, name)) add(name).set_value(*ids);
  }
  return headers;
}

// An embedded message's headers as the text a reader sees above its body.
std::string HeaderLines(GMimeMessage* message, HeaderReader& reader) {
  GMimeObject* object = GMIME_OBJECT(message);
  std::string lines;
  for (const char* name : {"From", "To", "Cc"}) {
    if (std::vector<Mailbox> mailboxes = reader.Mailboxes(object, name); !mailboxes.empty()) {
      lines += std::string(name) + ": " + MailboxesText(mailboxes) + "\n";
    }
  }
  if (GDateTime* date = g_mime_message_get_date(message)) {
    GMallocPtr<char> formatted(g_mime_utils_header_format_date(date));
    lines += "Date: " + std::string(View(formatted.get())) + "\n";
  }
  if (std::optional<std::string> subject = reader.Text(object, "Subject")) lines += "Subject: " + *subject + "\n";
  return lines;
}

// ---------------------------------------------------------------------------
// Limits

struct LimitHit {
  std::string_view code;
  std::string reason;
};

// The first MailOptions limit the message's MIME tree breaks, in document
// order. Depth counts the multiparts and embedded messages around a part
// and the part itself if it is one; every part of every kind counts, those
// of embedded messages too.
std::optional<LimitHit> FirstLimitHit(GMimeMessage* message, const MailOptions& limits) {
  auto headers_fit = [&](GMimeObject* object) -> std::optional<LimitHit> {
    size_t bytes = HeaderBytes(object);
    if (limits.max_header_bytes() == 0 || bytes <= limits.max_header_bytes()) return std::nullopt;
    return LimitHit{finding::kLimitHeaderSize, "a header block of " + std::to_string(bytes) +
                                                   " bytes exceeds the limit of " +
                                                   std::to_string(limits.max_header_bytes()) + " bytes"};
  };
  struct Pending {
    GMimeObject* object;
    uint32_t depth;  // of the containers around it
  };
  std::vector<Pending> pending;
  auto push_body = [&pending](GMimeMessage* m, uint32_t depth) {
    if (GMimeObject* body = g_mime_message_get_mime_part(m)) pending.push_back({body, depth});
  };
  if (auto hit = headers_fit(GMIME_OBJECT(message))) return hit;
  push_body(message, 0);
  uint64_t parts = 0;
  while (!pending.empty()) {
    auto [object, depth] = pending.back();
    pending.pop_back();
    if (limits.max_parts() != 0 && ++parts > limits.max_parts()) {
      return LimitHit{finding::kLimitMimeParts,
                      "the message has more than " + std::to_string(limits.max_parts()) + " MIME parts"};
    }
    if (auto hit = headers_fit(object)) return hit;
    bool multipart = GMIME_IS_MULTIPART(object);
    if (!multipart && !GMIME_IS_MESSAGE_PART(object)) continue;
    if (limits.max_depth() != 0 && depth + 1 > limits.max_depth()) {
      return LimitHit{finding::kLimitMimeDepth, "the message nests multiparts and embedded messages more than " +
                                                    std::to_string(limits.max_depth()) + " deep"};
    }
    if (multipart) {
      GMimeMultipart* children = GMIME_MULTIPART(object);
      for (int i = g_mime_multipart_get_count(children) - 1; i >= 0; --i) {
        pending.push_back({g_mime_multipart_get_part(children, i), depth + 1});
      }
    } else if (GMimeMessage* embedded = g_mime_message_part_get_message(GMIME_MESSAGE_PART(object))) {
      if (auto hit = headers_fit(GMIME_OBJECT(embedded))) return hit;
      push_body(embedded, depth + 1);
    }
  }
  return std::nullopt;
}

// ---------------------------------------------------------------------------
// What parts become

struct ChildFile {
  std::string name;  // a path under the message: "report.pdf", "Re: hello/photo.jpg"
  std::string content;
  std::string declared_type;
  bool shown_inline = false;
};

// What a part, or a tree of them, turns into.
struct Rendering {
  std::vector<std::string> texts;      // body texts, in order
  std::vector<Finding> text_findings;  // about those texts: kept only with them
  std::vector<ChildFile> attachments;
  std::vector<Finding> findings;  // about the attachments

  void Append(Rendering other) {
    AppendAttachments(other);
    std::ranges::move(other.texts, std::back_inserter(texts));
    std::ranges::move(other.text_findings, std::back_inserter(text_findings));
  }

  // Its attachments, not its texts: an alternative rendering of the body
  // that was not chosen may still hold the only copy of a file.
  void AppendAttachments(Rendering& other) {
    std::ranges::move(other.attachments, std::back_inserter(attachments));
    std::ranges::move(other.findings, std::back_inserter(findings));
  }
};

// Whether the plain text of a multipart/alternative says what its richer
// (HTML) sibling does, rather than "view this mail in an HTML reader".
bool SaysTheSame(const Rendering& plain, const Rendering& rich) {
  return NonSpaceCharacters(JoinTexts(plain.texts)) * 10 >= NonSpaceCharacters(JoinTexts(rich.texts)) * 6;
}

std::string_view ExtensionFor(std::string_view type) {
  static constexpr std::pair<std::string_view, std::string_view> kExtensions[] = {
      {"application/pdf", ".pdf"},
      {"text/html", ".html"},
      {"image/png", ".png"},
      {"image/jpeg", ".jpg"},
      {"image/gif", ".gif"},
      {"application/zip", ".zip"},
      {"application/x-zip-compressed", ".zip"}};
  for (const auto& [declared, extension] : kExtensions) {
    if (type == declared) return extension;
  }
  if (type.starts_with("text/") || type.starts_with("message/")) return ".txt";
  return ".bin";
}

bool IsTnef(std::string_view type, std::string_view name) {
  return type == "application/ms-tnef" || type == "application/vnd.ms-tnef" || EqualsIgnoringAsciiCase(name, "winmail.dat");
}

// A uuencode "begin 644 name" line's name, or nullopt for other lines.
std::optional<std::string_view> UuencodeBegin(std::string_view line) {
  if (!line.starts_with("begin ")) return std::nullopt;
  std::string_view rest = line.substr(6);
  size_t digits = rest.find_first_not_of("01234567");
  if (digits < 3 || digits > 4 || rest[digits] != ' ') return std::nullopt;
  std::string_view name = Trim(rest.substr(digits + 1), " \t");
  if (name.empty()) return std::nullopt;
  return name;
}

bool IsUuencodedLine(std::string_view line) {
  return !line.empty() && std::ranges::all_of(line, [](char c) { return c >= 0x20 && c <= 0x60; });
}

// Decodes the lines between "begin" and "end" with GMime's uudecoder, each
// first made the length its count character says: senders strip trailing
// spaces (zero sextets), and GMime would read anything past the count as
// the next line's count.
std::string Uudecode(const std::vector<std::string_view>& lines) {
  std::string encoded;
  for (std::string_view line : lines) {
    size_t count = (static_cast<unsigned char>(line[0]) - 0x20) & 0x3F;
    size_t length = 1 + (count + 2) / 3 * 4;
    encoded.append(line.substr(0, length));
    encoded.append(length - std::min(length, line.size()), '`');
    encoded += '\n';
  }
  std::string decoded(encoded.size(), '\0');
  int state = GMIME_UUDECODE_STATE_BEGIN;  // its "begin" line is gone
  guint32 save = 0;
  decoded.resize(g_mime_encoding_uudecode_step(reinterpret_cast<const unsigned char*>(encoded.data()), encoded.size(),
                                               reinterpret_cast<unsigned char*>(decoded.data()), &state, &save));
  return decoded;
}

// ---------------------------------------------------------------------------
// TNEF (winmail.dat), with libytnef

std::string_view DescribeTnefError(int error) {
  switch (error) {
    case YTNEF_NOT_TNEF_STREAM:
      return "it is not TNEF";
    case YTNEF_ERROR_READING_DATA:
      return "its data ends early or has an empty field";
    case YTNEF_NO_KEY:
      return "it has no key";
    case YTNEF_BAD_CHECKSUM:
      return "an attribute's checksum is wrong";
    case YTNEF_ERROR_IN_HANDLER:
      return "an attribute is malformed or too large";
    default:
      return "libytnef could not parse it";
  }
}

class TnefMessage {
 public:
  explicit TnefMessage(std::string_view bytes) {
    TNEFInitialize(&tnef_);
    tnef_.Debug = 0;  // TNEFInitialize leaves it unset, and libytnef prints what it is told to
    error_ = TNEFParseMemory(reinterpret_cast<BYTE*>(const_cast<char*>(bytes.data())), static_cast<long>(bytes.size()),
                             &tnef_);
  }
  ~TnefMessage() { TNEFFree(&tnef_); }
  TnefMessage(const TnefMessage&) = delete;
  TnefMessage& operator=(const TnefMessage&) = delete;

  int error() const { return error_; }
  Attachment* first_attachment() { return tnef_.starting_attach.next; }

  // The charset of its 8-bit strings: the OEM code page it names ("CP932").
  std::string Charset() const {
    if (tnef_.CodePage.size < 4) return {};
    return "CP" + std::to_string(SwapDWord(tnef_.CodePage.data, 4));
  }

 private:
  TNEFStruct tnef_{};
  int error_ = 0;
};

bool Found(const variableLength* value) { return value != MAPI_UNDEFINED && value && value->size > 0; }

std::string_view Bytes(const variableLength* value) {
  return std::string_view(reinterpret_cast<const char*>(value->data), static_cast<size_t>(value->size));
}

std::string WithoutNuls(std::string text) {
  text.erase(std::find(text.begin(), text.end(), '\0'), text.end());
  return text;
}

// A string property: libytnef has made UTF-16 ones UTF-8 (in a buffer of
// 3 * size / 2 + 1 bytes, NUL-terminated, as its to_utf8 allocates it),
// and 8-bit ones are in the TNEF's code page.
std::string TnefString(const variableLength* value, bool unicode, const std::string& charset) {
  const char* data = reinterpret_cast<const char*>(value->data);
  if (unicode) return std::string(data, strnlen(data, static_cast<size_t>(value->size) * 3 / 2 + 1));
  return DecodeToUtf8CheckingLabel(WithoutNuls(std::string(Bytes(value))), charset).utf8;
}

// A member's name: its long filename, display name, or 8.3 title, in that
// order.
std::string TnefMemberName(Attachment* member, const std::string& charset) {
  for (ULONG id : {PR_ATTACH_LONG_FILENAME, PR_DISPLAY_NAME}) {
    for (ULONG type : {PT_UNICODE, PT_STRING8}) {
      if (variableLength* name = MAPIFindProperty(&member->MAPI, PROP_TAG(type, id)); Found(name)) {
        if (std::string base = BaseName(TnefString(name, type == PT_UNICODE, charset)); !base.empty()) return base;
      }
    }
  }
  return Found(&member->Title) ? BaseName(TnefString(&member->Title, false, charset)) : std::string();
}

// The member's bytes: an embedded object's after its 16-byte class id, else
// the attached file's.
std::string_view TnefMemberData(Attachment* member) {
  if (variableLength* object = MAPIFindProperty(&member->MAPI, PROP_TAG(PT_OBJECT, PR_ATTACH_DATA_OBJ));
      Found(object) && object->size > 16) {
    return Bytes(object).substr(16);
  }
  return Found(&member->FileData) ? Bytes(&member->FileData) : std::string_view();
}

std::string TnefMemberType(Attachment* member) {
  variableLength* tag = MAPIFindProperty(&member->MAPI, PROP_TAG(PT_STRING8, PR_ATTACH_MIME_TAG));
  if (!Found(tag)) return {};
  std::string type = AsciiLower(WithoutNuls(std::string(Bytes(tag))));
  auto token_char = [](char c) { return g_ascii_isalnum(c) || std::strchr("!#$&-^_.+/", c) != nullptr; };
  if (type.size() > kMaxDeclaredTypeBytes || type.find('/') == std::string::npos ||
      !std::ranges::all_of(type, token_char)) {
    return {};
  }
  return type;
}

// ---------------------------------------------------------------------------
// The MIME tree

// How a part is placed: content (a body text, an attachment) or a resource
// the body shows (the other parts of a multipart/related).
enum class Role { kContent, kRelatedResource };

class MessageReader {
 public:
  MessageReader(GMimeParserOptions* options, HeaderReader& headers) : options_(options), headers_(headers) {}

  Rendering ReadBody(GMimeMessage* message) {
    GMimeObject* body = g_mime_message_get_mime_part(message);
    return body ? Read(body, Role::kContent) : Rendering();
  }

 private:
  Rendering Read(GMimeObject* object, Role role) {
    if (GMIME_IS_MESSAGE_PART(object)) return ReadEmbedded(GMIME_MESSAGE_PART(object), role);
    if (GMIME_IS_MULTIPART(object)) {
      GMimeMultipart* multipart = GMIME_MULTIPART(object);
      if (g_mime_multipart_get_count(multipart) == 0) return ReadPrologue(multipart);
      std::string type = MimeType(object);
      if (role == Role::kContent && type == "multipart/alternative") return ReadAlternative(multipart);
      if (role == Role::kContent && type == "multipart/related") return ReadRelated(multipart);
      return ReadMixed(multipart, role);
    }
    if (GMIME_IS_PART(object)) return ReadLeaf(GMIME_PART(object), role);
    return {};
  }

  Rendering ReadMixed(GMimeMultipart* multipart, Role role) {
    Rendering rendering;
    for (int i = 0; i < g_mime_multipart_get_count(multipart); ++i) {
      rendering.Append(Read(g_mime_multipart_get_part(multipart, i), role));
    }
    return rendering;
  }

  // One body of the alternatives: the plain text when it says the same as
  // the richest, else the richest.
  Rendering ReadAlternative(GMimeMultipart* alternative) {
    std::vector<Rendering> renderings;
    std::optional<size_t> plain, rich;
    for (int i = 0; i < g_mime_multipart_get_count(alternative); ++i) {
      GMimeObject* part = g_mime_multipart_get_part(alternative, i);
      renderings.push_back(Read(part, Role::kContent));
      if (renderings.back().texts.empty()) continue;
      if (!plain && GMIME_IS_PART(part) && MimeType(part) == "text/plain") {
        plain = renderings.size() - 1;
      } else {
        rich = renderings.size() - 1;
      }
    }
    std::optional<size_t> chosen = plain;
    if (rich && (!plain || !SaysTheSame(renderings[*plain], renderings[*rich]))) chosen = rich;
    Rendering rendering;
    for (size_t i = 0; i < renderings.size(); ++i) {
      if (i == chosen) {
        rendering.Append(std::move(renderings[i]));
      } else {
        rendering.AppendAttachments(renderings[i]);
      }
    }
    return rendering;
  }

  // The root (the part the start parameter names, else the first of the
  // type parameter's type, else the first) is the body; the other parts
  // are what it shows.
  Rendering ReadRelated(GMimeMultipart* related) {
    int root = RelatedRoot(related);
    Rendering rendering;
    for (int i = 0; i < g_mime_multipart_get_count(related); ++i) {
      rendering.Append(
          Read(g_mime_multipart_get_part(related, i), i == root ? Role::kContent : Role::kRelatedResource));
    }
    return rendering;
  }

  static int RelatedRoot(GMimeMultipart* related) {
    std::string start = ContentTypeParameter(GMIME_OBJECT(related), "start");
    std::string_view start_id = Trim(start, " <>");
    std::string type = AsciiLower(ContentTypeParameter(GMIME_OBJECT(related), "type"));
    int count = g_mime_multipart_get_count(related);
    for (int i = 0; !start_id.empty() && i < count; ++i) {
      if (View(g_mime_object_get_content_id(g_mime_multipart_get_part(related, i))) == start_id) return i;
    }
    for (int i = 0; !type.empty() && i < count; ++i) {
      if (MimeType(g_mime_multipart_get_part(related, i)) == type) return i;
    }
    return 0;
  }

  Rendering ReadLeaf(GMimePart* part, Role role) {
    GMimeObject* object = GMIME_OBJECT(part);
    std::string type = MimeType(object);
    std::string filename = DeclaredFilename(object);
    bool text = type == "text/plain" || type == "text/html";
    if (role == Role::kContent && text && filename.empty() && !IsAttachmentDisposition(object)) {
      return type == "text/plain" ? ReadPlain(part) : ReadHtml(part);
    }
    std::string name = filename.empty() ? UnnamedAttachment(ExtensionFor(type)) : filename;
    std::string content = DecodedContent(part);
    if (IsTnef(type, name)) return ReadTnef(std::move(name), std::move(content), std::move(type));
    bool shown_inline = role == Role::kRelatedResource || (type.starts_with("image/") && IsInlineDisposition(object));
    Rendering rendering;
    rendering.attachments.push_back({std::move(name), std::move(content), std::move(type), shown_inline});
    return rendering;
  }

  Rendering ReadPlain(GMimePart* part) {
    Rendering rendering;
    AddPlainText(DecodeText(part, DecodedContent(part), {}, "a text", rendering), rendering);
    return rendering;
  }

  // A multipart without parts (no boundary, or none found) holds its whole
  // body as a prologue, which is what a mail reader then shows.
  Rendering ReadPrologue(GMimeMultipart* multipart) {
    Rendering rendering;
    std::string_view prologue = View(g_mime_multipart_get_prologue(multipart));
    if (!prologue.empty()) AddPlainText(DecodeToUtf8(prologue).utf8, rendering);
    return rendering;
  }

  void AddPlainText(std::string utf8, Rendering& rendering) {
    std::string text = WithLfLineEnds(std::move(utf8));
    MoveUuencodedFiles(text, rendering);
    rendering.texts.push_back(std::move(text));
  }

  Rendering ReadHtml(GMimePart* part) {
    Rendering rendering;
    std::string html = DecodedContent(part);
    std::string meta = HtmlMetaCharset(html);
    RenderedHtml rendered = RenderUtf8Html(DecodeText(part, html, meta, "an HTML", rendering));
    rendering.texts.push_back(std::move(rendered.text));
    rendering.text_findings.push_back({finding::kMailHtmlConverted, "an HTML body was converted to text", {}});
    size_t links = std::min(rendered.deceptive_links.size(), kMaxFindingsPerCode);
    for (const DeceptiveLink& link : std::span(rendered.deceptive_links).first(links)) {
      rendering.text_findings.push_back(
          {finding::kMailDeceptiveLink,
           "the link text shows " + Quoted(link.shown, 300) + " but leads to " + Quoted(link.target, 600),
           {}});
    }
    return rendering;
  }

  // A text part's bytes in UTF-8, by its charset parameter (or, for HTML
  // without one, its <meta>), noting a label that the bytes belie.
  std::string DecodeText(GMimePart* part, std::string_view bytes, std::string_view fallback_label,
                         std::string_view kind, Rendering& rendering) {
    std::string label = ContentTypeParameter(GMIME_OBJECT(part), "charset");
    if (label.empty()) label = fallback_label;
    DecodedText decoded = DecodeToUtf8CheckingLabel(bytes, label);
    if (decoded.declared_ignored) {
      rendering.text_findings.push_back(
          {finding::kMailCharsetFallback,
           std::string(kind) + " part declared " + Quoted(label, 60) + ", decoded as " + decoded.charset,
           {}});
    }
    return std::move(decoded.utf8);
  }

  // Cuts each uuencoded file ("begin 644 name", lines, "end") out of a
  // plain text body into an attachment, and says so where it was.
  void MoveUuencodedFiles(std::string& text, Rendering& rendering) {
    if (text.find("begin ") == std::string::npos) return;
    std::vector<std::string_view> lines = Lines(text);
    std::string kept;
    for (size_t i = 0; i < lines.size(); ++i) {
      std::optional<std::string_view> begin = UuencodeBegin(lines[i]);
      size_t end = i + 1;
      while (begin && end < lines.size() && lines[end] != "end" && IsUuencodedLine(lines[end])) ++end;
      if (!begin || end == lines.size() || lines[end] != "end") {
        kept.append(lines[i]).append("\n");
        continue;
      }
      std::string name = BaseName(*begin);
      if (name.empty()) name = UnnamedAttachment(".bin");
      rendering.attachments.push_back({name, Uudecode({lines.begin() + i + 1, lines.begin() + end}), {}, false});
      rendering.findings.push_back(
          {finding::kMailUuencoded, "a uuencoded file in the body was moved to an attachment", name});
      kept += "[uuencoded file " + name + " moved to an attachment]\n";
      i = end;
    }
    text = std::move(kept);
  }

  // `text`'s lines, without their line ends or trailing spaces (which a
  // uuencoded line may lose in transit and Uudecode puts back).
  static std::vector<std::string_view> Lines(std::string_view text) {
    std::vector<std::string_view> lines;
    while (!text.empty()) {
      size_t end = std::min(text.find('\n'), text.size());
      std::string_view line = text.substr(0, end);
      lines.push_back(line.substr(0, line.find_last_not_of(' ') + 1));
      text.remove_prefix(std::min(end + 1, text.size()));
    }
    return lines;
  }

  // Its members become attachments under its name; what libytnef cannot
  // read is passed on whole (the daemon's policy decides on TNEF itself).
  Rendering ReadTnef(std::string name, std::string content, std::string type) {
    Rendering rendering;
    TnefMessage tnef(content);
    if (tnef.error() == 0) {
      std::string charset = tnef.Charset();
      for (Attachment* member = tnef.first_attachment(); member; member = member->next) {
        std::string_view data = TnefMemberData(member);
        std::string member_name = TnefMemberName(member, charset);
        if (data.empty() && member_name.empty()) continue;  // a placeholder, as ytnef skips
        if (member_name.empty()) member_name = UnnamedAttachment(".bin");
        rendering.attachments.push_back({name + "/" + member_name, std::string(data), TnefMemberType(member), false});
      }
      if (!rendering.attachments.empty()) return rendering;
    } else {
      rendering.findings.push_back({finding::kMailMalformed,
                                    "libytnef could not read the TNEF attachment (" +
                                        std::string(DescribeTnefError(tnef.error())) + "); it is passed on as it is",
                                    name});
    }
    rendering.attachments.push_back({std::move(name), std::move(content), std::move(type), false});
    return rendering;
  }

  // An embedded message is one text attachment (its headers and body), and
  // its attachments are under that name.
  Rendering ReadEmbedded(GMimeMessagePart* part, Role role) {
    ++embedded_messages_;
    GMimeMessage* message = g_mime_message_part_get_message(part);
    std::string base;
    if (message) {
      std::string subject = headers_.Text(GMIME_OBJECT(message), "Subject").value_or("");
      std::ranges::replace(subject, '/', '_');
      std::ranges::replace(subject, '\\', '_');
      base = BaseName(Truncated(subject, 100));
      base.erase(0, base.find_first_not_of(". "));
    }
    if (base.empty()) base = "message-" + std::to_string(embedded_messages_);
    Rendering body = message ? ReadBody(message) : Rendering();
    std::string text = message ? HeaderLines(message, headers_) + "\n" + JoinTexts(body.texts) : std::string();
    const std::string text_name = base + ".txt";
    Rendering rendering;
    rendering.attachments.push_back({text_name, std::move(text), "text/plain", role == Role::kRelatedResource});
    for (ChildFile& a : body.attachments) {
      a.name = base + "/" + a.name;
      a.shown_inline = a.shown_inline || role == Role::kRelatedResource;
      rendering.attachments.push_back(std::move(a));
    }
    for (Finding& f : body.text_findings) {
      f.subject = text_name;
      rendering.findings.push_back(std::move(f));
    }
    for (Finding& f : body.findings) {
      f.subject = f.subject.empty() ? text_name : base + "/" + f.subject;
      rendering.findings.push_back(std::move(f));
    }
    return rendering;
  }

  // The name its sender gave a part (Content-Disposition filename, else
  // Content-Type name; RFC 2231 and 2047 decoded, the latter by our
  // charsets: see EncodedWordsAsUtf8), or "".
  std::string DeclaredFilename(GMimeObject* object) {
    for (std::string_view raw : RawValues(object, "Content-Disposition")) {
      GObjectPtr<GMimeContentDisposition> disposition(
          g_mime_content_disposition_parse(options_, PreparedParameters(raw).c_str()));
      if (!disposition) continue;
      if (std::string name =
              BaseName(Utf8(View(g_mime_content_disposition_get_parameter(disposition.get(), "filename"))));
          !name.empty()) {
        return name;
      }
    }
    for (std::string_view raw : RawValues(object, "Content-Type")) {
      GObjectPtr<GMimeContentType> type(g_mime_content_type_parse(options_, PreparedParameters(raw).c_str()));
      if (!type) continue;
      if (std::string name = BaseName(Utf8(View(g_mime_content_type_get_parameter(type.get(), "name"))));
          !name.empty()) {
        return name;
      }
    }
    return {};
  }

  std::string UnnamedAttachment(std::string_view extension) {
    return "attachment-" + std::to_string(++unnamed_attachments_) + std::string(extension);
  }

  GMimeParserOptions* options_;
  HeaderReader& headers_;
  unsigned unnamed_attachments_ = 0;
  unsigned embedded_messages_ = 0;
};

}  // namespace

void MailConverter::Convert(const ConvertInput& input, RecordSink& sink) {
  InitGMime();
  if (input.content.size() > G_MAXUINT) throw ConvertError("message too large for GMime");
  Findings findings;
  WarningCollector warnings(findings);
  ParserOptions options = NewParserOptions(warnings);
  BorrowedBytes bytes(input.content);
  GObjectPtr<GMimeMessage> message = ParseMessage(bytes, options.get());
  if (warnings.nesting_overflowed()) {
    sink.Finding(finding::kLimitMimeDepth, "the message nests MIME parts deeper than GMime parses them");
    return;
  }
  if (std::optional<LimitHit> hit = FirstLimitHit(message.get(), input.mail)) {
    sink.Finding(hit->code, std::move(hit->reason));
    return;
  }
  HeaderReader headers(options.get(), findings);
  Rendering body = MessageReader(options.get(), headers).ReadBody(message.get());
  std::string text = JoinTexts(body.texts);
  if (text.size() > input.max_output_bytes) {
    sink.Finding(finding::kLimitOutput, "body text of " + std::to_string(text.size()) +
                                            " bytes exceeds the output limit of " +
                                            std::to_string(input.max_output_bytes) + " bytes");
    return;
  }
  for (MailHeader& header : KeptHeaders(message.get(), headers)) sink.MailHeader(std::move(header));
  sink.Text(std::move(text));
  for (ChildFile& a : body.attachments) {
    sink.Child(std::move(a.name), std::move(a.content), std::move(a.declared_type), a.shown_inline);
  }
  for (Finding& f : body.text_findings) findings.Add(std::move(f));
  for (Finding& f : body.findings) findings.Add(std::move(f));
  findings.EmitTo(sink);
}

}  // namespace mugai
