// Mail messages, in the worker: GMime parses the whole MIME tree of one
// RFC 5322 message and the converter sends back what the daemon needs to
// write a new one: the kept headers decoded to UTF-8 (MailHeader records),
// one body text (Text), every attachment and inline image as a Child with
// its declared type, and findings for what was odd or changed.
//
// - Headers: From, To, Cc, Reply-To (mailboxes, groups flattened), Subject,
//   Date, Message-ID, In-Reply-To, References. Encoded words and RFC 2231
//   parameters are decoded with sanitizers/text's charsets, not GMime's
//   iconv ones: Shift_JIS and ISO-2022-JP as their Windows supersets, with
//   ①, ㈱ and 髙.
// - Bodies: text/plain kept (its charset decoded, a wrong label recovered by
//   detection: mail.charset_fallback); text/html through HtmlToText
//   (mail.html_converted); multipart/alternative reduced to one of its
//   bodies (the plain one when it says the same as the HTML one); several
//   inline text parts joined in order, a blank line between them. Other
//   text types (enriched, calendar, ...) are attachments. A multipart
//   without parts shows what it holds, as mail readers do.
// - Attachments: named as their sender named them (the last path component
//   only), else "attachment-N.ext"; the other parts of a multipart/related,
//   and inline images, are shown_inline.
// - Links whose text shows a URL other than their target: mail.deceptive_link.
// - Uuencoded files in a body are cut out and sent as children
//   (mail.uuencoded): left in, a reader could decode them by hand.
// - message/rfc822 (and message/global) parts: the embedded message becomes
//   a text child "<subject>.txt" (its headers and body), and its
//   attachments children under "<subject>/".
// - application/ms-tnef (winmail.dat): its members become children under
//   its name (libytnef). One libytnef cannot read (mail.malformed), or with
//   no members, is passed on whole, for the daemon's policy on TNEF.
// - GMime's parser warnings (bad boundaries, duplicated headers, ...):
//   mail.malformed, one per kind.
// - MailOptions limits: limit.mime_depth (also for parts nested deeper than
//   GMime parses, which it would leave unread), limit.mime_parts,
//   limit.header_size, and limit.output for the body text; the converter
//   stops at the first and sends nothing else of the message.
// - Something GMime cannot read as a message at all: ConvertError.
#pragma once

#include "sanitizers/worker/converter.h"

namespace mugai {

class MailConverter : public Converter {
 public:
  void Convert(const ConvertInput& input, RecordSink& sink) override;
};

}  // namespace mugai
