// mugai: the command-line client of mugaid.
//
//   mugai [CONNECTION] sanitize-file PATH [-o DIR] [--json]
//   mugai [CONNECTION] sanitize-mail MESSAGE.eml [-o OUT.eml] [--json]
//   mugai [CONNECTION] quarantine list | show ID | delete ID [--json]
//   mugai [CONNECTION] vault search | show | request-release | approve | deny
//                            | redeliver | download | delete | stats | export ...
//   mugai [CONNECTION] audit list | verify
//   mugai [CONNECTION] whoami | status [--json]
//   mugai [CONNECTION] submit | drop watch | inbox ...   (exchange_commands.h)
//
// CONNECTION: --server ADDR, TLS (--tls-ca, --tls-cert, --tls-key) and
// --token-file FILE. See kUsage.
//
// Exit codes: 0 delivered (maybe with removals) or done, 2 quarantined or
// rejected, 3 the audit chain does not verify, 1 error (usage, connection,
// server, refused).
#include <grpcpp/grpcpp.h>

#include <filesystem>
#include <iostream>
#include <optional>

#include "mugai/v1/admin.grpc.pb.h"
#include "mugai/v1/sanitize.grpc.pb.h"
#include "service/cli/cli_common.h"
#include "service/cli/exchange_commands.h"

namespace mugai::cli {
namespace {

namespace fs = std::filesystem;

constexpr char kUsage[] =
    "usage: mugai [--server ADDR] [--timeout SECONDS] [--tls-ca FILE [--tls-cert FILE --tls-key FILE]]\n"
    "             [--token-file FILE] COMMAND\n"
    "  sanitize-file PATH [-o DIR] [--json]   sanitize a file; derivatives go to DIR\n"
    "  sanitize-mail MESSAGE.eml [-o OUT.eml] [--json]\n"
    "                                         sanitize a mail message; the new one goes to OUT.eml\n"
    "  quarantine list | show ID | delete ID  the held quarantined items (vault search --outcome quarantined)\n"
    "  vault search [--from T] [--to T] [--sender S] [--recipient R] [--subject S] [--code C]\n"
    "               [--outcome O] [--state S] [--limit N] [--before ID]\n"
    "                                         recorded items, newest first (--state vault: originals kept)\n"
    "  vault show ID                          report, headers and a text preview; never the original\n"
    "  vault request-release ID --reason R    (operator)\n"
    "  vault approve ID [--reason R]          release it and hand it to its delivery path (approver)\n"
    "  vault deny ID --reason R               hold it again (approver)\n"
    "  vault redeliver ID                     retry a released item's failed delivery (approver)\n"
    "  vault download ID --reason R -o FILE   the original, logged (approver)\n"
    "  vault delete ID [--reason R]           the original is gone (operator)\n"
    "  vault stats [--from T] [--to T]        items by day, outcome and finding code\n"
    "  vault export items|audit [--from T] [--to T] [-o FILE]\n"
    "                                         the item log or the audit trail as CSV\n"
    "  audit list [--item ID] [--after SEQ] [--limit N]\n"
    "  audit verify                           check the audit trail's hash chain\n"
    "  whoami                                 the identity and roles mugaid sees\n"
    "  status                                 signatures and protections in force\n"
    "File exchange (ingress, the internet side):\n"
    "  submit PATH --to USER [--note TEXT] [--key K] [--json]\n"
    "                                         sanitize a file into USER's inbox; --key: the idempotency key\n"
    "                                         (default: a new random one)\n"
    "  drop watch DIR --to USER [--note TEXT] [--interval S] [--settle S] [--once]\n"
    "                                         submit each complete new file of DIR, then move it to DIR/done\n"
    "                                         or DIR/failed with NAME.report.json; --once: one pass\n"
    "File exchange (egress, the LGWAN side; the caller's own inbox):\n"
    "  inbox list [--json]                    the entries not yet acknowledged\n"
    "  inbox fetch ID -o DIR [--json]         one entry into DIR, SHA-256 verified (no acknowledgement)\n"
    "  inbox sync DIR [--interval S] [--once] [--json]\n"
    "                                         download, verify and acknowledge every new entry into DIR\n"
    "Every command takes --json where it prints something. T: a day (2026-12-01, UTC), or a time\n"
    "with Z or an offset (2026-12-01T09:00:00+09:00).\n"
    "ADDR: unix:/path or host:port; default $MUGAI_SERVER, else the built-in socket (ingress for\n"
    "sanitize-file, sanitize-mail, submit and drop; egress for inbox; admin for the rest).\n"
    "--tls-ca: TLS, verifying mugaid by this CA;\n"
    "--tls-cert/--tls-key: the client certificate (the caller's identity on a mutual-TLS listener).\n"
    "--token-file: the bearer token (its first line, or the last word of it); default for the admin\n"
    "commands $MUGAI_ADMIN_TOKEN_FILE, else /var/lib/mugai/admin.token when readable and no --tls-cert\n"
    "is given; for submit, drop and inbox $MUGAI_TOKEN_FILE, else none. A variable set empty: no token.\n"
    "exit: 0 delivered or done, 2 quarantined or rejected, 3 the audit chain does not verify, 1 error\n";

constexpr char kDefaultTokenFile[] = "/var/lib/mugai/admin.token";
int SanitizeFile(const Options& o) {
  if (o.words.size() != 2) throw UsageError("sanitize-file takes one PATH");
  AcceptOnly(o, "sanitize-file", {});
  Upload upload = OpenUpload(o.words[1]);
  const Connection ingress(o, kIngressSocket, BearerToken(o, "MUGAI_TOKEN_FILE", nullptr));
  auto stub = v1::Sanitizer::NewStub(ingress.channel());
  grpc::ClientContext context;
  ingress.Prepare(context);
  auto stream = stub->SanitizeFile(&context);
  v1::SanitizeFileRequest header;
  header.mutable_header()->set_name(upload.path.filename().string());
  header.mutable_header()->set_size(upload.size);
  Send(*stream, header, upload);

  v1::SanitizeFileResponse response;
  v1::Report report;
  bool have_report = false;
  std::vector<std::string> derivatives;
  while (stream->Read(&response)) {
    if (response.has_report()) {
      report = response.report();
      have_report = true;
      derivatives.assign(report.item().derivatives_size(), std::string());
    } else if (response.has_chunk()) {
      if (response.chunk().index() >= derivatives.size()) Fail("mugaid sent a chunk for no derivative");
      derivatives[response.chunk().index()] += response.chunk().data();
    }
  }
  ingress.Check(stream->Finish());
  if (!have_report) Fail("mugaid sent no report");

  const v1::ItemReport& item = report.item();
  if (o.output && !derivatives.empty()) {
    std::error_code ec;
    fs::create_directories(*o.output, ec);
    if (ec) Fail("cannot create " + *o.output + ": " + ec.message());
    for (int i = 0; i < item.derivatives_size(); ++i) {
      WriteFile(OutputPath(*o.output, item.derivatives(i).name()), derivatives[i]);
    }
  }
  if (o.json) {
    std::cout << ToJson(report);
  } else {
    PrintSummary(upload.path.filename().string(), report);
    for (const v1::Derivative& d : item.derivatives()) {
      std::cout << "  -> " << (o.output ? (fs::path(*o.output) / d.name()).string() : d.name())
                << " (" << d.size() << " bytes, sha256 " << d.sha256() << ")\n";
    }
  }
  return ExitFor(report.outcome());
}

int SanitizeMail(const Options& o) {
  if (o.words.size() != 2) throw UsageError("sanitize-mail takes one MESSAGE");
  AcceptOnly(o, "sanitize-mail", {});
  Upload upload = OpenUpload(o.words[1]);
  const Connection ingress(o, kIngressSocket, BearerToken(o, "MUGAI_TOKEN_FILE", nullptr));
  auto stub = v1::Sanitizer::NewStub(ingress.channel());
  grpc::ClientContext context;
  ingress.Prepare(context);
  auto stream = stub->SanitizeMessage(&context);
  v1::SanitizeMessageRequest header;
  header.mutable_header()->set_size(upload.size);
  Send(*stream, header, upload);

  v1::SanitizeMessageResponse response;
  std::optional<v1::Report> report;
  std::string message;
  while (stream->Read(&response)) {
    if (response.has_report()) report = response.report();
    if (response.has_chunk()) message += response.chunk();
  }
  ingress.Check(stream->Finish());
  if (!report) Fail("mugaid sent no report");
  const bool delivered = ExitFor(report->outcome()) == kExitDelivered;
  if (delivered && o.output) WriteFile(*o.output, message);
  if (o.json) {
    std::cout << ToJson(*report);
  } else {
    PrintSummary(upload.path.filename().string(), *report);
    if (delivered) {
      std::cout << "  -> " << (o.output ? *o.output : std::string("(not written; use -o OUT.eml)")) << " ("
                << message.size() << " bytes)\n";
    }
  }
  return ExitFor(report->outcome());
}


// The admin listener; every call carries the deadline and the token.
class AdminClient {
 public:
  explicit AdminClient(const Options& o)
      : connection_(o, kAdminSocket, BearerToken(o, "MUGAI_ADMIN_TOKEN_FILE", kDefaultTokenFile)),
        stub_(v1::Admin::NewStub(connection_.channel())) {}

  // One unary call of `method`; a failure ends the program naming `command`.
  template <typename Request, typename Response>
  Response Call(grpc::Status (v1::Admin::Stub::*method)(grpc::ClientContext*, const Request&, Response*),
                const Request& request, const std::string& command) const {
    grpc::ClientContext context;
    connection_.Prepare(context);
    Response response;
    connection_.Check((stub_.get()->*method)(&context, request, &response), command);
    return response;
  }

  // The bytes of a stream of chunks.
  template <typename Request, typename Response>
  std::string Download(std::unique_ptr<grpc::ClientReader<Response>> (v1::Admin::Stub::*method)(
                           grpc::ClientContext*, const Request&),
                       const Request& request, const std::string& command) const {
    grpc::ClientContext context;
    connection_.Prepare(context);
    std::unique_ptr<grpc::ClientReader<Response>> reader = (stub_.get()->*method)(&context, request);
    std::string bytes;
    for (Response response; reader->Read(&response);) bytes += response.chunk();
    connection_.Check(reader->Finish(), command);
    return bytes;
  }

 private:
  const Connection connection_;
  const std::unique_ptr<v1::Admin::Stub> stub_;
};

std::string Joined(const google::protobuf::RepeatedPtrField<std::string>& values, const std::string& separator) {
  std::string joined;
  for (const std::string& v : values) joined += (joined.empty() ? "" : separator) + v;
  return joined;
}

// The one ID argument of `command` ("vault show ID").
const std::string& ItemId(const Options& o, const std::string& command) {
  if (o.words.size() != 3) throw UsageError(command + " takes one ID");
  return o.words[2];
}

uint32_t Limit(const Options& o) {
  const uint64_t limit = Number(o, "--limit");
  if (limit > 100'000) throw UsageError("--limit is at most 100000");
  return static_cast<uint32_t>(limit);
}

void PrintItemLine(const v1::VaultItem& item) {
  std::cout << item.id() << "  " << item.received_at() << "  " << (item.state().empty() ? "-" : item.state()) << "  "
            << item.outcome() << "  " << item.name() << "  " << Joined(item.finding_codes(), ",");
  if (item.summary().kind() == "mail") {
    std::cout << "  from " << item.summary().sender() << ": " << item.summary().subject();
  }
  std::cout << "\n";
}

void PrintItem(const v1::VaultItem& item) {
  const v1::ItemSummary& summary = item.summary();
  std::cout << "id:         " << item.id() << "\nreceived:   " << item.received_at()
            << "\nkind:       " << summary.kind() << "\nname:       " << item.name()
            << "\ntype:       " << item.detected_type() << "\nsize:       " << item.size()
            << "\nsha256:     " << item.sha256() << "\noutcome:    " << item.outcome()
            << "\nstate:      " << (item.state().empty() ? "(no original kept)" : item.state());
  if (!item.state_changed_at().empty()) std::cout << " since " << item.state_changed_at();
  std::cout << "\n";
  if (summary.kind() == "mail") {
    std::cout << "sender:     " << summary.sender() << "\nrecipients: " << Joined(summary.recipients(), ", ")
              << "\nsubject:    " << summary.subject() << "\n";
  }
  if (!summary.headers().empty()) std::cout << "headers:\n";
  for (const v1::ItemSummary::HeaderField& h : summary.headers()) {
    std::cout << "  " << h.name() << ": " << h.value() << "\n";
  }
  const v1::ReleaseInfo& release = item.release();
  if (!release.requested_by().empty()) {
    std::cout << "release:\n  requested by " << release.requested_by() << " at " << release.requested_at() << ": "
              << release.request_reason() << "\n";
  }
  if (!release.decided_by().empty()) {
    std::cout << "  " << release.decision() << " by " << release.decided_by() << " at " << release.decided_at()
              << (release.decision_reason().empty() ? "" : ": " + release.decision_reason()) << "\n";
  }
  if (!release.delivered_at().empty()) {
    std::cout << "  delivered at " << release.delivered_at() << ": " << release.delivery() << "\n";
  } else if (!release.delivery().empty()) {
    std::cout << "  " << release.delivery() << "\n";
  }
  std::cout << "findings:\n";
  PrintFindings(item.report().item(), "  ");
  if (!summary.preview().empty()) std::cout << "preview:\n" << summary.preview() << "\n";
}

// After a state change.
int PrintChange(const Options& o, const v1::VaultItem& item) {
  if (o.json) {
    std::cout << ToJson(item);
    return kExitDelivered;
  }
  std::cout << item.id() << ": " << item.state() << "\n";
  if (!item.release().delivery().empty()) std::cout << "  " << item.release().delivery() << "\n";
  return kExitDelivered;
}

int Search(const Options& o, const AdminClient& admin, v1::SearchVaultRequest request, bool quarantine_list) {
  const std::string command = quarantine_list ? "quarantine list" : "vault search";
  v1::SearchVaultResponse response = admin.Call(&v1::Admin::Stub::SearchVault, request, command);
  if (o.json) {
    std::cout << ToJson(response);
    return kExitDelivered;
  }
  if (response.items().empty()) std::cout << (quarantine_list ? "(no quarantined items)\n" : "(no items)\n");
  for (const v1::VaultItem& item : response.items()) {
    if (quarantine_list) {
      std::cout << item.id() << "  " << item.received_at() << "  " << item.name() << "  " << item.detected_type()
                << "  " << Joined(item.finding_codes(), ",") << "\n";
    } else {
      PrintItemLine(item);
    }
  }
  return kExitDelivered;
}

int Show(const Options& o, const AdminClient& admin, const std::string& id, const std::string& command) {
  v1::GetVaultItemRequest request;
  request.set_id(id);
  v1::VaultItem item = admin.Call(&v1::Admin::Stub::GetVaultItem, request, command);
  if (o.json) {
    std::cout << ToJson(item);
  } else {
    PrintItem(item);
  }
  return kExitDelivered;
}

int Delete(const Options& o, const AdminClient& admin, const std::string& id, const std::string& command) {
  v1::DeleteVaultItemRequest request;
  request.set_id(id);
  request.set_reason(o.Value("--reason"));
  return PrintChange(o, admin.Call(&v1::Admin::Stub::DeleteVaultItem, request, command));
}

// The held items that were quarantined: the vault as `mugai quarantine`
// showed it before there was a vault.
int Quarantine(const Options& o) {
  if (o.words.size() < 2) throw UsageError("quarantine needs list, show ID or delete ID");
  const std::string& verb = o.words[1];
  const std::string command = "quarantine " + verb;
  AdminClient admin(o);
  if (verb == "list" && o.words.size() == 2) {
    AcceptOnly(o, command, {});
    v1::SearchVaultRequest request;
    request.set_outcome("quarantined");
    request.set_state("vault");
    return Search(o, admin, request, true);
  }
  if (verb == "show") {
    AcceptOnly(o, command, {});
    return Show(o, admin, ItemId(o, command), command);
  }
  if (verb == "delete") {
    AcceptOnly(o, command, {"--reason"});
    return Delete(o, admin, ItemId(o, command), command);
  }
  throw UsageError("quarantine needs list, show ID or delete ID");
}

int Vault(const Options& o) {
  if (o.words.size() < 2) throw UsageError("vault needs a subcommand");
  const std::string& verb = o.words[1];
  const std::string command = "vault " + verb;
  AdminClient admin(o);
  if (verb == "search") {
    AcceptOnly(o, command, {"--from", "--to", "--sender", "--recipient", "--subject", "--code", "--outcome",
                            "--state", "--limit", "--before"});
    if (o.words.size() != 2) throw UsageError("vault search takes options only");
    v1::SearchVaultRequest request;
    request.set_received_from(o.Value("--from"));
    request.set_received_to(o.Value("--to"));
    request.set_sender(o.Value("--sender"));
    request.set_recipient(o.Value("--recipient"));
    request.set_subject(o.Value("--subject"));
    request.set_finding_code(o.Value("--code"));
    request.set_outcome(o.Value("--outcome"));
    request.set_state(o.Value("--state"));
    request.set_limit(Limit(o));
    request.set_before_id(o.Value("--before"));
    return Search(o, admin, request, false);
  }
  if (verb == "show") {
    AcceptOnly(o, command, {});
    return Show(o, admin, ItemId(o, command), command);
  }
  if (verb == "request-release") {
    AcceptOnly(o, command, {"--reason"});
    v1::RequestReleaseRequest request;
    request.set_id(ItemId(o, command));
    request.set_reason(Required(o, "--reason", command));
    return PrintChange(o, admin.Call(&v1::Admin::Stub::RequestRelease, request, command));
  }
  if (verb == "approve" || verb == "deny") {
    AcceptOnly(o, command, {"--reason"});
    v1::DecideReleaseRequest request;
    request.set_id(ItemId(o, command));
    request.set_approve(verb == "approve");
    request.set_reason(verb == "approve" ? o.Value("--reason") : Required(o, "--reason", command));
    return PrintChange(o, admin.Call(&v1::Admin::Stub::DecideRelease, request, command));
  }
  if (verb == "redeliver") {
    AcceptOnly(o, command, {});
    v1::RedeliverRequest request;
    request.set_id(ItemId(o, command));
    return PrintChange(o, admin.Call(&v1::Admin::Stub::Redeliver, request, command));
  }
  if (verb == "download") {
    AcceptOnly(o, command, {"--reason"});
    v1::DownloadOriginalRequest request;
    request.set_id(ItemId(o, command));
    request.set_reason(Required(o, "--reason", command));
    if (!o.output) throw UsageError("vault download needs -o FILE");
    const std::string original = admin.Download(&v1::Admin::Stub::DownloadOriginal, request, command);
    WriteFile(*o.output, original, true);
    std::cout << request.id() << ": " << original.size() << " bytes of the original in " << *o.output << "\n";
    return kExitDelivered;
  }
  if (verb == "delete") {
    AcceptOnly(o, command, {"--reason"});
    return Delete(o, admin, ItemId(o, command), command);
  }
  if (verb == "stats") {
    AcceptOnly(o, command, {"--from", "--to"});
    if (o.words.size() != 2) throw UsageError("vault stats takes options only");
    v1::GetStatisticsRequest request;
    request.set_received_from(o.Value("--from"));
    request.set_received_to(o.Value("--to"));
    v1::GetStatisticsResponse response = admin.Call(&v1::Admin::Stub::GetStatistics, request, command);
    if (o.json) {
      std::cout << ToJson(response);
      return kExitDelivered;
    }
    if (response.counts().empty()) std::cout << "(no items)\n";
    for (const v1::DailyCount& c : response.counts()) {
      std::cout << c.day() << "  " << c.outcome() << "  " << (c.finding_code().empty() ? "(all)" : c.finding_code())
                << "  " << c.count() << "\n";
    }
    return kExitDelivered;
  }
  if (verb == "export") {
    AcceptOnly(o, command, {"--from", "--to"});
    if (o.words.size() != 3 || (o.words[2] != "items" && o.words[2] != "audit")) {
      throw UsageError("vault export takes items or audit");
    }
    v1::ExportLogRequest request;
    request.set_log(o.words[2] == "audit" ? v1::ExportLogRequest::AUDIT : v1::ExportLogRequest::ITEMS);
    request.set_from(o.Value("--from"));
    request.set_to(o.Value("--to"));
    const std::string csv = admin.Download(&v1::Admin::Stub::ExportLog, request, command);
    if (o.output) {
      WriteFile(*o.output, csv);
    } else {
      std::cout << csv;
    }
    return kExitDelivered;
  }
  throw UsageError("unknown vault subcommand " + verb);
}

int Audit(const Options& o) {
  if (o.words.size() != 2) throw UsageError("audit needs list or verify");
  const std::string& verb = o.words[1];
  const std::string command = "audit " + verb;
  AdminClient admin(o);
  if (verb == "list") {
    AcceptOnly(o, command, {"--item", "--after", "--limit"});
    v1::ListAuditRequest request;
    request.set_item_id(o.Value("--item"));
    request.set_after_seq(Number(o, "--after"));
    request.set_limit(Limit(o));
    v1::ListAuditResponse response = admin.Call(&v1::Admin::Stub::ListAudit, request, command);
    if (o.json) {
      std::cout << ToJson(response);
      return kExitDelivered;
    }
    for (const v1::AuditEntry& e : response.entries()) {
      std::cout << e.seq() << "  " << e.at() << "  " << e.actor() << "  " << e.action() << "  "
                << (e.item_id().empty() ? "-" : e.item_id()) << "  " << e.detail() << "\n";
    }
    return kExitDelivered;
  }
  if (verb == "verify") {
    AcceptOnly(o, command, {});
    v1::AuditVerification verification =
        admin.Call(&v1::Admin::Stub::VerifyAudit, v1::VerifyAuditRequest(), command);
    if (o.json) {
      std::cout << ToJson(verification);
    } else if (verification.ok()) {
      std::cout << "audit chain ok: " << verification.entries() << " entries, head " << verification.head_hash()
                << "\n";
    } else {
      std::cout << "audit chain FAILED at seq " << verification.first_bad_seq() << ": " << verification.problem()
                << "\n";
    }
    return verification.ok() ? kExitDelivered : kExitAuditFailed;
  }
  throw UsageError("audit needs list or verify");
}

int WhoAmI(const Options& o) {
  if (o.words.size() != 1) throw UsageError("whoami takes no arguments");
  AcceptOnly(o, "whoami", {});
  v1::WhoAmIResponse response = AdminClient(o).Call(&v1::Admin::Stub::WhoAmI, v1::WhoAmIRequest(), "whoami");
  if (o.json) {
    std::cout << ToJson(response);
  } else {
    std::cout << response.identity() << " (roles: "
              << (response.roles().empty() ? std::string("none") : Joined(response.roles(), ", ")) << ")\n";
  }
  return kExitDelivered;
}

int Status(const Options& o) {
  if (o.words.size() != 1) throw UsageError("status takes no arguments");
  AcceptOnly(o, "status", {});
  const Connection admin(o, kAdminSocket, BearerToken(o, "MUGAI_ADMIN_TOKEN_FILE", kDefaultTokenFile));
  auto stub = v1::Status::NewStub(admin.channel());
  grpc::ClientContext context;
  admin.Prepare(context);
  v1::DaemonStatus status;
  admin.Check(stub->GetStatus(&context, v1::GetStatusRequest(), &status));
  if (o.json) {
    std::cout << ToJson(status);
    return kExitDelivered;
  }
  std::cout << "mugaid " << status.version() << ", " << status.workers() << " workers\n"
            << "signatures: " << status.signatures().signature_count() << " from "
            << status.signatures().directory()
            << (status.signatures().test_signatures_only() ? " (TEST SIGNATURES ONLY)" : "") << "\n";
  for (const std::string& p : status.protections()) std::cout << "worker sandbox: " << p << "\n";
  for (const std::string& p : status.scanner_protections()) std::cout << "scanner sandbox: " << p << "\n";
  for (const std::string& w : status.warnings()) std::cout << "WARNING: " << w << "\n";
  return kExitDelivered;
}

int Run(int argc, char** argv) {
  try {
    Options o = ParseArguments(argc, argv, kUsage);
    const std::string& command = o.words[0];
    if (command == "sanitize-file") return SanitizeFile(o);
    if (command == "sanitize-mail") return SanitizeMail(o);
    if (command == "quarantine") return Quarantine(o);
    if (command == "vault") return Vault(o);
    if (command == "audit") return Audit(o);
    if (command == "whoami") return WhoAmI(o);
    if (command == "status") return Status(o);
    if (command == "submit") return Submit(o);
    if (command == "drop") return Drop(o);
    if (command == "inbox") return Inbox(o);
    throw UsageError("unknown command " + command);
  } catch (const UsageError& e) {
    std::cerr << "mugai: " << e.what() << "\n" << kUsage;
    return kExitError;
  } catch (const std::exception& e) {
    Fail(e.what());
  }
}

}  // namespace
}  // namespace mugai::cli

int main(int argc, char** argv) { return mugai::cli::Run(argc, argv); }
