// What every mugai command shares: the parsed command line, the connection
// to one of mugaid's listeners (address, TLS, bearer token, deadline), the
// reporting of a failed call, and the upload of a file as a chunk stream.
#pragma once

#include <google/protobuf/message.h>
#include <grpcpp/grpcpp.h>

#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "mugai/v1/report.pb.h"
#include "service/wire_limits.h"

namespace mugai::cli {

inline constexpr int kExitDelivered = 0;
inline constexpr int kExitError = 1;
inline constexpr int kExitHeld = 2;
inline constexpr int kExitAuditFailed = 3;

inline constexpr char kIngressSocket[] = "unix:/run/mugai/ingress.sock";
inline constexpr char kEgressSocket[] = "unix:/run/mugai/egress.sock";
inline constexpr char kAdminSocket[] = "unix:/run/mugai/admin.sock";

// A wrong command line: main prints it with the usage.
struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct Options {
  std::optional<std::string> server;
  int timeout_seconds = 600;
  bool json = false;
  std::optional<std::string> output;  // -o: a directory or a file, by command
  std::optional<std::string> token_file;
  std::string tls_ca, tls_cert, tls_key;
  // The command options given (a flag such as --once: "").
  std::map<std::string, std::string, std::less<>> values;
  std::vector<std::string> words;  // command and its arguments

  bool Has(std::string_view name) const { return values.find(name) != values.end(); }
  // The value of the command option `name`, or "".
  std::string Value(std::string_view name) const {
    auto found = values.find(name);
    return found == values.end() ? std::string() : found->second;
  }
};

// Parses argv; --help prints `usage` and exits. Throws UsageError.
Options ParseArguments(int argc, char** argv, const char* usage);

// Refuses the command options that `command` does not take.
void AcceptOnly(const Options& o, const std::string& command, std::initializer_list<std::string_view> accepted);

// The value of option `name` as a number (0 when not given).
uint64_t Number(const Options& o, std::string_view name);

std::string Required(const Options& o, std::string_view name, const std::string& command);

// Prints "mugai: what" and exits with kExitError.
[[noreturn]] void Fail(const std::string& what);

// A certificate, key or token file: small, read whole (Fail when it cannot).
std::string ReadSmallFile(const std::string& path, const std::string& what);

// The bearer token: from --token-file, else the file named by the
// environment variable `env_variable`, else `default_file` when it is
// readable and no --tls-cert is given (nullptr: no default). The token is
// the first line's last word; "#" lines are comments. nullopt: send none.
std::optional<std::string> BearerToken(const Options& o, const char* env_variable, const char* default_file);

// One listener of mugaid: --server (else $MUGAI_SERVER, else `builtin`),
// TLS from the options, `token` on every call.
class Connection {
 public:
  Connection(const Options& o, const char* builtin, std::optional<std::string> token);

  const std::string& address() const { return address_; }
  const std::shared_ptr<grpc::Channel>& channel() const { return channel_; }

  // Sets the deadline (--timeout) and the token on a call's context.
  void Prepare(grpc::ClientContext& context) const;

  // A failed call ends the program naming `command`.
  void Check(const grpc::Status& status, const std::string& command = "") const;

 private:
  const Options& options_;
  const std::string address_;
  const std::shared_ptr<grpc::Channel> channel_;
  const std::optional<std::string> token_;
};

// What went wrong with a call, for a person: names the address, and what to
// give when the call was not authenticated.
std::string StatusText(const grpc::Status& status, const std::string& address, const std::string& command);

// Pretty-printed, or on one line (for a stream of JSON lines).
std::string ToJson(const google::protobuf::Message& message, bool one_line = false);

// Exit code for a report's outcome: delivered (maybe with removals) or held.
int ExitFor(const std::string& outcome);

void PrintFindings(const v1::ItemReport& item, const std::string& indent);

// "NAME: outcome (item ID, type)", its findings and the removed members.
void PrintSummary(const std::string& name, const v1::Report& report);

// An upload: the file at `path`, its size, opened.
struct Upload {
  std::filesystem::path path;
  std::ifstream in;
  uint64_t size = 0;
};

// Throws std::runtime_error naming the file when it cannot be read.
Upload OpenUpload(const std::filesystem::path& path);

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

// A name that mugaid sent (a derivative's) as a file name inside `dir`;
// Fail when it is not a plain file name.
std::filesystem::path OutputPath(const std::filesystem::path& dir, const std::string& name);

// Writes `bytes` to `target` through a temporary file beside it, so a
// half-written file never has the final name. `owner_only`: mode 0600, for
// an original that may be malware.
void WriteFile(const std::filesystem::path& target, const std::string& bytes, bool owner_only = false);

}  // namespace mugai::cli
