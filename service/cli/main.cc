// mugai: the command-line client of mugaid.
//
//   mugai [--server ADDR] sanitize-file PATH [-o DIR] [--json]
//   mugai [--server ADDR] sanitize-mail MESSAGE.eml [-o OUT.eml] [--json]
//   mugai [--server ADDR] quarantine list | show ID | delete ID [--json]
//   mugai [--server ADDR] status [--json]
//
// Exit codes: 0 delivered (maybe with removals), 2 quarantined or rejected,
// 1 error (usage, connection, server).
#include <google/protobuf/util/json_util.h>
#include <grpcpp/grpcpp.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
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

constexpr char kUsage[] =
    "usage: mugai [--server ADDR] [--timeout SECONDS] COMMAND\n"
    "  sanitize-file PATH [-o DIR] [--json]   sanitize a file; derivatives go to DIR\n"
    "  sanitize-mail MESSAGE.eml [-o OUT.eml] [--json]\n"
    "                                         sanitize a mail message; the new one goes to OUT.eml\n"
    "  quarantine list [--json]               list quarantined items (admin listener)\n"
    "  quarantine show ID [--json]            one item with its report\n"
    "  quarantine delete ID                   delete an item and its original\n"
    "  status [--json]                        signatures and protections in force\n"
    "ADDR: unix:/path or host:port; default $MUGAI_SERVER, else the built-in socket\n"
    "(ingress for sanitize-file and sanitize-mail, admin for quarantine and status).\n"
    "exit: 0 delivered, 2 quarantined or rejected, 1 error\n";

struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct Options {
  std::optional<std::string> server;
  int timeout_seconds = 600;
  bool json = false;
  std::optional<std::string> output_dir;
  std::vector<std::string> words;  // command and its arguments
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
      o.output_dir = value();
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
  return o;
}

std::string ServerAddress(const Options& o, const char* builtin) {
  if (o.server) return *o.server;
  if (const char* env = std::getenv("MUGAI_SERVER"); env && *env) return env;
  return builtin;
}

std::shared_ptr<grpc::Channel> Connect(const std::string& address) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(kMaxMessageBytes);
  args.SetMaxSendMessageSize(kMaxMessageBytes);
  return grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args);
}

void SetDeadline(grpc::ClientContext& context, const Options& o) {
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(o.timeout_seconds));
}

[[noreturn]] void Fail(const std::string& what) {
  std::cerr << "mugai: " << what << "\n";
  std::exit(kExitError);
}

void CheckStatus(const grpc::Status& status, const std::string& address) {
  if (status.ok()) return;
  if (status.error_code() == grpc::StatusCode::UNAVAILABLE) {
    Fail("cannot reach mugaid at " + address + ": " + status.error_message());
  }
  if (status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
    Fail("mugaid at " + address + " did not answer in time");
  }
  Fail("mugaid at " + address + ": " + status.error_message());
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
// half-written file never has the final name.
void WriteFile(const fs::path& target, const std::string& bytes) {
  fs::path partial = target.string() + ".part";
  {
    std::ofstream out(partial, std::ios::binary | std::ios::trunc);
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
  Upload upload = OpenUpload(o.words[1]);
  const std::string address = ServerAddress(o, "unix:/run/mugai/ingress.sock");
  auto stub = v1::Sanitizer::NewStub(Connect(address));
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
  if (o.output_dir && !derivatives.empty()) {
    std::error_code ec;
    fs::create_directories(*o.output_dir, ec);
    if (ec) Fail("cannot create " + *o.output_dir + ": " + ec.message());
    for (int i = 0; i < item.derivatives_size(); ++i) {
      WriteFile(OutputPath(*o.output_dir, item.derivatives(i).name()), derivatives[i]);
    }
  }
  if (o.json) {
    std::cout << ToJson(report);
  } else {
    PrintSummary(upload, report);
    for (const v1::Derivative& d : item.derivatives()) {
      std::cout << "  -> " << (o.output_dir ? (fs::path(*o.output_dir) / d.name()).string() : d.name())
                << " (" << d.size() << " bytes, sha256 " << d.sha256() << ")\n";
    }
  }
  return ExitFor(report.outcome());
}

int SanitizeMail(const Options& o) {
  if (o.words.size() != 2) throw UsageError("sanitize-mail takes one MESSAGE");
  Upload upload = OpenUpload(o.words[1]);
  const std::string address = ServerAddress(o, "unix:/run/mugai/ingress.sock");
  auto stub = v1::Sanitizer::NewStub(Connect(address));
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
  if (delivered && o.output_dir) WriteFile(*o.output_dir, message);
  if (o.json) {
    std::cout << ToJson(*report);
  } else {
    PrintSummary(upload, *report);
    if (delivered) {
      std::cout << "  -> " << (o.output_dir ? *o.output_dir : std::string("(not written; use -o OUT.eml)")) << " ("
                << message.size() << " bytes)\n";
    }
  }
  return ExitFor(report->outcome());
}

int Quarantine(const Options& o) {
  if (o.words.size() < 2) throw UsageError("quarantine needs list, show ID or delete ID");
  const std::string& verb = o.words[1];
  const std::string address = ServerAddress(o, "unix:/run/mugai/admin.sock");
  auto stub = v1::Admin::NewStub(Connect(address));
  grpc::ClientContext context;
  SetDeadline(context, o);
  if (verb == "list" && o.words.size() == 2) {
    v1::ListQuarantineRequest request;
    v1::ListQuarantineResponse response;
    CheckStatus(stub->ListQuarantine(&context, request, &response), address);
    if (o.json) {
      std::cout << ToJson(response);
      return kExitDelivered;
    }
    if (response.items().empty()) std::cout << "(no quarantined items)\n";
    for (const v1::QuarantineItem& item : response.items()) {
      std::string codes;
      for (const std::string& c : item.finding_codes()) codes += (codes.empty() ? "" : ",") + c;
      std::cout << item.id() << "  " << item.received_at() << "  " << item.name() << "  "
                << item.detected_type() << "  " << codes << "\n";
    }
    return kExitDelivered;
  }
  if (verb == "show" && o.words.size() == 3) {
    v1::GetQuarantineItemRequest request;
    request.set_id(o.words[2]);
    v1::QuarantineItem item;
    CheckStatus(stub->GetQuarantineItem(&context, request, &item), address);
    if (o.json) {
      std::cout << ToJson(item);
      return kExitDelivered;
    }
    std::cout << "id:       " << item.id() << "\nreceived: " << item.received_at()
              << "\nname:     " << item.name() << "\ntype:     " << item.detected_type()
              << "\nsize:     " << item.size() << "\nsha256:   " << item.sha256()
              << "\noutcome:  " << item.outcome() << "\nfindings:\n";
    PrintFindings(item.report().item(), "  ");
    return kExitDelivered;
  }
  if (verb == "delete" && o.words.size() == 3) {
    v1::DeleteQuarantineItemRequest request;
    request.set_id(o.words[2]);
    v1::DeleteQuarantineItemResponse response;
    CheckStatus(stub->DeleteQuarantineItem(&context, request, &response), address);
    std::cout << "deleted " << o.words[2] << "\n";
    return kExitDelivered;
  }
  throw UsageError("quarantine needs list, show ID or delete ID");
}

int Status(const Options& o) {
  if (o.words.size() != 1) throw UsageError("status takes no arguments");
  const std::string address = ServerAddress(o, "unix:/run/mugai/admin.sock");
  auto stub = v1::Status::NewStub(Connect(address));
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
