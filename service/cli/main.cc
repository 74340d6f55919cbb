// mugai: the command-line client of mugaid.
//
//   mugai [CONNECTION] sanitize-file PATH [-o DIR] [--json]
//   mugai [CONNECTION] sanitize-mail MESSAGE.eml [-o OUT.eml] [--json]
//   mugai [CONNECTION] quarantine list | show ID | delete ID [--json]
//   mugai [CONNECTION] vault search | show | request-release | approve | deny
//                            | redeliver | download | delete | stats | export ...
//   mugai [CONNECTION] audit list | verify
//   mugai [CONNECTION] whoami | status [--json]
//
// CONNECTION: --server ADDR, TLS (--tls-ca, --tls-cert, --tls-key) and, for
// the admin listener, --token-file FILE. See kUsage.
//
// Exit codes: 0 delivered (maybe with removals) or done, 2 quarantined or
// rejected, 3 the audit chain does not verify, 1 error (usage, connection,
// server, refused).
#include <google/protobuf/util/json_util.h>
#include <grpcpp/grpcpp.h>

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <iostream>
#include <map>
#include <optional>
#include <set>
#include <sstream>

#include "mugai/v1/admin.grpc.pb.h"
#include "mugai/v1/sanitize.grpc.pb.h"
#include "service/wire_limits.h"

namespace mugai {
namespace {

namespace fs = std::filesystem;

constexpr int kExitDelivered = 0;
constexpr int kExitError = 1;
constexpr int kExitHeld = 2;
constexpr int kExitAuditFailed = 3;

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
    "Every command takes --json where it prints something. T: a day (2026-12-01, UTC), or a time\n"
    "with Z or an offset (2026-12-01T09:00:00+09:00).\n"
    "ADDR: unix:/path or host:port; default $MUGAI_SERVER, else the built-in socket (ingress for\n"
    "sanitize-file and sanitize-mail, admin for the rest). --tls-ca: TLS, verifying mugaid by this CA;\n"
    "--tls-cert/--tls-key: the client certificate (the admin identity on a mutual-TLS admin listener).\n"
    "--token-file: the admin bearer token (its first line, or the last word of it); default\n"
    "$MUGAI_ADMIN_TOKEN_FILE, else /var/lib/mugai/admin.token when readable and no --tls-cert is given.\n"
    "exit: 0 delivered or done, 2 quarantined or rejected, 3 the audit chain does not verify, 1 error\n";

struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// The options that take a value and belong to one command or another.
const std::set<std::string, std::less<>> kCommandOptions = {
    "--from", "--to",    "--sender", "--recipient", "--subject", "--code", "--outcome",
    "--state", "--limit", "--before", "--reason",   "--item",    "--after"};

struct Options {
  std::optional<std::string> server;
  int timeout_seconds = 600;
  bool json = false;
  std::optional<std::string> output;  // -o: a directory or a file, by command
  std::optional<std::string> token_file;
  std::string tls_ca, tls_cert, tls_key;
  std::map<std::string, std::string, std::less<>> values;  // kCommandOptions given
  std::vector<std::string> words;  // command and its arguments

  // The value of the command option `name`, or "".
  std::string Value(std::string_view name) const {
    auto found = values.find(name);
    return found == values.end() ? std::string() : found->second;
  }
};

Options ParseArguments(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw UsageError(arg + " needs a value");
      return argv[++i];
    };
    if (arg == "--server") {
      o.server = value();
    } else if (arg == "--timeout") {
      o.timeout_seconds = std::atoi(value().c_str());
      if (o.timeout_seconds <= 0) throw UsageError("--timeout needs a positive number of seconds");
    } else if (arg == "--json") {
      o.json = true;
    } else if (arg == "-o" || arg == "--output") {
      o.output = value();
    } else if (arg == "--token-file") {
      o.token_file = value();
    } else if (arg == "--tls-ca") {
      o.tls_ca = value();
    } else if (arg == "--tls-cert") {
      o.tls_cert = value();
    } else if (arg == "--tls-key") {
      o.tls_key = value();
    } else if (kCommandOptions.count(arg)) {
      o.values[arg] = value();
    } else if (arg == "--help" || arg == "-h") {
      std::cout << kUsage;
      std::exit(kExitDelivered);
    } else if (arg.size() > 1 && arg[0] == '-') {
      throw UsageError("unknown option " + arg);
    } else {
      o.words.push_back(arg);
    }
  }
  if (o.words.empty()) throw UsageError("no command given");
  if (o.tls_cert.empty() != o.tls_key.empty()) throw UsageError("--tls-cert and --tls-key go together");
  return o;
}

// Refuses the command options that `command` does not take.
void AcceptOnly(const Options& o, const std::string& command, std::initializer_list<std::string_view> accepted) {
  for (const auto& [name, value] : o.values) {
    if (std::find(accepted.begin(), accepted.end(), name) == accepted.end()) {
      throw UsageError(command + " does not take " + name);
    }
  }
}

std::string ServerAddress(const Options& o, const char* builtin) {
  if (o.server) return *o.server;
  if (const char* env = std::getenv("MUGAI_SERVER"); env && *env) return env;
  return builtin;
}

[[noreturn]] void Fail(const std::string& what) {
  std::cerr << "mugai: " << what << "\n";
  std::exit(kExitError);
}

// A certificate, key or token file: small, read whole.
std::string ReadSmallFile(const std::string& path, const std::string& what) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream contents;
  if (!in || !(contents << in.rdbuf())) Fail("cannot read " + what + " " + path);
  return contents.str();
}

std::shared_ptr<grpc::Channel> Connect(const std::string& address, const Options& o) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(kMaxMessageBytes);
  args.SetMaxSendMessageSize(kMaxMessageBytes);
  if (o.tls_ca.empty() && o.tls_cert.empty()) {
    return grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args);
  }
  grpc::SslCredentialsOptions tls;  // no --tls-ca: the system's CAs
  if (!o.tls_ca.empty()) tls.pem_root_certs = ReadSmallFile(o.tls_ca, "the CA certificate");
  if (!o.tls_cert.empty()) {
    tls.pem_cert_chain = ReadSmallFile(o.tls_cert, "the client certificate");
    tls.pem_private_key = ReadSmallFile(o.tls_key, "the client key");
  }
  return grpc::CreateCustomChannel(address, grpc::SslCredentials(tls), args);
}

void SetDeadline(grpc::ClientContext& context, const Options& o) {
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(o.timeout_seconds));
}

// `command` names what was asked, for a refusal.
void CheckStatus(const grpc::Status& status, const std::string& address, const std::string& command = "") {
  if (status.ok()) return;
  const std::string what = command.empty() ? "" : command + ": ";
  switch (status.error_code()) {
    case grpc::StatusCode::UNAVAILABLE:
      Fail("cannot reach mugaid at " + address + ": " + status.error_message());
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      Fail("mugaid at " + address + " did not answer in time");
    case grpc::StatusCode::PERMISSION_DENIED:
      Fail(what + "permission denied: " + status.error_message());
    case grpc::StatusCode::UNAUTHENTICATED:
      Fail(what + "not authenticated: " + status.error_message() +
           " (give --token-file, or --tls-cert and --tls-key)");
    default:
      Fail((command.empty() ? "mugaid at " + address + ": " : what) + status.error_message());
  }
}

std::string ToJson(const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = true;
  options.always_print_primitive_fields = true;
  options.preserve_proto_field_names = true;
  std::string json;
  if (!google::protobuf::util::MessageToJsonString(message, &json, options).ok()) {
    Fail("cannot print the reply as JSON");
  }
  return json;
}

void PrintFindings(const v1::ItemReport& item, const std::string& indent) {
  for (const v1::Finding& f : item.findings()) {
    std::cout << indent << f.code() << ": " << f.reason() << "\n";
  }
}

// The members of a delivered archive that were left out, and why.
void PrintRemovedMembers(const v1::ItemReport& item, const std::string& indent) {
  for (const v1::ItemReport& member : item.children()) {
    if (member.outcome() == "quarantined" || member.outcome() == "rejected") {
      std::cout << indent << "removed " << member.path() << "\n";
      PrintFindings(member, indent + "  ");
    } else {
      PrintRemovedMembers(member, indent);
    }
  }
}

int ExitFor(const std::string& outcome) {
  return outcome == "delivered" || outcome == "delivered_with_removals" ? kExitDelivered : kExitHeld;
}

// Derivative names come from mugaid; still, a name is only ever a file name
// inside the chosen directory.
fs::path OutputPath(const fs::path& dir, const std::string& name) {
  if (name.empty() || name == "." || name == ".." || name.find('/') != std::string::npos) {
    Fail("mugaid sent an unusable derivative name \"" + name + "\"");
  }
  return dir / name;
}

// An upload: the file at `path`, its size, opened.
struct Upload {
  fs::path path;
  std::ifstream in;
  uint64_t size = 0;
};

Upload OpenUpload(const fs::path& path) {
  Upload upload{path, std::ifstream(path, std::ios::binary), 0};
  if (!upload.in) Fail("cannot read " + path.string());
  std::error_code ec;
  upload.size = fs::file_size(path, ec);
  if (ec) Fail("cannot read " + path.string() + ": " + ec.message());
  return upload;
}

// Sends `header` and then the upload's bytes as chunks. The server may stop
// reading early (an oversized upload is refused from its header); a failed
// write then just means it has answered already.
template <typename Request, typename Stream>
void Send(Stream& stream, const Request& header, Upload& upload) {
  bool writing = stream.Write(header);
  std::string buffer(kChunkBytes, '\0');
  while (writing && upload.in) {
    upload.in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
    if (upload.in.gcount() <= 0) break;
    Request chunk;
    chunk.set_chunk(buffer.substr(0, static_cast<size_t>(upload.in.gcount())));
    writing = stream.Write(chunk);
  }
  stream.WritesDone();
}

// Writes `bytes` to `target` through a temporary file beside it, so a
// half-written file never has the final name. `owner_only`: mode 0600, for
// an original that may be malware.
void WriteFile(const fs::path& target, const std::string& bytes, bool owner_only = false) {
  fs::path partial = target.string() + ".part";
  {
    std::ofstream out(partial, std::ios::binary | std::ios::trunc);
    std::error_code ec;
    if (owner_only) fs::permissions(partial, fs::perms::owner_read | fs::perms::owner_write, ec);
    if (ec) Fail("cannot restrict " + partial.string() + ": " + ec.message());
    out << bytes;
    if (!out.flush()) Fail("cannot write " + partial.string());
  }
  std::error_code ec;
  fs::rename(partial, target, ec);
  if (ec) Fail("cannot write " + target.string() + ": " + ec.message());
}

void PrintSummary(const Upload& upload, const v1::Report& report) {
  const v1::ItemReport& item = report.item();
  std::cout << upload.path.filename().string() << ": " << report.outcome() << " (item " << report.item_id() << ", "
            << item.detected_type() << ")\n";
  PrintFindings(item, "  ");
  if (report.outcome() == "delivered_with_removals") PrintRemovedMembers(item, "  ");
}

int SanitizeFile(const Options& o) {
  if (o.words.size() != 2) throw UsageError("sanitize-file takes one PATH");
  AcceptOnly(o, "sanitize-file", {});
  Upload upload = OpenUpload(o.words[1]);
  const std::string address = ServerAddress(o, "unix:/run/mugai/ingress.sock");
  auto stub = v1::Sanitizer::NewStub(Connect(address, o));
  grpc::ClientContext context;
  SetDeadline(context, o);
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
  CheckStatus(stream->Finish(), address);
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
    PrintSummary(upload, report);
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
  const std::string address = ServerAddress(o, "unix:/run/mugai/ingress.sock");
  auto stub = v1::Sanitizer::NewStub(Connect(address, o));
  grpc::ClientContext context;
  SetDeadline(context, o);
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
  CheckStatus(stream->Finish(), address);
  if (!report) Fail("mugaid sent no report");
  const bool delivered = ExitFor(report->outcome()) == kExitDelivered;
  if (delivered && o.output) WriteFile(*o.output, message);
  if (o.json) {
    std::cout << ToJson(*report);
  } else {
    PrintSummary(upload, *report);
    if (delivered) {
      std::cout << "  -> " << (o.output ? *o.output : std::string("(not written; use -o OUT.eml)")) << " ("
                << message.size() << " bytes)\n";
    }
  }
  return ExitFor(report->outcome());
}

constexpr char kAdminSocket[] = "unix:/run/mugai/admin.sock";
constexpr char kDefaultTokenFile[] = "/var/lib/mugai/admin.token";

// The admin bearer token (see kUsage), or nullopt to send none.
std::optional<std::string> AdminToken(const Options& o) {
  std::string path;
  if (o.token_file) {
    path = *o.token_file;
  } else if (const char* env = std::getenv("MUGAI_ADMIN_TOKEN_FILE"); env && *env) {
    path = env;
  } else if (o.tls_cert.empty() && ::access(kDefaultTokenFile, R_OK) == 0) {
    path = kDefaultTokenFile;
  } else {
    return std::nullopt;
  }
  std::istringstream lines(ReadSmallFile(path, "the admin token file"));
  std::string line;
  while (std::getline(lines, line)) {
    std::istringstream words(line);
    std::string word, last;
    while (words >> word) last = word;
    if (!last.empty() && line.find_first_not_of(" \t") != line.find('#')) return last;
  }
  Fail("no token in " + path);
}

// The admin listener; every call carries the deadline and the token.
class AdminClient {
 public:
  explicit AdminClient(const Options& o)
      : options_(o), address_(ServerAddress(o, kAdminSocket)), stub_(v1::Admin::NewStub(Connect(address_, o))),
        token_(AdminToken(o)) {}

  void Prepare(grpc::ClientContext& context) const {
    SetDeadline(context, options_);
    if (token_) context.AddMetadata("authorization", "Bearer " + *token_);
  }

  // One unary call of `method`; a failure ends the program naming `command`.
  template <typename Request, typename Response>
  Response Call(grpc::Status (v1::Admin::Stub::*method)(grpc::ClientContext*, const Request&, Response*),
                const Request& request, const std::string& command) const {
    grpc::ClientContext context;
    Prepare(context);
    Response response;
    Check((stub_.get()->*method)(&context, request, &response), command);
    return response;
  }

  // The bytes of a stream of chunks.
  template <typename Request, typename Response>
  std::string Download(std::unique_ptr<grpc::ClientReader<Response>> (v1::Admin::Stub::*method)(
                           grpc::ClientContext*, const Request&),
                       const Request& request, const std::string& command) const {
    grpc::ClientContext context;
    Prepare(context);
    std::unique_ptr<grpc::ClientReader<Response>> reader = (stub_.get()->*method)(&context, request);
    std::string bytes;
    for (Response response; reader->Read(&response);) bytes += response.chunk();
    Check(reader->Finish(), command);
    return bytes;
  }

  void Check(const grpc::Status& status, const std::string& command) const {
    CheckStatus(status, address_, command);
  }

 private:
  const Options& options_;
  const std::string address_;
  const std::unique_ptr<v1::Admin::Stub> stub_;
  const std::optional<std::string> token_;
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

std::string Required(const Options& o, std::string_view name, const std::string& command) {
  std::string value = o.Value(name);
  if (value.empty()) throw UsageError(command + " needs " + std::string(name));
  return value;
}

uint64_t Number(const Options& o, std::string_view name) {
  const std::string value = o.Value(name);
  if (value.empty()) return 0;
  size_t end = 0;
  uint64_t number = 0;
  try {
    number = std::stoull(value, &end);
  } catch (const std::exception&) {
    end = 0;
  }
  if (end != value.size() || value[0] == '-') throw UsageError(std::string(name) + " needs a number");
  return number;
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
  const std::string address = ServerAddress(o, kAdminSocket);
  auto stub = v1::Status::NewStub(Connect(address, o));
  grpc::ClientContext context;
  SetDeadline(context, o);
  v1::DaemonStatus status;
  CheckStatus(stub->GetStatus(&context, v1::GetStatusRequest(), &status), address);
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
    Options o = ParseArguments(argc, argv);
    const std::string& command = o.words[0];
    if (command == "sanitize-file") return SanitizeFile(o);
    if (command == "sanitize-mail") return SanitizeMail(o);
    if (command == "quarantine") return Quarantine(o);
    if (command == "vault") return Vault(o);
    if (command == "audit") return Audit(o);
    if (command == "whoami") return WhoAmI(o);
    if (command == "status") return Status(o);
    throw UsageError("unknown command " + command);
  } catch (const UsageError& e) {
    std::cerr << "mugai: " << e.what() << "\n" << kUsage;
    return kExitError;
  }
}

}  // namespace
}  // namespace mugai

int main(int argc, char** argv) { return mugai::Run(argc, argv); }
