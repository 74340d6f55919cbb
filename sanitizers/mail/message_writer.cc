#include "sanitizers/mail/message_writer.h"

#include <gmime/gmime.h>

#include <algorithm>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string_view>
#include <vector>

#include "sanitizers/core/glib_handles.h"
#include "sanitizers/text/safe_text.h"

namespace mugai {
namespace {

// The longest address SMTP carries (RFC 5321 4.5.3.1.3: a 256-octet path,
// angle brackets included); a longer one could never be delivered.
constexpr size_t kMaxAddressLength = 254;
// A msg-id cannot be folded, and a line holds at most 998 bytes.
constexpr size_t kMaxMessageIdLength = 900;
// The longest word of an ASCII subject, and the longest ASCII display name
// (a quoted-string is not folded here), written unencoded: either must fit
// on a folded line.
constexpr size_t kMaxPlainWord = 60;

struct FormatOptionsFree {
  void operator()(GMimeFormatOptions* options) const { g_mime_format_options_free(options); }
};
using FormatOptionsPtr = std::unique_ptr<GMimeFormatOptions, FormatOptionsFree>;

void RequireUtf8(std::string_view text, const char* field) {
  if (!IsValidUtf8(text)) throw std::invalid_argument(std::string("WriteMessage: ") + field + " is not valid UTF-8");
}

void RequireUtf8(const OutgoingMessage& m) {
  for (const auto* list : {&m.from, &m.to, &m.cc, &m.reply_to}) {
    for (const MailboxField& mailbox : *list) {
      RequireUtf8(mailbox.name, "a display name");
      RequireUtf8(mailbox.address, "an address");
    }
  }
  RequireUtf8(m.subject, "the subject");
  RequireUtf8(m.message_id, "the Message-ID");
  RequireUtf8(m.in_reply_to, "In-Reply-To");
  RequireUtf8(m.references, "References");
  RequireUtf8(m.sanitized_actions, "X-Mugai-Sanitized");
  RequireUtf8(m.item_id, "X-Mugai-Id");
  RequireUtf8(m.notice, "the notice");
  RequireUtf8(m.body, "the body");
  for (const MessageAttachment& attachment : m.attachments) {
    RequireUtf8(attachment.name, "an attachment name");
    RequireUtf8(attachment.media_type, "an attachment media type");
  }
}

bool IsPrintableAscii(std::string_view text) {
  for (unsigned char c : text) {
    if (c < 0x20 || c > 0x7E) return false;
  }
  return true;
}

bool IsControl(gunichar c) { return c < 0x20 || (c >= 0x7F && c <= 0x9F); }

// A header value is one line: a CR or LF inside an encoded-word would be a
// line break (or a "Bcc:" of the sender's making) to a reader decoding it.
// Each run of C0/C1 controls, DEL included, becomes one space, and spaces
// around the value go, as GMime drops them when it reads the field back.
std::string HeaderText(std::string_view utf8) {
  std::string text;
  const char* end = utf8.data() + utf8.size();
  for (const char* p = utf8.data(); p < end;) {
    const char* next = g_utf8_next_char(p);
    if (!IsControl(g_utf8_get_char(p))) {
      text.append(p, next);
    } else if (text.empty() || text.back() != ' ') {
      text += ' ';
    }
    p = next;
  }
  size_t first = text.find_first_not_of(' ');
  return first == std::string::npos ? "" : text.substr(first, text.find_last_not_of(' ') + 1 - first);
}

// Header text that can go out as it is: printable ASCII with nothing a
// reader would decode ("=?") and no word too long to fold.
bool IsPlainAscii(std::string_view text) {
  if (!IsPrintableAscii(text) || text.find("=?") != std::string_view::npos) return false;
  size_t word = 0;
  for (char c : text) {
    word = c == ' ' ? 0 : word + 1;
    if (word > kMaxPlainWord) return false;
  }
  return true;
}

std::string QuotedString(std::string_view ascii) {
  std::string quoted = "\"";
  for (char c : ascii) {
    if (c == '"' || c == '\\') quoted += '\\';
    quoted += c;
  }
  return quoted + "\"";
}

// Characters a Q-encoded word may carry as they are, in a phrase too.
bool IsQLiteral(unsigned char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '!' || c == '*' ||
         c == '+' || c == '-' || c == '/';
}

size_t QLength(std::string_view bytes) {
  size_t length = 0;
  for (unsigned char c : bytes) length += IsQLiteral(c) || c == ' ' ? 1 : 3;
  return length;
}

std::string QWord(std::string_view bytes) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string word = "=?UTF-8?Q?";
  for (unsigned char c : bytes) {
    if (IsQLiteral(c)) {
      word += static_cast<char>(c);
    } else if (c == ' ') {
      word += '_';
    } else {
      word += {'=', kHex[c >> 4], kHex[c & 0xF]};
    }
  }
  return word + "?=";
}

std::string BWord(std::string_view bytes) {
  GMallocPtr<gchar> base64(g_base64_encode(reinterpret_cast<const guchar*>(bytes.data()), bytes.size()));
  return std::string("=?UTF-8?B?") + base64.get() + "?=";
}

// RFC 2047 encoded-words for UTF-8 text, written here rather than by GMime
// 3.2.13, which gets two things wrong. It makes words of up to ~170
// characters out of text without spaces, which Japanese is; RFC 2047
// allows 75, and some readers garble longer ones. And its decoder (GMime
// issue 133) stops at a "="-padded B-word that another B-word follows, so
// it cannot read back its own "株式会社サンプル 総務部 山田太郎", and the
// LGWAN side may well read with GMime too. So: words of whole characters
// and at most 66 characters (one fits after "Reply-To: " on a 76-character
// line), B-encoded, except that a B-word other than the last must need no
// padding (a multiple of 3 bytes); where no such cut exists, the word is
// Q-encoded instead.
std::vector<std::string> EncodedWords(std::string_view utf8) {
  constexpr size_t kMaxBBytes = 39;  // 52 base64 characters
  constexpr size_t kMaxQText = 54;
  std::vector<std::string> words;
  while (!utf8.empty()) {
    size_t fits = 0;
    size_t aligned = 0;
    for (size_t end = 0; end < utf8.size();) {
      end = g_utf8_next_char(utf8.data() + end) - utf8.data();
      if (end > kMaxBBytes) break;
      fits = end;
      if (end % 3 == 0) aligned = end;
    }
    size_t length = fits == utf8.size() ? fits : aligned;
    if (length > 0) {
      words.push_back(BWord(utf8.substr(0, length)));
    } else {
      length = g_utf8_next_char(utf8.data()) - utf8.data();
      for (size_t end = length; end < utf8.size();) {
        end = g_utf8_next_char(utf8.data() + end) - utf8.data();
        if (QLength(utf8.substr(0, end)) > kMaxQText) break;
        length = end;
      }
      words.push_back(QWord(utf8.substr(0, length)));
    }
    utf8.remove_prefix(length);
  }
  return words;
}

// A field's raw value (what follows "Name:"), folded between tokens so that
// lines stay within 76 characters where the tokens allow it; no token is
// longer than an address, so no line comes near 998.
std::string FoldedValue(std::string_view field, const std::vector<std::string>& tokens) {
  constexpr size_t kFoldAt = 76;
  std::string raw;
  size_t line = field.size() + 1;
  for (const std::string& token : tokens) {
    if (line > field.size() + 1 && line + 1 + token.size() > kFoldAt) {
      raw += '\n';
      line = 0;
    }
    raw += ' ';
    raw += token;
    line += 1 + token.size();
  }
  return raw + '\n';
}

// Puts the field where GMime keeps its place among the headers, then
// replaces GMime's formatting of it with ours.
void SetRawHeader(GMimeObject* object, const char* field, const std::vector<std::string>& tokens) {
  g_mime_object_set_header(object, field, "", nullptr);
  GMimeHeader* header = g_mime_header_list_get_header(g_mime_object_get_header_list(object), field);
  g_mime_header_set_raw_value(header, FoldedValue(field, tokens).c_str());
}

void SetSubject(GMimeObject* object, std::string_view utf8) {
  std::string subject = HeaderText(utf8);
  if (subject.empty()) return;
  if (IsPlainAscii(subject)) {
    g_mime_object_set_header(object, "Subject", subject.c_str(), nullptr);
  } else {
    SetRawHeader(object, "Subject", EncodedWords(subject));
  }
}

bool IsAtext(unsigned char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         std::string_view("!#$%&'*+-/=?^_`{|}~").find(static_cast<char>(c)) != std::string_view::npos;
}

// Atoms and dots, the dots anywhere: msg-ids are opaque and compared as
// strings, and Japanese carriers long issued addresses like
// "taro..yamada.@docomo.ne.jp".
bool IsDotAtomText(std::string_view text) {
  if (text.empty()) return false;
  for (unsigned char c : text) {
    if (!IsAtext(c) && c != '.') return false;
  }
  return true;
}

// A dot-atom as RFC 5322 has it: no dot first, last or next to another.
bool IsDotAtom(std::string_view text) {
  return IsDotAtomText(text) && text.front() != '.' && text.back() != '.' && text.find("..") == std::string_view::npos;
}

// A quoted local part without spaces or controls ("\"a,b\"@example.jp").
bool IsQuotedLocalPart(std::string_view text) {
  if (text.size() < 2 || text.front() != '"' || text.back() != '"') return false;
  std::string_view inner = text.substr(1, text.size() - 2);
  auto visible = [](unsigned char c) { return c >= 0x21 && c <= 0x7E; };
  for (size_t i = 0; i < inner.size(); ++i) {
    if (!visible(inner[i]) || inner[i] == '"') return false;
    if (inner[i] == '\\' && (++i == inner.size() || !visible(inner[i]))) return false;
  }
  return true;
}

bool IsDomainLiteral(std::string_view text) {
  if (text.size() < 3 || text.front() != '[' || text.back() != ']') return false;
  for (unsigned char c : text.substr(1, text.size() - 2)) {
    if (c < 0x21 || c > 0x7E || c == '[' || c == ']' || c == '\\') return false;
  }
  return true;
}

// The local part as it can be written, or "". Dots out of place are
// quoted: GMime writes them bare, and then its own parser, like other
// strict ones, drops the whole mailbox.
std::string LocalPart(std::string_view local) {
  if (IsDotAtom(local) || IsQuotedLocalPart(local)) return std::string(local);
  if (IsDotAtomText(local)) return "\"" + std::string(local) + "\"";
  return "";
}

// The address as it can be written, or "" to leave the mailbox out. A
// non-ASCII domain is written as its IDNA A-label; a non-ASCII local part
// would need SMTPUTF8 and is left out.
std::string MailboxAddress(std::string_view address) {
  size_t at = address.rfind('@');
  if (at == std::string_view::npos) return "";
  std::string local = LocalPart(address.substr(0, at));
  std::string domain(address.substr(at + 1));
  if (!IsPrintableAscii(domain)) {
    GMallocPtr<char> ascii(g_hostname_to_ascii(domain.c_str()));
    if (!ascii) return "";
    domain = ascii.get();
  }
  if (local.empty() || !(IsDotAtom(domain) || IsDomainLiteral(domain))) return "";
  std::string written = local + "@" + domain;
  return written.size() <= kMaxAddressLength ? written : "";
}

// The mailboxes that can be written, as header tokens.
std::vector<std::string> MailboxTokens(const std::vector<MailboxField>& mailboxes) {
  std::vector<std::string> tokens;
  for (const MailboxField& mailbox : mailboxes) {
    std::string address = MailboxAddress(mailbox.address);
    if (address.empty()) continue;
    if (!tokens.empty()) tokens.back() += ',';
    std::string name = HeaderText(mailbox.name);
    if (name.empty()) {
      tokens.push_back(address);
      continue;
    }
    if (IsPlainAscii(name) && name.size() <= kMaxPlainWord) {
      tokens.push_back(QuotedString(name));
    } else {
      std::vector<std::string> words = EncodedWords(name);
      tokens.insert(tokens.end(), words.begin(), words.end());
    }
    tokens.push_back("<" + address + ">");
  }
  return tokens;
}

void SetMailboxes(GMimeObject* object, const char* field, const std::vector<MailboxField>& mailboxes) {
  std::vector<std::string> tokens = MailboxTokens(mailboxes);
  if (!tokens.empty()) SetRawHeader(object, field, tokens);
}

// "<left@right>" with nothing RFC 5322 would read as a comment or quote.
bool IsMessageId(std::string_view token) {
  if (token.size() > kMaxMessageIdLength || token.size() < 2 || token.front() != '<' || token.back() != '>') {
    return false;
  }
  std::string_view id = token.substr(1, token.size() - 2);
  size_t at = id.find('@');
  return at != std::string_view::npos && IsDotAtomText(id.substr(0, at)) &&
         (IsDotAtomText(id.substr(at + 1)) || IsDomainLiteral(id.substr(at + 1)));
}

// The right-hand side of the ids this writer makes up: the host name if it
// can be one. (GMime's own choice, given none, is "host.(none)" on a Linux
// host without a NIS domain, which is no msg-id at all.)
const char* MessageIdDomain() {
  static const std::string domain = [] {
    std::string host = g_get_host_name();
    return IsDotAtom(host) ? host : std::string("mugai.invalid");
  }();
  return domain.c_str();
}

void SetMessageId(GMimeMessage* message, std::string_view message_id) {
  if (IsMessageId(message_id)) {
    std::string id(message_id.substr(1, message_id.size() - 2));
    g_mime_message_set_message_id(message, id.c_str());
    return;
  }
  GMallocPtr<char> id(g_mime_utils_generate_message_id(MessageIdDomain()));
  g_mime_message_set_message_id(message, id.get());
}

// In-Reply-To and References: written whole or not at all, since a thread
// built on half a list is wrong in a way nobody notices.
void SetMessageIdList(GMimeObject* object, const char* header, std::string_view ids) {
  std::string list;
  size_t pos = 0;
  while ((pos = ids.find_first_not_of(" \t\r\n", pos)) != std::string_view::npos) {
    size_t end = std::min(ids.find_first_of(" \t\r\n", pos), ids.size());
    std::string_view token = ids.substr(pos, end - pos);
    if (!IsMessageId(token)) return;
    if (!list.empty()) list += ' ';
    list.append(token);
    pos = end;
  }
  if (!list.empty()) g_mime_object_set_header(object, header, list.c_str(), nullptr);
}

void SetAsciiHeader(GMimeObject* object, const char* header, std::string_view value) {
  if (value.empty() || !IsPrintableAscii(value)) return;
  g_mime_object_set_header(object, header, std::string(value).c_str(), nullptr);
}

// The sender's own date and offset, or the writing time when there is no
// date or GLib cannot represent it (years outside 1–9999, offsets of a day
// or more).
GDateTimePtr MessageDateTime(const std::optional<MessageDate>& date) {
  if (date && date->offset_minutes > -24 * 60 && date->offset_minutes < 24 * 60) {
    GDateTimePtr utc(g_date_time_new_from_unix_utc(date->seconds));
    GTimeZonePtr zone(g_time_zone_new_offset(date->offset_minutes * 60));
    if (utc && zone) {
      GDateTimePtr local(g_date_time_to_timezone(utc.get(), zone.get()));
      if (local) return local;
    }
  }
  return GDateTimePtr(g_date_time_new_now_local());
}

// Readers want one kind of line end, and a CR alone in a 7bit part would
// be a bare CR on the wire.
std::string WithLfLineEnds(std::string_view text) {
  std::string lf;
  lf.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '\r') {
      lf += text[i];
    } else if (i + 1 == text.size() || text[i + 1] != '\n') {
      lf += '\n';
    }
  }
  return lf;
}

// From a buffer with its length, not a C string: a NUL in the bytes (or in
// a text, where it is valid UTF-8) must not end them.
void SetContent(GMimePart* part, std::string_view bytes) {
  GObjectPtr<GMimeStream> stream(g_mime_stream_mem_new_with_buffer(bytes.data(), bytes.size()));
  GObjectPtr<GMimeDataWrapper> content(
      g_mime_data_wrapper_new_with_stream(stream.get(), GMIME_CONTENT_ENCODING_DEFAULT));
  g_mime_part_set_content(part, content.get());
}

GObjectPtr<GMimeObject> TextPart(std::string_view utf8) {
  GObjectPtr<GMimeObject> object(GMIME_OBJECT(g_mime_text_part_new_with_subtype("plain")));
  GMimePart* part = GMIME_PART(object.get());
  SetContent(part, WithLfLineEnds(utf8));
  g_mime_text_part_set_charset(GMIME_TEXT_PART(part), "utf-8");
  g_mime_part_set_content_encoding(part, g_mime_part_get_best_content_encoding(part, GMIME_ENCODING_CONSTRAINT_7BIT));
  return object;
}

// A derivative's type as the pipeline named it. A multipart or message
// type would make a reader parse the bytes as MIME structure, and RFC 2046
// forbids base64 for both, so those, and anything GMime cannot parse,
// become application/octet-stream.
GObjectPtr<GMimeContentType> AttachmentType(std::string_view media_type) {
  if (IsPrintableAscii(media_type)) {
    GObjectPtr<GMimeContentType> type(g_mime_content_type_parse(nullptr, std::string(media_type).c_str()));
    const char* top = g_mime_content_type_get_media_type(type.get());
    const char* sub = g_mime_content_type_get_media_subtype(type.get());
    if (top && sub && *top && *sub && g_ascii_strcasecmp(top, "multipart") != 0 &&
        g_ascii_strcasecmp(top, "message") != 0) {
      return type;
    }
  }
  return GObjectPtr<GMimeContentType>(g_mime_content_type_new("application", "octet-stream"));
}

GObjectPtr<GMimeObject> AttachmentPart(const MessageAttachment& attachment) {
  GObjectPtr<GMimeContentType> type = AttachmentType(attachment.media_type);
  GObjectPtr<GMimeObject> object(GMIME_OBJECT(g_mime_part_new_with_type(
      g_mime_content_type_get_media_type(type.get()), g_mime_content_type_get_media_subtype(type.get()))));
  GMimeParamList* params = g_mime_content_type_get_parameters(type.get());
  for (int i = 0; i < g_mime_param_list_length(params); ++i) {
    GMimeParam* param = g_mime_param_list_get_parameter_at(params, i);
    g_mime_object_set_content_type_parameter(object.get(), g_mime_param_get_name(param), g_mime_param_get_value(param));
  }
  GMimePart* part = GMIME_PART(object.get());
  g_mime_object_set_disposition(object.get(), GMIME_DISPOSITION_ATTACHMENT);
  std::string name = HeaderText(attachment.name);
  if (!name.empty()) g_mime_part_set_filename(part, name.c_str());
  SetContent(part, attachment.bytes);
  g_mime_part_set_content_encoding(part, GMIME_CONTENT_ENCODING_BASE64);
  return object;
}

GObjectPtr<GMimeObject> MessageBody(const OutgoingMessage& m) {
  GObjectPtr<GMimeObject> body = TextPart(m.body);
  if (m.notice.empty() && m.attachments.empty()) return body;
  GObjectPtr<GMimeMultipart> mixed(g_mime_multipart_new_with_subtype("mixed"));
  if (!m.notice.empty()) {
    GObjectPtr<GMimeObject> notice = TextPart(m.notice);
    g_mime_object_set_disposition(notice.get(), GMIME_DISPOSITION_INLINE);
    g_mime_multipart_add(mixed.get(), notice.get());
  }
  g_mime_object_set_disposition(body.get(), GMIME_DISPOSITION_INLINE);
  g_mime_multipart_add(mixed.get(), body.get());
  for (const MessageAttachment& attachment : m.attachments) {
    g_mime_multipart_add(mixed.get(), AttachmentPart(attachment).get());
  }
  return GObjectPtr<GMimeObject>(GMIME_OBJECT(mixed.release()));
}

// A format-options object of its own: GMime's default one is a process
// global that anything may change.
std::string Serialize(GMimeObject* object) {
  FormatOptionsPtr options(g_mime_format_options_new());
  g_mime_format_options_set_newline_format(options.get(), GMIME_NEWLINE_FORMAT_UNIX);
  g_mime_format_options_set_param_encoding_method(options.get(), GMIME_PARAM_ENCODING_METHOD_RFC2231);
  GObjectPtr<GMimeStream> stream(g_mime_stream_mem_new());
  if (g_mime_object_write_to_stream(object, options.get(), stream.get()) < 0) {
    throw std::runtime_error("WriteMessage: GMime could not write the message");
  }
  GByteArray* bytes = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(stream.get()));
  return std::string(reinterpret_cast<const char*>(bytes->data), bytes->len);
}

}  // namespace

std::string WriteMessage(const OutgoingMessage& m) {
  RequireUtf8(m);
  InitMessageWriter();
  GObjectPtr<GMimeMessage> message(g_mime_message_new(TRUE));
  GMimeObject* object = GMIME_OBJECT(message.get());
  SetMailboxes(object, "From", m.from);
  SetMailboxes(object, "To", m.to);
  SetMailboxes(object, "Cc", m.cc);
  SetMailboxes(object, "Reply-To", m.reply_to);
  SetSubject(object, m.subject);
  g_mime_message_set_date(message.get(), MessageDateTime(m.date).get());
  SetMessageId(message.get(), m.message_id);
  SetMessageIdList(object, "In-Reply-To", m.in_reply_to);
  SetMessageIdList(object, "References", m.references);
  SetAsciiHeader(object, "X-Mugai-Sanitized", m.sanitized_actions);
  SetAsciiHeader(object, "X-Mugai-Id", m.item_id);
  g_mime_message_set_mime_part(message.get(), MessageBody(m).get());
  return Serialize(object);
}

void InitMessageWriter() {
  static std::once_flag once;
  std::call_once(once, [] { g_mime_init(); });
}

}  // namespace mugai
