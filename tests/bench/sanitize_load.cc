// sanitize_load: drives mugaid's SanitizeMessage, SanitizeFile or the
// exchange's SubmitFile with N concurrent clients, each sending the same
// input over and over on one channel, for a fixed time (or until --count
// requests in all); prints one JSON line: requests, requests per second,
// p50 / p99 latency in ms, and the outcomes seen. Each submission has a
// submit key of its own, so mugaid processes every one.
//
//   sanitize_load --server ADDR (--message FILE | --file FILE | --submit FILE --recipient USER)
//                 [--clients N] [--seconds S] [--count N]
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
#include "service/wire_limits.h"

namespace {

using Clock = std::chrono::steady_clock;

enum class Call { kMessage, kFile, kSubmit };

struct Options {
  std::string server;
  std::string path;
  std::string name;  // the file's own name, sent as the upload's
  Call call = Call::kMessage;
  std::string recipient;
  unsigned clients = 1;
  double seconds = 5;
  unsigned count = 0;  // 0: no limit but the time
};

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::cerr << "cannot read " << path << "\n";
    std::exit(1);
  }
  std::ostringstream bytes;
  bytes << in.rdbuf();
  return bytes.str();
}

// Sends `header` and `content` in one chunk on `stream`; returns the
// outcome ("error: ..." when the call failed).
template <typename Response, typename Stream, typename Request>
std::string Exchange(Stream stream, Request header, const std::string& content) {
  stream->Write(header);
  Request chunk;
  chunk.set_chunk(content);
  stream->Write(chunk);
  stream->WritesDone();
  Response response;
  std::string outcome;
  while (stream->Read(&response)) {
    if (response.has_report()) outcome = response.report().outcome();
  }
  grpc::Status status = stream->Finish();
  return status.ok() ? outcome : "error: " + status.error_message();
}

// One client's stubs on its own channel.
struct Client {
  std::unique_ptr<mugai::v1::Sanitizer::Stub> sanitizer;
  std::unique_ptr<mugai::v1::Exchange::Stub> exchange;
  std::string key_prefix;  // random, so keys differ across runs of one daemon
  unsigned long submitted = 0;
};

std::string SubmitOnce(Client& client, grpc::ClientContext& context, const Options& o, const std::string& content) {
  mugai::v1::SubmitFileResponse response;
  auto stream = client.exchange->SubmitFile(&context, &response);
  mugai::v1::SubmitFileRequest header;
  header.mutable_header()->set_name(o.name);
  header.mutable_header()->set_size(content.size());
  header.mutable_header()->set_recipient(o.recipient);
  header.mutable_header()->set_submit_key(client.key_prefix + std::to_string(client.submitted++));
  stream->Write(header);
  mugai::v1::SubmitFileRequest chunk;
  // In chunks of the wire's size, as the CLI sends a file.
  for (size_t at = 0; at < content.size(); at += mugai::kChunkBytes) {
    chunk.set_chunk(content.substr(at, mugai::kChunkBytes));
    if (!stream->Write(chunk)) break;
  }
  stream->WritesDone();
  grpc::Status status = stream->Finish();
  return status.ok() ? response.report().outcome() : "error: " + status.error_message();
}

std::string SanitizeOnce(Client& client, const Options& o, const std::string& content) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(120));
  if (o.call == Call::kMessage) {
    mugai::v1::SanitizeMessageRequest header;
    header.mutable_header()->set_size(content.size());
    return Exchange<mugai::v1::SanitizeMessageResponse>(client.sanitizer->SanitizeMessage(&context), header,
                                                        content);
  }
  if (o.call == Call::kSubmit) return SubmitOnce(client, context, o, content);
  mugai::v1::SanitizeFileRequest header;
  header.mutable_header()->set_name(o.name);
  header.mutable_header()->set_size(content.size());
  return Exchange<mugai::v1::SanitizeFileResponse>(client.sanitizer->SanitizeFile(&context), header, content);
}

Options Parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string flag = argv[i], value = argv[i + 1];
    if (flag == "--server") o.server = value;
    else if (flag == "--message") o.path = value;
    else if (flag == "--file") o.path = value, o.call = Call::kFile;
    else if (flag == "--submit") o.path = value, o.call = Call::kSubmit;
    else if (flag == "--recipient") o.recipient = value;
    else if (flag == "--clients") o.clients = static_cast<unsigned>(std::atoi(value.c_str()));
    else if (flag == "--seconds") o.seconds = std::atof(value.c_str());
    else if (flag == "--count") o.count = static_cast<unsigned>(std::atoi(value.c_str()));
    else {
      std::cerr << "unknown flag " << flag << "\n";
      std::exit(1);
    }
  }
  if (o.server.empty() || o.path.empty() || o.clients == 0 || (o.call == Call::kSubmit) == o.recipient.empty()) {
    std::cerr << "usage: sanitize_load --server ADDR (--message FILE | --file FILE | --submit FILE --recipient USER)\n"
                 "                     [--clients N] [--seconds S] [--count N]\n";
    std::exit(1);
  }
  o.name = o.path.substr(o.path.rfind('/') + 1);
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = Parse(argc, argv);
  const std::string content = ReadAll(o.path);
  std::mutex mutex;
  std::vector<double> latencies_ms;
  std::map<std::string, unsigned> outcomes;
  std::atomic<unsigned> started_requests = 0;
  const std::string run_prefix = std::to_string(std::random_device()()) + "-";
  const auto end = Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.seconds));
  const auto started = Clock::now();
  {
    std::vector<std::jthread> clients;
    for (unsigned c = 0; c < o.clients; ++c) {
      clients.emplace_back([&, c] {
        grpc::ChannelArguments args;
        args.SetMaxReceiveMessageSize(mugai::kMaxMessageBytes);
        args.SetMaxSendMessageSize(mugai::kMaxMessageBytes);
        // A channel of its own per client, as separate relays would have.
        args.SetInt("grpc.use_local_subchannel_pool", 1);
        auto channel = grpc::CreateCustomChannel(o.server, grpc::InsecureChannelCredentials(), args);
        Client client{mugai::v1::Sanitizer::NewStub(channel), mugai::v1::Exchange::NewStub(channel),
                      "bench-" + run_prefix + std::to_string(c) + "-"};
        std::vector<double> mine;
        std::map<std::string, unsigned> seen;
        while (Clock::now() < end && (o.count == 0 || started_requests++ < o.count)) {
          const auto t0 = Clock::now();
          ++seen[SanitizeOnce(client, o, content)];
          mine.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
        }
        std::lock_guard lock(mutex);
        latencies_ms.insert(latencies_ms.end(), mine.begin(), mine.end());
        for (const auto& [outcome, n] : seen) outcomes[outcome] += n;
      });
    }
  }
  const double elapsed = std::chrono::duration<double>(Clock::now() - started).count();
  std::sort(latencies_ms.begin(), latencies_ms.end());
  auto percentile = [&](double p) {
    return latencies_ms.empty() ? 0.0 : latencies_ms[static_cast<size_t>(p * (latencies_ms.size() - 1))];
  };
  std::cout << "{\"requests\": " << latencies_ms.size() << ", \"per_second\": " << latencies_ms.size() / elapsed
            << ", \"p50_ms\": " << percentile(0.50) << ", \"p99_ms\": " << percentile(0.99) << ", \"outcomes\": {";
  bool first = true;
  for (const auto& [outcome, n] : outcomes) {
    std::cout << (first ? "" : ", ") << "\"" << outcome << "\": " << n;
    first = false;
  }
  std::cout << "}}\n";
  return 0;
}
