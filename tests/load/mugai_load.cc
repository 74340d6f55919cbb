// mugai_load: drives mugaid's ingress with N concurrent clients, each on
// its own channel, sending a mix of inputs through SanitizeMessage,
// SanitizeFile or the exchange's SubmitFile, for a bounded time and count.
// Prints one JSON object of figures: requests, acknowledged, per_second,
// p50/p95/p99 latency (ms) of acknowledged requests, outcomes and errors by
// gRPC status. With --journal, appends one JSON line per attempt (what was
// sent, its SHA-256, and what came back: item id, outcome, finding codes,
// the SHA-256 of every derivative), for the load tests' accounting.
//
//   mugai_load --server ADDR (--manifest FILE | --message FILE | --file FILE | --submit FILE)
//              [--recipient USER] [--clients N] [--seconds S] [--count N]
//              [--journal FILE] [--retry JOURNAL] [--unique]
//
// A manifest line is "<call>\t<path>", call one of message, file, submit.
// Requests take the manifest's lines in turn. --unique makes every message
// distinct (a header with its sequence number), so records can be matched
// to requests by SHA-256; submissions are always distinct by their submit
// key. --retry resends, once and with the same bytes and key, every request
// of an earlier journal whose last attempt was not acknowledged.
#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "mugai/v1/exchange.grpc.pb.h"
#include "mugai/v1/sanitize.grpc.pb.h"
#include "sanitizers/core/sha256.h"
#include "service/wire_limits.h"

namespace {

using Clock = std::chrono::steady_clock;
using google::protobuf::Struct;
using google::protobuf::Value;

struct Input {
  std::string call;  // message, file, submit
  std::string path;
  std::string name;  // the file's own name, sent as the upload's
  std::string content;
};

// One request: an input, its sequence number and the bytes it sends.
struct Request {
  uint64_t seq = 0;
  const Input* input = nullptr;
  std::string content;
  std::string submit_key;
};

struct Options {
  std::string server;
  std::vector<std::pair<std::string, std::string>> inputs;  // (call, path)
  std::string recipient;
  unsigned clients = 1;
  double seconds = 5;
  uint64_t count = 0;  // 0: no limit but the time
  std::string journal;
  std::string retry;
  bool unique = false;
};

[[noreturn]] void Fail(const std::string& message) {
  std::cerr << "mugai_load: " << message << "\n";
  std::exit(1);
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) Fail("cannot read " + path);
  std::ostringstream bytes;
  bytes << in.rdbuf();
  return bytes.str();
}

const char* CodeName(grpc::StatusCode code) {
  static constexpr const char* kNames[] = {"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED",
                                           "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED",
                                           "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED",
                                           "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED"};
  const auto i = static_cast<size_t>(code);
  return i < std::size(kNames) ? kNames[i] : "?";
}

// What one attempt saw.
struct Attempt {
  grpc::Status status;
  mugai::v1::Report report;
  std::vector<std::string> derivative_sha256;
  double ms = 0;
};

void CollectCodes(const mugai::v1::ItemReport& item, Value* codes) {
  for (const mugai::v1::Finding& f : item.findings()) codes->mutable_list_value()->add_values()->set_string_value(f.code());
  for (const mugai::v1::ItemReport& child : item.children()) CollectCodes(child, codes);
}

struct Client {
  std::unique_ptr<mugai::v1::Sanitizer::Stub> sanitizer;
  std::unique_ptr<mugai::v1::Exchange::Stub> exchange;
};

template <typename Stream, typename Header>
void SendAll(Stream& stream, Header header, const std::string& content) {
  stream->Write(header);
  Header chunk;
  // In chunks of the wire's size, as the CLI sends a file.
  for (size_t at = 0; at < content.size(); at += mugai::kChunkBytes) {
    chunk.set_chunk(content.substr(at, mugai::kChunkBytes));
    if (!stream->Write(chunk)) break;
  }
  stream->WritesDone();
}

Attempt Send(Client& client, const Request& request, const Options& o) {
  Attempt attempt;
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(180));
  const auto started = Clock::now();
  const Input& input = *request.input;
  if (input.call == "message") {
    mugai::v1::SanitizeMessageRequest header;
    header.mutable_header()->set_size(request.content.size());
    auto stream = client.sanitizer->SanitizeMessage(&context);
    SendAll(stream, header, request.content);
    mugai::v1::SanitizeMessageResponse response;
    std::string message;
    while (stream->Read(&response)) {
      if (response.has_report()) attempt.report = response.report();
      if (response.part_case() == mugai::v1::SanitizeMessageResponse::kChunk) message += response.chunk();
    }
    attempt.status = stream->Finish();
    if (!message.empty()) attempt.derivative_sha256.push_back(mugai::Sha256Hex(message));
  } else if (input.call == "file") {
    mugai::v1::SanitizeFileRequest header;
    header.mutable_header()->set_name(input.name);
    header.mutable_header()->set_size(request.content.size());
    auto stream = client.sanitizer->SanitizeFile(&context);
    SendAll(stream, header, request.content);
    mugai::v1::SanitizeFileResponse response;
    std::map<uint32_t, std::string> derivatives;
    while (stream->Read(&response)) {
      if (response.has_report()) attempt.report = response.report();
      if (response.has_chunk()) derivatives[response.chunk().index()] += response.chunk().data();
    }
    attempt.status = stream->Finish();
    for (const auto& [index, bytes] : derivatives) attempt.derivative_sha256.push_back(mugai::Sha256Hex(bytes));
  } else {
    mugai::v1::SubmitFileResponse response;
    auto stream = client.exchange->SubmitFile(&context, &response);
    mugai::v1::SubmitFileRequest header;
    header.mutable_header()->set_name(input.name);
    header.mutable_header()->set_size(request.content.size());
    header.mutable_header()->set_recipient(o.recipient);
    header.mutable_header()->set_submit_key(request.submit_key);
    SendAll(stream, header, request.content);
    attempt.status = stream->Finish();
    attempt.report = response.report();
    // The inbox holds the derivatives; the report names each one's SHA-256.
    for (const mugai::v1::Derivative& d : attempt.report.item().derivatives()) {
      attempt.derivative_sha256.push_back(d.sha256());
    }
  }
  attempt.ms = std::chrono::duration<double, std::milli>(Clock::now() - started).count();
  if (attempt.status.ok() && attempt.report.item_id().empty()) {
    attempt.status = grpc::Status(grpc::StatusCode::INTERNAL, "an OK answer without a report");
  }
  return attempt;
}

Struct JournalLine(const Request& request, const Attempt& attempt) {
  Struct line;
  auto& f = *line.mutable_fields();
  f["seq"].set_number_value(static_cast<double>(request.seq));
  f["call"].set_string_value(request.input->call);
  f["path"].set_string_value(request.input->path);
  f["sha256"].set_string_value(mugai::Sha256Hex(request.content));
  f["key"].set_string_value(request.submit_key);
  f["ok"].set_bool_value(attempt.status.ok());
  f["code"].set_string_value(CodeName(attempt.status.error_code()));
  f["ms"].set_number_value(attempt.ms);
  if (attempt.status.ok()) {
    f["item_id"].set_string_value(attempt.report.item_id());
    f["outcome"].set_string_value(attempt.report.outcome());
    CollectCodes(attempt.report.item(), &f["codes"]);
    f["codes"].mutable_list_value();
    for (const std::string& sha : attempt.derivative_sha256) {
      f["derivatives"].mutable_list_value()->add_values()->set_string_value(sha);
    }
    f["derivatives"].mutable_list_value();
  } else {
    f["error"].set_string_value(attempt.status.error_message());
  }
  return line;
}

std::string ToJson(const google::protobuf::Message& message) {
  std::string json;
  if (!google::protobuf::util::MessageToJsonString(message, &json).ok()) Fail("cannot write JSON");
  return json;
}

Options Parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (flag == "--unique") {
      o.unique = true;
      continue;
    }
    if (i + 1 >= argc) Fail("flag " + flag + " needs a value");
    const std::string value = argv[++i];
    if (flag == "--server") o.server = value;
    else if (flag == "--message") o.inputs.emplace_back("message", value);
    else if (flag == "--file") o.inputs.emplace_back("file", value);
    else if (flag == "--submit") o.inputs.emplace_back("submit", value);
    else if (flag == "--manifest") {
      std::istringstream lines(ReadAll(value));
      for (std::string line; std::getline(lines, line);) {
        const size_t tab = line.find('\t');
        if (line.empty() || line[0] == '#') continue;
        if (tab == std::string::npos) Fail("manifest line without a tab: " + line);
        o.inputs.emplace_back(line.substr(0, tab), line.substr(tab + 1));
      }
    } else if (flag == "--recipient") o.recipient = value;
    else if (flag == "--clients") o.clients = static_cast<unsigned>(std::atoi(value.c_str()));
    else if (flag == "--seconds") o.seconds = std::atof(value.c_str());
    else if (flag == "--count") o.count = std::strtoull(value.c_str(), nullptr, 10);
    else if (flag == "--journal") o.journal = value;
    else if (flag == "--retry") o.retry = value;
    else Fail("unknown flag " + flag);
  }
  const bool submits = std::any_of(o.inputs.begin(), o.inputs.end(), [](auto& i) { return i.first == "submit"; });
  for (const auto& [call, path] : o.inputs) {
    if (call != "message" && call != "file" && call != "submit") Fail("unknown call \"" + call + "\" for " + path);
  }
  if (o.server.empty() || (o.inputs.empty() && o.retry.empty()) || o.clients == 0 || (submits && o.recipient.empty())) {
    Fail(
        "usage: mugai_load --server ADDR (--manifest FILE | --message FILE | --file FILE | --submit FILE)\n"
        "                  [--recipient USER] [--clients N] [--seconds S] [--count N]\n"
        "                  [--journal FILE] [--retry JOURNAL] [--unique]");
  }
  return o;
}

// The requests an earlier journal left unacknowledged, rebuilt with the
// same bytes (re-read, plus the same unique header) and submit key.
std::vector<Request> Unacknowledged(const std::string& journal, std::map<std::string, Input>& inputs, bool unique) {
  std::map<uint64_t, Struct> last;
  std::istringstream lines(ReadAll(journal));
  for (std::string line; std::getline(lines, line);) {
    Struct entry;
    if (!google::protobuf::util::JsonStringToMessage(line, &entry).ok()) Fail("bad journal line: " + line);
    last[static_cast<uint64_t>(entry.fields().at("seq").number_value())] = entry;
  }
  std::vector<Request> requests;
  for (const auto& [seq, entry] : last) {
    if (entry.fields().at("ok").bool_value()) continue;
    const std::string& call = entry.fields().at("call").string_value();
    const std::string& path = entry.fields().at("path").string_value();
    Input& input = inputs[call + "\t" + path];
    if (input.path.empty()) input = {call, path, path.substr(path.rfind('/') + 1), ReadAll(path)};
    Request& r = requests.emplace_back();
    r.seq = seq;
    r.input = &input;
    r.submit_key = entry.fields().at("key").string_value();
    r.content = input.content;
    if (unique && call == "message") r.content = "X-Mugai-Load: " + std::to_string(seq) + "\r\n" + input.content;
  }
  return requests;
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = Parse(argc, argv);
  // Inputs by "call\tpath"; std::map keeps their addresses stable.
  std::map<std::string, Input> inputs;
  std::vector<const Input*> mix;
  for (const auto& [call, path] : o.inputs) {
    Input& input = inputs[call + "\t" + path];
    if (input.path.empty()) input = {call, path, path.substr(path.rfind('/') + 1), ReadAll(path)};
    mix.push_back(&input);
  }
  std::vector<Request> retries;
  if (!o.retry.empty()) retries = Unacknowledged(o.retry, inputs, o.unique);

  std::ofstream journal;
  if (!o.journal.empty()) {
    journal.open(o.journal, std::ios::app);
    if (!journal) Fail("cannot write " + o.journal);
  }
  // Seeds the submit keys, so keys differ across runs against one daemon.
  const std::string run = std::to_string(std::random_device()());
  std::mutex mutex;
  std::vector<double> latencies_ms;
  std::map<std::string, uint64_t> outcomes, errors;
  uint64_t requests = 0, attempts = 0;
  std::atomic<uint64_t> next = 0;
  const auto end = Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.seconds));
  const auto started = Clock::now();
  {
    std::vector<std::jthread> clients;
    for (unsigned c = 0; c < o.clients; ++c) {
      clients.emplace_back([&] {
        grpc::ChannelArguments args;
        args.SetMaxReceiveMessageSize(mugai::kMaxMessageBytes);
        args.SetMaxSendMessageSize(mugai::kMaxMessageBytes);
        // A channel of its own per client, as separate relays would have.
        args.SetInt("grpc.use_local_subchannel_pool", 1);
        // A daemon restarted under load is back within a second or two.
        args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
        auto channel = grpc::CreateCustomChannel(o.server, grpc::InsecureChannelCredentials(), args);
        Client client{mugai::v1::Sanitizer::NewStub(channel), mugai::v1::Exchange::NewStub(channel)};
        for (;;) {
          if (o.retry.empty() && Clock::now() >= end) break;
          const uint64_t n = next++;
          if (!o.retry.empty() ? n >= retries.size() : (o.count != 0 && n >= o.count)) break;
          Request fresh;
          const Request* request = nullptr;
          if (!o.retry.empty()) {
            request = &retries[n];
          } else {
            fresh.seq = n;
            fresh.input = mix[n % mix.size()];
            fresh.submit_key = "load-" + run + "-" + std::to_string(n);
            fresh.content = fresh.input->content;
            if (o.unique && fresh.input->call == "message") {
              fresh.content = "X-Mugai-Load: " + std::to_string(n) + "\r\n" + fresh.content;
            }
            request = &fresh;
          }
          // A refused request is sent again, as a relay would, until the
          // run ends; one still refused then is left for --retry.
          for (bool first = true;; first = false) {
            const Attempt attempt = Send(client, *request, o);
            const std::string line = journal.is_open() ? ToJson(JournalLine(*request, attempt)) : "";
            {
              std::lock_guard lock(mutex);
              ++attempts;
              if (first) ++requests;
              if (attempt.status.ok()) {
                latencies_ms.push_back(attempt.ms);
                ++outcomes[attempt.report.outcome()];
              } else {
                ++errors[CodeName(attempt.status.error_code())];
              }
              if (journal.is_open()) journal << line << "\n" << std::flush;
            }
            if (attempt.status.ok() || !o.retry.empty() || Clock::now() >= end) break;
            std::this_thread::sleep_for(std::chrono::milliseconds(250));
          }
        }
      });
    }
  }
  const double elapsed = std::chrono::duration<double>(Clock::now() - started).count();
  std::sort(latencies_ms.begin(), latencies_ms.end());
  auto percentile = [&](double p) {
    return latencies_ms.empty() ? 0.0 : latencies_ms[static_cast<size_t>(p * (latencies_ms.size() - 1))];
  };
  Struct figures;
  auto& f = *figures.mutable_fields();
  f["requests"].set_number_value(static_cast<double>(requests));
  f["attempts"].set_number_value(static_cast<double>(attempts));
  f["acknowledged"].set_number_value(static_cast<double>(latencies_ms.size()));
  f["seconds"].set_number_value(elapsed);
  f["per_second"].set_number_value(latencies_ms.size() / elapsed);
  f["p50_ms"].set_number_value(percentile(0.50));
  f["p95_ms"].set_number_value(percentile(0.95));
  f["p99_ms"].set_number_value(percentile(0.99));
  f["outcomes"].mutable_struct_value();
  for (const auto& [outcome, n] : outcomes) {
    (*f["outcomes"].mutable_struct_value()->mutable_fields())[outcome].set_number_value(static_cast<double>(n));
  }
  f["errors"].mutable_struct_value();
  for (const auto& [code, n] : errors) {
    (*f["errors"].mutable_struct_value()->mutable_fields())[code].set_number_value(static_cast<double>(n));
  }
  std::cout << ToJson(figures) << "\n";
  return 0;
}
