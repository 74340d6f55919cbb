#include "sanitizers/pipeline/mail_sanitizer.h"

#include <algorithm>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "sanitizers/core/findings.h"
#include "sanitizers/core/sha256.h"
#include "sanitizers/mail/message_writer.h"
#include "sanitizers/pipeline/names.h"
#include "sanitizers/text/safe_text.h"
#include "sanitizers/worker/record_validator.h"

namespace mugai {
namespace {

constexpr std::string_view kMessageName = "message.eml";

bool IsDetection(std::string_view code) { return code == finding::kAvDetected; }

// True when `part` was held for a detection, in itself or in a member of it.
bool HasDetection(const SanitizedFile& part) {
  return std::ranges::any_of(part.report.item().findings(), [](const v1::Finding& f) { return IsDetection(f.code()); }) ||
         std::ranges::any_of(part.held_for_members, [](const MemberFinding& f) { return IsDetection(f.code); });
}

bool NeverStops(const SanitizedFile&) { return false; }

std::vector<MailboxField> Mailboxes(const v1::worker::MailHeader& header) {
  std::vector<MailboxField> mailboxes;
  for (const v1::worker::Mailbox& m : header.mailboxes()) mailboxes.push_back({MakeSafeLine(m.name()), MakeSafeLine(m.address())});
  return mailboxes;
}

// The kept headers, from the worker's records (validated UTF-8; the writer
// checks ids and addresses again and leaves out what is malformed).
void TakeHeader(const v1::worker::MailHeader& header, OutgoingMessage& out) {
  const std::string& name = header.name();
  if (name == "From") out.from = Mailboxes(header);
  if (name == "To") out.to = Mailboxes(header);
  if (name == "Cc") out.cc = Mailboxes(header);
  if (name == "Reply-To") out.reply_to = Mailboxes(header);
  if (name == "Subject") out.subject = MakeSafeLine(header.value());
  if (name == "Message-ID") out.message_id = MakeSafeLine(header.value());
  if (name == "In-Reply-To") out.in_reply_to = MakeSafeLine(header.value());
  if (name == "References") out.references = MakeSafeLine(header.value());
  if (name == "Date") out.date = MessageDate{header.date_seconds(), header.date_offset_minutes()};
}

// A kept header as an administrator reads it: address headers as
// "Name <address>, ...", the others as their decoded value.
v1::ItemSummary::HeaderField SummaryField(const v1::worker::MailHeader& header) {
  v1::ItemSummary::HeaderField field;
  field.set_name(MakeSafeLine(header.name()));
  if (header.mailboxes().empty()) {
    field.set_value(MakeSafeLine(header.value()));
    return field;
  }
  std::string value;
  for (const MailboxField& m : Mailboxes(header)) {
    if (!value.empty()) value += ", ";
    value += m.name.empty() ? "<" + m.address + ">" : m.name + " <" + m.address + ">";
  }
  field.set_value(std::move(value));
  return field;
}

// What a delivered attachment was made into, for the notice and the
// X-Mugai-Sanitized header.
struct ConversionLabel {
  std::string_view action, code, ja, en;
};
constexpr ConversionLabel kConversionLabels[] = {
    {"convert_pdf", "CNV_PDF", "画像化した PDF に変換", "converted to a flattened PDF"},
    {"convert_office", "CNV_PDF", "画像化した PDF に変換", "converted to a flattened PDF"},
    {"convert_image", "CNV_IMG", "画像を再作成", "image re-created"},
    {"convert_text", "CNV_TEXT", "テキストに変換", "converted to text"},
    {"convert_html", "CNV_TEXT", "テキストに変換", "converted to text"},
    {"unpack_archive", "CNV_ZIP", "中のファイルを個別に無害化", "each file inside sanitized"},
};

const ConversionLabel* LabelFor(std::string_view action) {
  for (const ConversionLabel& label : kConversionLabels) {
    if (label.action == action) return &label;
  }
  return nullptr;
}

// Everything the receiver is told about, collected while the message is
// rebuilt.
struct Changes {
  std::vector<std::string> actions;  // X-Mugai-Sanitized codes, in order, once each
  bool html_converted = false;
  size_t links = 0;
  std::vector<std::string> body_warnings;    // deceptive links, uuencoded files
  std::vector<std::string> converted;        // "a.docx → a.pdf（…）"
  std::vector<MemberFinding> removed;        // attachments not delivered, and why
  std::vector<std::string> other_findings;   // "[code] reason"
  bool with_removals = false;

  void Act(std::string_view code) {
    if (!code.empty() && std::ranges::find(actions, code) == actions.end()) actions.emplace_back(code);
  }
  // Whether the receiver needs the notice: something more than a charset
  // conversion of a plain-text body happened.
  bool Notable() const {
    return html_converted || links > 0 || !body_warnings.empty() || !converted.empty() || !removed.empty();
  }
};

std::string Notice(const Changes& changes, std::string_view item_id, LinkPolicy links) {
  std::string text =
      "【無害化通知 / Mugai sanitization notice】\n"
      "このメールはインターネットから届いたため、安全な形に変換してからお届けしています。\n"
      "This message came from the internet and was made safe before it was delivered to you.\n"
      "受付番号 / Item ID: " +
      std::string(item_id) + "\n";
  if (changes.html_converted || changes.links > 0 || !changes.body_warnings.empty()) {
    text += "\n■ 本文 / Body\n";
    if (changes.html_converted) {
      text += "- HTML 形式の本文をテキストに変換しました。 / The HTML body was converted to plain text.\n";
    }
    if (changes.links > 0 && links != LinkPolicy::kKeep) {
      const std::string n = std::to_string(changes.links);
      text += links == LinkPolicy::kDefang
                  ? "- 本文中のリンク " + n + " 件を無効化しました（hxxp://example[.]jp の形）。 / " + n +
                        " links were defanged (written as hxxp://example[.]jp).\n"
                  : "- 本文中のリンク " + n + " 件を削除しました。 / " + n + " links were removed.\n";
    }
    for (const std::string& warning : changes.body_warnings) text += "- " + warning + "\n";
  }
  if (!changes.converted.empty() || !changes.removed.empty()) {
    text += "\n■ 添付ファイル / Attachments\n";
    for (const std::string& line : changes.converted) text += "- " + line + "\n";
    for (const MemberFinding& r : changes.removed) {
      text += "- " + r.path + ": 削除しました / removed  [" + r.code + "] " + r.reason + "\n";
    }
  }
  if (!changes.other_findings.empty()) {
    text += "\n■ その他 / Other findings\n";
    for (const std::string& line : changes.other_findings) text += "- " + line + "\n";
  }
  if (!changes.removed.empty()) {
    text +=
        "\n削除したファイルの原本は管理者が保管しています。必要な場合は受付番号を添えて管理者にお問い合わせください。\n"
        "The administrators keep the originals of removed files; if you need one, ask them and give the item ID.\n";
  }
  // Names and reasons come from the sender: no link in the notice is live.
  return ApplyLinkPolicy(text, LinkPolicy::kDefang).text;
}

// What the worker made of the message.
struct ParsedMessage {
  OutgoingMessage out;
  std::string body;
  std::vector<v1::worker::Child> attachments;
  std::vector<v1::worker::Child> shown_inline;
  std::vector<v1::worker::WorkerFinding> findings;
  v1::ItemSummary summary;  // the kept headers as decoded, for the vault
};

ParsedMessage Take(JobResult& result) {
  ParsedMessage parsed;
  // The validator let through only the record kinds of this conversion.
  for (v1::worker::Record& record : result.records) {
    if (record.has_mail_header()) {
      TakeHeader(record.mail_header(), parsed.out);
      *parsed.summary.add_headers() = SummaryField(record.mail_header());
    }
    if (record.has_text()) parsed.body += record.text().utf8();
    if (record.has_finding()) parsed.findings.push_back(std::move(*record.mutable_finding()));
    if (record.has_child()) {
      v1::worker::Child& child = *record.mutable_child();
      (child.shown_inline() ? parsed.shown_inline : parsed.attachments).push_back(std::move(child));
    }
  }
  return parsed;
}

// The report of an inline part removed by policy (its bytes stay with the
// original in the vault).
v1::ItemReport RemovedInline(const v1::worker::Child& part) {
  v1::ItemReport item = NewItem(part.name(), ToValidUtf8(part.declared_type()), part.content().size());
  item.set_path(MakeSafePath(part.name()).name);
  item.set_sha256(Sha256Hex(part.content()));
  AddFinding(item, finding::kMailPartRemoved, "shown within the HTML body; removed by policy");
  return Hold(std::move(item), "block").report.item();
}

std::string Leaf(const std::string& path) {
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

}  // namespace

SanitizedFile MailSanitizer::Sanitize(std::string_view message, std::string_view item_id) const {
  v1::ItemSummary summary;
  SanitizedFile sanitized = Convert(message, item_id, summary);
  sanitized.summary = std::move(summary);
  sanitized.summary.set_kind("mail");
  return sanitized;
}

SanitizedFile MailSanitizer::Convert(std::string_view message, std::string_view item_id,
                                     v1::ItemSummary& summary) const {
  const Deadline deadline = Clock::now() + files_.limits().item_time;
  v1::ItemReport item = NewItem("", "message/rfc822", message.size());
  if (message.empty()) {
    AddFinding(item, finding::kInputEmpty, "the message is empty");
    return Finish(std::move(item), "reject", outcome::kRejected);
  }
  item.set_sha256(Sha256Hex(message));

  ScanVerdict verdict = scanner_.Scan(message, deadline);
  if (!verdict.ok) {
    AddFinding(item, finding::kScanFailed, "the virus scan did not complete: " + verdict.error);
    return Hold(std::move(item), "quarantine");
  }
  item.set_detected_type(verdict.mime_type);
  // libclamav reads MIME too. What it found is looked for again in the
  // parts, each scanned alone, so that it can cost only that part; when no
  // part shows it, the message is held.
  std::optional<v1::Finding> whole_message_finding;
  // Held for what the scan found; the worker still parses the message, so
  // that the vault shows administrators its headers and text.
  bool held_for_detection = false;
  if (verdict.detected) {
    v1::Finding f = DetectionFinding(verdict);
    if (IsDetection(f.code()) && !policy_.strip_infected) {
      *item.add_findings() = std::move(f);
      held_for_detection = true;
    } else {
      whole_message_finding = std::move(f);
    }
  }
  // libmagic often calls real mail "data" (a long Received: chain, 8-bit
  // bytes): only a type it knows to be something else is refused.
  if (!held_for_detection && !verdict.mime_type.starts_with("message/") && !verdict.mime_type.starts_with("text/") &&
      verdict.mime_type != "application/octet-stream") {
    AddFinding(item, finding::kMailNotAMessage,
               verdict.mime_type + " (" + verdict.description +
                   ") is not an Internet mail message; send it as an attachment or as a file");
    return Finish(std::move(item), "reject", outcome::kRejected);
  }

  v1::worker::Job job;
  job.set_converter("mail");
  job.set_name(std::string(kMessageName));
  job.set_content(std::string(message));
  job.set_max_output_bytes(files_.limits().max_text_bytes);
  job.mutable_mail()->set_max_depth(policy_.max_depth);
  job.mutable_mail()->set_max_parts(policy_.max_parts);
  job.mutable_mail()->set_max_header_bytes(policy_.max_header_bytes);
  JobResult result = workers_.Run(std::move(job), deadline, kTextRecords | kChildRecords | kMailHeaderRecords);
  if (HeldForWorker(item, kMessageName, result.status, result.detail)) return Hold(std::move(item), "quarantine");
  ParsedMessage parsed = Take(result);
  summary = std::move(parsed.summary);
  summary.set_subject(parsed.out.subject);
  item.set_claimed_name(parsed.out.subject);
  SafeText safe = MakeSafeText(parsed.body);
  summary.set_preview(PreviewOf(safe.text));
  if (held_for_detection) return Hold(std::move(item), "quarantine");
  if (HeldForFindings(item, parsed.findings)) return Hold(std::move(item), "quarantine");

  Changes changes;
  for (const v1::worker::WorkerFinding& f : parsed.findings) {
    if (f.code() == finding::kMailHtmlConverted) {
      changes.html_converted = true;
      changes.Act("CHG_TEXT");
    } else if (f.code() == finding::kMailDeceptiveLink) {
      changes.body_warnings.push_back("注意: 表示と異なる宛先へのリンク / Warning, deceptive link: " + f.reason());
    } else if (f.code() == finding::kMailUuencoded) {
      changes.body_warnings.push_back("uuencode されたファイルを添付ファイルにしました / " + f.reason());
    } else {
      changes.other_findings.push_back("[" + f.code() + "] " + f.reason());
    }
  }

  if (safe.removed > 0) {
    AddFinding(item, finding::kTextStripped, std::to_string(safe.removed) + " control or bidi characters removed");
    changes.with_removals = true;
  }
  LinkedText body = ApplyLinkPolicy(safe.text, policy_.links);
  changes.links = body.links;
  if (body.links > 0 && policy_.links == LinkPolicy::kDefang) changes.Act("DEFANG_LINK");
  if (body.links > 0 && policy_.links == LinkPolicy::kRemove) changes.Act("DEL_LINK");

  if (policy_.keep_inline_images) {
    for (v1::worker::Child& part : parsed.shown_inline) parsed.attachments.push_back(std::move(part));
  } else {
    for (const v1::worker::Child& part : parsed.shown_inline) {
      v1::ItemReport removed = RemovedInline(part);
      changes.removed.push_back({removed.path(), std::string(finding::kMailPartRemoved), removed.findings(0).reason()});
      changes.Act("DEL_INLINE");
      *item.add_children() = std::move(removed);
    }
  }

  std::vector<std::optional<SanitizedFile>> parts = files_.SanitizeAttachments(
      parsed.attachments, message.size(), deadline, policy_.strip_infected ? NeverStops : HasDetection);
  std::set<std::string> taken;
  bool part_held_for_detection = false;
  bool part_held = false;
  for (size_t i = 0; i < parts.size(); ++i) {
    if (!parts[i]) continue;  // looked at below: a detection stopped it, or the time ran out
    SanitizedFile& part = *parts[i];
    v1::ItemReport& report = *part.report.mutable_item();
    if (HasDetection(part) && !policy_.strip_infected) {
      for (const MemberFinding& f : HeldFor(part)) {
        if (IsDetection(f.code)) AddFinding(item, f.code, f.reason + " (in " + f.path + ")");
      }
      *item.add_children() = std::move(report);
      return Hold(std::move(item), "quarantine");
    }
    if (report.outcome() == outcome::kQuarantined || report.outcome() == outcome::kRejected) {
      part_held = true;
      part_held_for_detection = part_held_for_detection || HasDetection(part);
      changes.Act(HasDetection(part) ? "DEL_INFECTED" : "DEL_ATTACH");
      for (MemberFinding& f : HeldFor(part)) changes.removed.push_back(std::move(f));
      *item.add_children() = std::move(report);
      continue;
    }
    if (report.action() == "keep_empty") {
      // Nothing to deliver, and no type to give nothing: it is not attached.
      changes.converted.push_back(report.path() + ": 空のファイルのため添付していません / an empty file, not attached");
      *item.add_children() = std::move(report);
      continue;
    }
    const ConversionLabel* label = LabelFor(report.action());
    for (int d = 0; d < report.derivatives_size(); ++d) {
      v1::Derivative& derivative = *report.mutable_derivatives(d);
      derivative.set_name(UniquePath(taken, Leaf(derivative.name())));
      parsed.out.attachments.push_back({derivative.name(), derivative.media_type(), std::move(part.derivatives[d])});
      std::string line = report.path() + " → " + derivative.name();
      if (label) line += "（" + std::string(label->ja) + " / " + std::string(label->en) + "）";
      changes.converted.push_back(std::move(line));
    }
    if (label) changes.Act(label->code);
    changes.with_removals = changes.with_removals || report.outcome() == outcome::kDeliveredWithRemovals;
    *item.add_children() = std::move(report);
  }
  if (std::ranges::any_of(parts, [](const auto& part) { return !part.has_value(); })) {
    AddFinding(item, finding::kLimitTime, "the message's time ran out before every attachment was sanitized");
    return Hold(std::move(item), "quarantine");
  }
  if (whole_message_finding) {
    const bool found_again = IsDetection(whole_message_finding->code()) ? part_held_for_detection : part_held;
    if (!found_again) {
      *item.add_findings() = std::move(*whole_message_finding);
      return Hold(std::move(item), "quarantine");
    }
  }

  changes.with_removals = changes.with_removals || !changes.removed.empty();
  if (changes.actions.empty()) changes.Act("NONE");
  for (const std::string& code : changes.actions) {
    parsed.out.sanitized_actions += (parsed.out.sanitized_actions.empty() ? "" : " ") + code;
  }
  parsed.out.item_id = std::string(item_id);
  if (changes.Notable()) parsed.out.notice = Notice(changes, item_id, policy_.links);
  parsed.out.body = std::move(body.text);
  const bool changed_beyond_text = !parsed.out.attachments.empty() || changes.with_removals;
  SanitizedFile sanitized = DeliverOne(std::move(item), "convert_mail",
                                       changes.with_removals ? outcome::kDeliveredWithRemovals : outcome::kDelivered,
                                       std::string(kMessageName), "message/rfc822", WriteMessage(parsed.out));
  sanitized.hold_original = policy_.always_keep_original || changed_beyond_text;
  return sanitized;
}

}  // namespace mugai
