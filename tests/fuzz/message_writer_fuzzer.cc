// The writer of the sanitized message and of its notice (WriteMessage), on
// fields as a compromised worker or a hostile sender could make them:
// display names, addresses, subject, ids, notice, body, attachment names
// and types. Contracts from message_writer.h: a field that is not valid
// UTF-8 is std::invalid_argument, and only then; otherwise the message has
// LF line ends only, no line over 998 bytes, 7-bit headers, and GMime
// reads it back with the subject that was given (controls made spaces).
#include <fuzzer/FuzzedDataProvider.h>
#include <gmime/gmime.h>

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>

#include "sanitizers/core/glib_handles.h"
#include "sanitizers/mail/message_writer.h"
#include "sanitizers/text/safe_text.h"
#include "tests/fuzz/fuzz_support.h"

namespace {

using mugai::GObjectPtr;

class Fields {
 public:
  explicit Fields(FuzzedDataProvider& fdp) : fdp_(fdp) {}

  std::string Text(size_t max) {
    std::string text = fdp_.ConsumeRandomLengthString(max);
    valid_ = valid_ && mugai::IsValidUtf8(text);
    return text;
  }

  std::vector<mugai::MailboxField> Mailboxes() {
    std::vector<mugai::MailboxField> list(fdp_.ConsumeIntegralInRange<size_t>(0, 3));
    for (mugai::MailboxField& m : list) {
      m.name = Text(80);
      m.address = Text(80);
    }
    return list;
  }

  bool valid() const { return valid_; }

 private:
  FuzzedDataProvider& fdp_;
  bool valid_ = true;
};

// Runs of spaces and TABs as one space, none at either end: how far a
// header's spacing survives folding.
std::string Spacing(std::string_view text) {
  std::string out;
  for (char c : text) {
    if (c == ' ' || c == '\t') {
      if (!out.empty() && out.back() != ' ') out += ' ';
    } else {
      out += c;
    }
  }
  if (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

// The subject as the writer promises to write it: each run of C0, DEL and
// C1 controls one space.
std::string WithoutControls(std::string_view utf8) {
  std::string out;
  const char* end = utf8.data() + utf8.size();
  for (const char* p = utf8.data(); p < end; p = g_utf8_next_char(p)) {
    gunichar c = g_utf8_get_char(p);
    if (c < 0x20 || (c >= 0x7F && c <= 0x9F)) {
      out += ' ';
    } else {
      out.append(p, static_cast<const char*>(g_utf8_next_char(p)));
    }
  }
  return out;
}

void CheckWritten(const std::string& bytes, const std::string& subject) {
  size_t line_start = 0;
  bool in_headers = true;
  for (size_t i = 0; i < bytes.size(); ++i) {
    const unsigned char c = bytes[i];
    FUZZ_ASSERT(c != '\r');
    if (in_headers) FUZZ_ASSERT(c < 0x80);
    if (c == '\n') {
      FUZZ_ASSERT(i - line_start <= 998);
      if (i == line_start) in_headers = false;
      line_start = i + 1;
    }
  }
  FUZZ_ASSERT(bytes.size() - line_start <= 998);

  GObjectPtr<GMimeStream> stream(g_mime_stream_mem_new_with_buffer(bytes.data(), bytes.size()));
  GObjectPtr<GMimeParser> parser(g_mime_parser_new_with_stream(stream.get()));
  GObjectPtr<GMimeMessage> message(g_mime_parser_construct_message(parser.get(), nullptr));
  FUZZ_ASSERT(message != nullptr);
  const char* read_back = g_mime_message_get_subject(message.get());
  FUZZ_ASSERT(Spacing(read_back ? read_back : "") == Spacing(WithoutControls(subject)));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  mugai::InitMessageWriter();
  FuzzedDataProvider fdp(data, size);
  Fields fields(fdp);
  mugai::OutgoingMessage m;
  m.from = fields.Mailboxes();
  m.to = fields.Mailboxes();
  m.cc = fields.Mailboxes();
  m.reply_to = fields.Mailboxes();
  m.subject = fields.Text(400);
  if (fdp.ConsumeBool()) m.date = mugai::MessageDate{fdp.ConsumeIntegral<int64_t>(), fdp.ConsumeIntegral<int32_t>()};
  m.message_id = fields.Text(100);
  m.in_reply_to = fields.Text(100);
  m.references = fields.Text(200);
  m.sanitized_actions = fields.Text(40);
  m.item_id = fields.Text(40);
  m.notice = fields.Text(400);
  for (size_t n = fdp.ConsumeIntegralInRange<size_t>(0, 2); n > 0; --n) {
    mugai::MessageAttachment& a = m.attachments.emplace_back();
    a.name = fields.Text(120);
    a.media_type = fields.Text(80);
    a.bytes = fdp.ConsumeRandomLengthString(200);
  }
  m.body = fields.Text(4000);
  std::string written;
  try {
    written = mugai::WriteMessage(m);
  } catch (const std::invalid_argument&) {
    FUZZ_ASSERT(!fields.valid());
    return 0;
  }
  FUZZ_ASSERT(fields.valid());
  CheckWritten(written, m.subject);
  return 0;
}
