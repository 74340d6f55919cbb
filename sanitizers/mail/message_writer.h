// Trusted side: writes the sanitized message with GMime from validated
// parts only (UTF-8 header values, mailboxes, texts, derivative bytes). It
// never sees the original message. Headers are 7-bit: a subject or display
// name that is not short-worded printable ASCII is RFC 2047-encoded as
// UTF-8 (written by this writer, not GMime 3.2.13, whose encoded-words run
// past RFC 2047's 75 characters and which misreads some of its own: words
// of at most 66 characters on lines of at most 76, B-encoded, Q-encoded
// where a B-word would need "=" padding before another); attachment names
// are RFC 2231-encoded as UTF-8 (filename*=UTF-8''…, in Content-Type's name
// too). Texts are text/plain; charset=utf-8 in 7bit, quoted-printable or
// base64, whichever GMime finds best within 7 bits; attachments are base64.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace mugai {

struct MailboxField {
  std::string name;     // display name, UTF-8 (may be empty)
  std::string address;  // addr-spec
};

struct MessageDate {
  int64_t seconds = 0;         // since the epoch
  int32_t offset_minutes = 0;  // the sender's offset from UTC
};

struct MessageAttachment {
  std::string name;        // UTF-8 file name
  std::string media_type;  // "application/pdf", "text/plain; charset=utf-8", ...
  std::string bytes;
};

struct OutgoingMessage {
  std::vector<MailboxField> from, to, cc, reply_to;
  std::string subject;                  // UTF-8
  std::optional<MessageDate> date;      // none: the Date header is the writing time
  std::string message_id;               // "<id@host>" or "" (one is made up)
  std::string in_reply_to, references;  // "<id>" tokens, whitespace-separated, or ""
  std::string sanitized_actions;        // X-Mugai-Sanitized, e.g. "CHG_TEXT CNV_PDF"
  std::string item_id;                  // X-Mugai-Id
  std::string notice;                   // UTF-8; "" for none
  std::string body;                     // UTF-8
  std::vector<MessageAttachment> attachments;
};

// The message as RFC 5322 bytes: LF line ends only, no line over 998
// bytes, 7-bit headers.
//
// Structure: without a notice or attachments it is one text/plain part
// (the body); otherwise multipart/mixed with the notice first, then the
// body, then the attachments in order. The notice and the body are
// Content-Disposition: inline with no file name, so readers show them as
// the message (the notice is what the recipient must read first, not a
// file to open); attachments are Content-Disposition: attachment with
// their name. Texts have their CR LF and lone CR made LF.
//
// Headers: Subject and display names have each run of control characters
// (C0, DEL, C1; so CR and LF) made one space, so no value can break a
// line, and surrounding spaces dropped; an empty subject leaves Subject
// out. An ASCII display name of up to 60 characters is a quoted-string. A mailbox is left out
// when its address is not an addr-spec without spaces or controls
// (dot-atom or quoted local part without spaces, dot-atom or [literal]
// domain, at most 254 bytes); a local part with dots out of place
// ("taro..yamada.") is written quoted, a Unicode domain as its IDNA
// A-label, a non-ASCII local part is left out. Message-ID, In-Reply-To and
// References are taken only when every whitespace-separated token is a
// well-formed "<left@right>" of printable ASCII (atoms and dots, or a
// [literal] right side; at most 900 bytes); a list with one bad token is
// left out whole, and a missing or bad Message-ID is replaced by a new
// one ("<random@host name>"). A date GLib cannot represent, or an offset
// of 24 hours or more, gives the writing time. X-Mugai-Sanitized and
// X-Mugai-Id are written only when non-empty printable ASCII.
// MIME-Version: 1.0 always.
//
// An attachment's media_type is parsed with its parameters (charset, ...);
// one that is not printable ASCII, does not parse, or is multipart/* or
// message/* (a reader would parse the bytes as MIME structure) becomes
// application/octet-stream. Its name gets the same control-character
// treatment as a header value; an empty name writes no file name.
//
// Throws std::invalid_argument when a text field (everything but an
// attachment's bytes) is not valid UTF-8: a caller's bug. Throws
// std::runtime_error when GMime fails to write. Safe to call from several
// threads at once.
std::string WriteMessage(const OutgoingMessage& message);

// Initialises GMime (g_mime_init) once per process; WriteMessage calls it
// too. g_mime_init is not thread-safe, so any other code in the process
// that calls it must do so before threads start, or through this.
void InitMessageWriter();

}  // namespace mugai
