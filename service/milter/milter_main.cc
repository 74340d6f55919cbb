// mugai-milter: the mail relay's filter. Postfix or Sendmail hands it every
// message; at end of message it asks mugaid (SanitizeMessage) and makes the
// MTA relay exactly the sanitized message, reject the message, or replace
// it with a notice. Whenever mugaid cannot answer, it tempfails: the MTA
// keeps the message and retries, and the original is never relayed.
//
//   mugai-milter [--config FILE] [--listen SOCKET] [--server ADDR] [--check]
#include <libmilter/mfapi.h>
#include <pthread.h>
#include <signal.h>

#include <atomic>
#include <cstring>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "mugai/version.h"
#include "sanitizers/core/log.h"
#include "sanitizers/mail/message_writer.h"
#include "service/config/config.h"
#include "service/milter/milter_session.h"
#include "service/milter/sanitizer_client.h"

namespace mugai {
namespace {

constexpr char kUsage[] =
    "usage: mugai-milter [--config FILE] [--listen SOCKET] [--server ADDR] [--check]\n"
    "SOCKET is libmilter's unix:/path or inet:PORT@HOST; ADDR is mugaid's ingress\n"
    "(unix:/path or host:port). --check asks mugaid for its status and exits 0 when\n"
    "it answers. Defaults are built in; see samples/mugai.toml [milter].\n";

// One SMTP connection; a connection may carry several messages.
struct Session {
  std::string sender;
  std::vector<std::string> recipients;
  std::optional<CollectedMessage> message;
};

// What every callback shares: set once in main, before smfi_main.
struct Milter {
  MilterConfig config;
  std::unique_ptr<SanitizerClient> client;
  std::atomic<unsigned> in_flight{0};
};
Milter* g_milter = nullptr;

Session* SessionOf(SMFICTX* ctx) { return static_cast<Session*>(smfi_getpriv(ctx)); }

std::string Symbol(SMFICTX* ctx, const char* name) {
  const char* value = smfi_getsymval(ctx, const_cast<char*>(name));
  return value ? value : "-";
}

// "<a@b>" as the MTA passes envelope addresses, without the brackets.
std::string Address(const char* arg) {
  std::string address = arg ? arg : "";
  if (address.size() >= 2 && address.front() == '<' && address.back() == '>') address = address.substr(1, address.size() - 2);
  return address;
}

sfsistat OnConnect(SMFICTX* ctx, char*, _SOCK_ADDR*) {
  // Owned by libmilter's context from here until OnClose.
  smfi_setpriv(ctx, std::make_unique<Session>().release());
  return SMFIS_CONTINUE;
}

sfsistat OnEnvelopeFrom(SMFICTX* ctx, char** argv) {
  Session* session = SessionOf(ctx);
  if (!session) return SMFIS_TEMPFAIL;
  session->sender = Address(argv[0]);
  session->recipients.clear();
  session->message.emplace(g_milter->config.max_message_bytes);
  return SMFIS_CONTINUE;
}

sfsistat OnEnvelopeRecipient(SMFICTX* ctx, char** argv) {
  Session* session = SessionOf(ctx);
  if (!session) return SMFIS_TEMPFAIL;
  session->recipients.push_back(Address(argv[0]));
  return SMFIS_CONTINUE;
}

sfsistat OnHeader(SMFICTX* ctx, char* name, char* value) {
  Session* session = SessionOf(ctx);
  if (!session || !session->message) return SMFIS_TEMPFAIL;
  session->message->AddHeader(name, value);
  return SMFIS_CONTINUE;
}

sfsistat OnEndOfHeaders(SMFICTX* ctx) {
  Session* session = SessionOf(ctx);
  if (!session || !session->message) return SMFIS_TEMPFAIL;
  session->message->EndHeaders();
  return SMFIS_CONTINUE;
}

sfsistat OnBody(SMFICTX* ctx, unsigned char* chunk, size_t size) {
  Session* session = SessionOf(ctx);
  if (!session || !session->message) return SMFIS_TEMPFAIL;
  session->message->AddBody(std::string_view(reinterpret_cast<const char*>(chunk), size));
  return SMFIS_CONTINUE;
}

sfsistat Reply(SMFICTX* ctx, const MilterVerdict& verdict, sfsistat result) {
  smfi_setreply(ctx, const_cast<char*>(verdict.code.c_str()), const_cast<char*>(verdict.status.c_str()),
                const_cast<char*>(verdict.text.c_str()));
  return result;
}

// Makes the MTA's copy of the message `replacement`: every header it had
// deleted, the new ones added in order, the body replaced. Any step the MTA
// refuses leaves a half-changed message, so the whole is then tempfailed.
bool Replace(SMFICTX* ctx, const CollectedMessage& original, const std::string& replacement) {
  SplitMessage split = Split(replacement);
  for (const auto& [name, count] : HeaderCounts(original.header_names())) {
    for (int index = count; index >= 1; --index) {
      if (smfi_chgheader(ctx, const_cast<char*>(name.c_str()), index, nullptr) != MI_SUCCESS) return false;
    }
  }
  for (const HeaderField& field : split.headers) {
    if (smfi_addheader(ctx, const_cast<char*>(field.name.c_str()), const_cast<char*>(field.value.c_str())) !=
        MI_SUCCESS) {
      return false;
    }
  }
  constexpr size_t kBodyChunk = 64 * 1024;
  for (size_t offset = 0; offset == 0 || offset < split.body.size(); offset += kBodyChunk) {
    std::string chunk = split.body.substr(offset, kBodyChunk);
    if (smfi_replacebody(ctx, reinterpret_cast<unsigned char*>(chunk.data()), static_cast<int>(chunk.size())) !=
        MI_SUCCESS) {
      return false;
    }
  }
  return true;
}

// A slot among the messages sanitized at once, or none when all are taken.
class InFlight {
 public:
  explicit InFlight(Milter& milter) : milter_(milter) {
    taken_ = milter_.in_flight.fetch_add(1) < milter_.config.max_concurrency;
  }
  ~InFlight() { milter_.in_flight.fetch_sub(1); }
  InFlight(const InFlight&) = delete;
  InFlight& operator=(const InFlight&) = delete;
  bool taken() const { return taken_; }

 private:
  Milter& milter_;
  bool taken_;
};

sfsistat OnEndOfMessage(SMFICTX* ctx) {
  Session* session = SessionOf(ctx);
  if (!session || !session->message) return SMFIS_TEMPFAIL;
  const std::string queue_id = Symbol(ctx, "i");
  const CollectedMessage& message = *session->message;
  auto log = [&](const std::string& what) { LogInfo("queue " + queue_id + " from <" + session->sender + "> " + what); };
  if (message.too_large()) {
    log("refused: " + std::to_string(message.size()) + " bytes");
    return Reply(ctx,
                 {MilterVerdict::Kind::kReject, "552", "5.3.4",
                  "message larger than the Mugai sanitizer accepts (" + std::to_string(g_milter->config.max_message_bytes) +
                      " bytes)",
                  {}},
                 SMFIS_REJECT);
  }
  InFlight slot(*g_milter);
  if (!slot.taken()) {
    log("tempfail: " + std::to_string(g_milter->config.max_concurrency) + " messages already in progress");
    MilterVerdict busy = Tempfail("too many messages at once");
    busy.status = "4.3.2";
    return Reply(ctx, busy, SMFIS_TEMPFAIL);
  }
  SanitizeAnswer answer = g_milter->client->Sanitize(message.bytes(), session->sender, session->recipients,
                                                     std::chrono::seconds(g_milter->config.timeout_seconds));
  if (!answer.report) {
    log("tempfail: mugaid did not answer: " + answer.error);
    return Reply(ctx, Tempfail("no answer"), SMFIS_TEMPFAIL);
  }
  const v1::Report& report = *answer.report;
  MilterVerdict verdict;
  try {
    verdict = VerdictFor(report, std::move(answer.message),
                         {g_milter->config.reject_quarantined, g_milter->config.notice_from}, session->recipients);
    if (verdict.kind == MilterVerdict::Kind::kReplace && !Replace(ctx, message, verdict.message)) {
      verdict = Tempfail("the MTA refused a change");
    }
  } catch (const std::exception& e) {
    verdict = Tempfail(e.what());
  }
  switch (verdict.kind) {
    case MilterVerdict::Kind::kReplace:
      log("item " + report.item_id() + " " + report.outcome() +
          (report.outcome() == "quarantined" ? ": replaced by a notice" : ": relayed sanitized"));
      return SMFIS_CONTINUE;
    case MilterVerdict::Kind::kReject:
      log("item " + report.item_id() + " " + report.outcome() + ": rejected " + verdict.code + " " + verdict.status);
      return Reply(ctx, verdict, SMFIS_REJECT);
    case MilterVerdict::Kind::kTempfail:
      break;
  }
  log("item " + report.item_id() + " tempfail: " + verdict.text);
  return Reply(ctx, verdict, SMFIS_TEMPFAIL);
}

sfsistat OnAbort(SMFICTX* ctx) {
  if (Session* session = SessionOf(ctx)) session->message.reset();
  return SMFIS_CONTINUE;
}

sfsistat OnClose(SMFICTX* ctx) {
  std::unique_ptr<Session> session(SessionOf(ctx));
  smfi_setpriv(ctx, nullptr);
  return SMFIS_CONTINUE;
}

MilterConfig ParseCommandLine(int argc, char** argv, bool* check) {
  std::map<std::string, std::string> flags;
  for (int i = 1; i < argc; ++i) {
    std::string flag = argv[i];
    if (flag == "--help" || flag == "-h") {
      std::cout << kUsage;
      std::exit(0);
    }
    if (flag == "--check") {
      *check = true;
      continue;
    }
    static const std::set<std::string> kKnown = {"--config", "--listen", "--server"};
    if (!kKnown.count(flag) || i + 1 >= argc) {
      std::cerr << "mugai-milter: " << (kKnown.count(flag) ? flag + " needs a value" : "unknown option " + flag)
                << "\n" << kUsage;
      std::exit(2);
    }
    flags[flag] = argv[++i];
  }
  MilterConfig config = flags.count("--config") ? LoadConfig(flags["--config"]).milter : MilterConfig{};
  if (flags.count("--listen")) config.listen = flags["--listen"];
  if (flags.count("--server")) config.server = flags["--server"];
  return config;
}

int Run(int argc, char** argv) {
  SetLogProgram("mugai-milter");
  // libmilter waits for these in a thread of its own and stops cleanly;
  // they must be blocked in every thread, gRPC's (started below) included,
  // or one of those takes the signal and its default action kills us.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  for (int signal : {SIGTERM, SIGINT, SIGHUP}) sigaddset(&stop_signals, signal);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  bool check = false;
  Milter milter;
  try {
    milter.config = ParseCommandLine(argc, argv, &check);
    milter.client = std::make_unique<SanitizerClient>(milter.config);
  } catch (const std::exception& e) {
    LogError(e.what());
    return 2;
  }
  std::string error;
  const bool reachable = milter.client->Reachable(std::chrono::seconds(5), &error);
  if (check) {
    std::cout << (reachable ? "mugaid at " + milter.config.server + " answers\n"
                            : "mugaid at " + milter.config.server + " does not answer: " + error + "\n");
    return reachable ? 0 : 1;
  }
  if (!reachable) {
    LogWarn("mugaid at " + milter.config.server + " does not answer (" + error +
            "); every message is tempfailed until it does");
  }
  InitMessageWriter();
  g_milter = &milter;
  smfiDesc description{};
  description.xxfi_name = const_cast<char*>("mugai");
  description.xxfi_version = SMFI_VERSION;
  description.xxfi_flags = SMFIF_ADDHDRS | SMFIF_CHGHDRS | SMFIF_CHGBODY;
  description.xxfi_connect = OnConnect;
  description.xxfi_envfrom = OnEnvelopeFrom;
  description.xxfi_envrcpt = OnEnvelopeRecipient;
  description.xxfi_header = OnHeader;
  description.xxfi_eoh = OnEndOfHeaders;
  description.xxfi_body = OnBody;
  description.xxfi_eom = OnEndOfMessage;
  description.xxfi_abort = OnAbort;
  description.xxfi_close = OnClose;
  if (smfi_setconn(const_cast<char*>(milter.config.listen.c_str())) != MI_SUCCESS ||
      smfi_register(description) != MI_SUCCESS || smfi_opensocket(true) != MI_SUCCESS) {
    LogError("cannot listen on " + milter.config.listen);
    return 1;
  }
  LogInfo(std::string("mugai-milter ") + kMugaiVersion + " listening on " + milter.config.listen + ", mugaid at " +
          milter.config.server);
  LogInfo("ready");
  // libmilter stops on SIGTERM, SIGINT and SIGHUP and returns once the
  // connections in progress are done.
  int result = smfi_main();
  LogInfo("stopped");
  return result == MI_SUCCESS ? 0 : 1;
}

}  // namespace
}  // namespace mugai

int main(int argc, char** argv) { return mugai::Run(argc, argv); }
