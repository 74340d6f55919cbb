#include "service/cli/cli_common.h"

#include <google/protobuf/util/json_util.h>

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <iostream>
#include <set>
#include <sstream>

namespace mugai::cli {
namespace {

namespace fs = std::filesystem;

// The options that take a value and belong to one command or another.
const std::set<std::string, std::less<>> kCommandOptions = {
    "--from",  "--to",     "--sender", "--recipient", "--subject", "--code", "--outcome", "--state",
    "--limit", "--before", "--reason", "--item",      "--after",   "--note", "--key",     "--interval",
    "--settle"};
// The command options that take no value.
const std::set<std::string, std::less<>> kCommandFlags = {"--once"};

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

std::string ServerAddress(const Options& o, const char* builtin) {
  if (o.server) return *o.server;
  if (const char* env = std::getenv("MUGAI_SERVER"); env && *env) return env;
  return builtin;
}

}  // namespace

Options ParseArguments(int argc, char** argv, const char* usage) {
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
    } else if (kCommandFlags.count(arg)) {
      o.values[arg] = "";
    } else if (arg == "--help" || arg == "-h") {
      std::cout << usage;
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

void AcceptOnly(const Options& o, const std::string& command, std::initializer_list<std::string_view> accepted) {
  for (const auto& [name, value] : o.values) {
    if (std::find(accepted.begin(), accepted.end(), name) == accepted.end()) {
      throw UsageError(command + " does not take " + name);
    }
  }
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

std::string Required(const Options& o, std::string_view name, const std::string& command) {
  std::string value = o.Value(name);
  if (value.empty()) throw UsageError(command + " needs " + std::string(name));
  return value;
}

void Fail(const std::string& what) {
  std::cerr << "mugai: " << what << "\n";
  std::exit(kExitError);
}

std::string ReadSmallFile(const std::string& path, const std::string& what) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream contents;
  if (!in || !(contents << in.rdbuf())) Fail("cannot read " + what + " " + path);
  return contents.str();
}

std::optional<std::string> BearerToken(const Options& o, const char* env_variable, const char* default_file) {
  std::string path;
  if (o.token_file) {
    path = *o.token_file;
  } else if (const char* env = std::getenv(env_variable)) {
    if (*env == '\0') return std::nullopt;  // set and empty: no token, not the default
    path = env;
  } else if (default_file && o.tls_cert.empty() && ::access(default_file, R_OK) == 0) {
    path = default_file;
  } else {
    return std::nullopt;
  }
  std::istringstream lines(ReadSmallFile(path, "the token file"));
  std::string line;
  while (std::getline(lines, line)) {
    std::istringstream words(line);
    std::string word, last;
    while (words >> word) last = word;
    if (!last.empty() && line.find_first_not_of(" \t") != line.find('#')) return last;
  }
  Fail("no token in " + path);
}

Connection::Connection(const Options& o, const char* builtin, std::optional<std::string> token)
    : options_(o), address_(ServerAddress(o, builtin)), channel_(Connect(address_, o)), token_(std::move(token)) {}

void Connection::Prepare(grpc::ClientContext& context) const {
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(options_.timeout_seconds));
  if (token_) context.AddMetadata("authorization", "Bearer " + *token_);
}

void Connection::Check(const grpc::Status& status, const std::string& command) const {
  if (!status.ok()) Fail(StatusText(status, address_, command));
}

std::string StatusText(const grpc::Status& status, const std::string& address, const std::string& command) {
  const std::string what = command.empty() ? "" : command + ": ";
  switch (status.error_code()) {
    case grpc::StatusCode::UNAVAILABLE:
      return "cannot reach mugaid at " + address + ": " + status.error_message();
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return "mugaid at " + address + " did not answer in time";
    case grpc::StatusCode::PERMISSION_DENIED:
      return what + "permission denied: " + status.error_message();
    case grpc::StatusCode::UNAUTHENTICATED:
      return what + "not authenticated: " + status.error_message() +
             " (give --token-file, or --tls-cert and --tls-key)";
    default:
      return (command.empty() ? "mugaid at " + address + ": " : what) + status.error_message();
  }
}

std::string ToJson(const google::protobuf::Message& message, bool one_line) {
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = !one_line;
  options.always_print_primitive_fields = true;
  options.preserve_proto_field_names = true;
  std::string json;
  if (!google::protobuf::util::MessageToJsonString(message, &json, options).ok()) {
    Fail("cannot print the reply as JSON");
  }
  return json;
}

int ExitFor(const std::string& outcome) {
  return outcome == "delivered" || outcome == "delivered_with_removals" ? kExitDelivered : kExitHeld;
}

void PrintFindings(const v1::ItemReport& item, const std::string& indent) {
  for (const v1::Finding& f : item.findings()) {
    std::cout << indent << f.code() << ": " << f.reason() << "\n";
  }
}

void PrintSummary(const std::string& name, const v1::Report& report) {
  const v1::ItemReport& item = report.item();
  std::cout << name << ": " << report.outcome() << " (item " << report.item_id() << ", " << item.detected_type()
            << ")\n";
  PrintFindings(item, "  ");
  if (report.outcome() == "delivered_with_removals") PrintRemovedMembers(item, "  ");
}

Upload OpenUpload(const fs::path& path) {
  Upload upload{path, std::ifstream(path, std::ios::binary), 0};
  if (!upload.in) throw std::runtime_error("cannot read " + path.string());
  std::error_code ec;
  upload.size = fs::file_size(path, ec);
  if (ec) throw std::runtime_error("cannot read " + path.string() + ": " + ec.message());
  return upload;
}

fs::path OutputPath(const fs::path& dir, const std::string& name) {
  if (name.empty() || name == "." || name == ".." || name.find('/') != std::string::npos) {
    Fail("mugaid sent an unusable derivative name \"" + name + "\"");
  }
  return dir / name;
}

void WriteFile(const fs::path& target, const std::string& bytes, bool owner_only) {
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

}  // namespace mugai::cli
