#include "service/cli/exchange_commands.h"

#include <google/protobuf/struct.pb.h>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/random.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <map>
#include <set>
#include <sstream>

#include "mugai/v1/exchange.grpc.pb.h"
#include "sanitizers/core/findings.h"
#include "sanitizers/core/log.h"
#include "sanitizers/core/sha256.h"
#include "sanitizers/core/unique_fd.h"

namespace mugai::cli {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::system_clock;

constexpr char kDropJournal[] = ".mugai-drop";
constexpr char kInboxState[] = ".mugai-inbox";

std::runtime_error Errno(const std::string& what) { return std::runtime_error(ErrnoText(what)); }

// The submit token is the caller's; the default is none (never the admin token).
std::optional<std::string> ExchangeToken(const Options& o) { return BearerToken(o, "MUGAI_TOKEN_FILE", nullptr); }

// A random UUID (version 4): the idempotency key of one submission.
std::string NewSubmitKey() {
  unsigned char bytes[16];
  if (::getrandom(bytes, sizeof bytes, 0) != sizeof bytes) throw Errno("getrandom");
  bytes[6] = static_cast<unsigned char>((bytes[6] & 0x0f) | 0x40);
  bytes[8] = static_cast<unsigned char>((bytes[8] & 0x3f) | 0x80);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string key;
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) key += '-';
    key += kHex[bytes[i] >> 4];
    key += kHex[bytes[i] & 0xf];
  }
  return key;
}

// --- Durable files: every step a crash may interrupt is a rename of a
// complete, fsync'd file, followed by an fsync of its directory.

void SyncDirectory(const fs::path& dir) {
  UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid() || ::fsync(fd.get()) != 0) throw Errno("cannot sync the directory " + dir.string());
}

void WriteAll(int fd, std::string_view bytes, const fs::path& path) {
  while (!bytes.empty()) {
    const ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) throw Errno("cannot write " + path.string());
    bytes.remove_prefix(static_cast<size_t>(n));
  }
}

// Writes and fsyncs `bytes` as `path` (created with `mode` less the umask).
void WriteSynced(const fs::path& path, std::string_view bytes, mode_t mode) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode));
  if (!fd.valid()) throw Errno("cannot create " + path.string());
  WriteAll(fd.get(), bytes, path);
  if (::fsync(fd.get()) != 0) throw Errno("cannot sync " + path.string());
}

// `target` has `bytes` or its earlier contents, never a part of them.
void ReplaceDurably(const fs::path& target, std::string_view bytes, mode_t mode = 0666) {
  const fs::path temp = target.string() + ".tmp";
  WriteSynced(temp, bytes, mode);
  if (::rename(temp.c_str(), target.c_str()) != 0) {
    throw Errno("cannot rename " + temp.string() + " to " + target.string());
  }
  SyncDirectory(target.parent_path());
}

void RemoveDurably(const fs::path& path) {
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) throw Errno("cannot remove " + path.string());
  SyncDirectory(path.parent_path());
}

// Renames `from` to `to` unless `to` exists (false then): never overwrites.
bool MoveNoReplace(const fs::path& from, const fs::path& to) {
  if (::renameat2(AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), RENAME_NOREPLACE) == 0) return true;
  if (errno == EEXIST) return false;
  if (errno != EINVAL && errno != ENOSYS) throw Errno("cannot move " + from.string() + " to " + to.string());
  // A file system without RENAME_NOREPLACE: link(2) refuses an existing name too.
  if (::link(from.c_str(), to.c_str()) != 0) {
    if (errno == EEXIST) return false;
    throw Errno("cannot move " + from.string() + " to " + to.string());
  }
  if (::unlink(from.c_str()) != 0) throw Errno("cannot remove " + from.string());
  return true;
}

bool Exists(const fs::path& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0;
}

// "memo.txt", "memo-1.txt", "memo-2.txt", ...: the n-th candidate for a
// name that must not replace an existing file.
std::string NumberedName(const std::string& name, unsigned n) {
  if (n == 0) return name;
  const size_t dot = name.rfind('.');
  const bool has_extension = dot != std::string::npos && dot != 0;
  return (has_extension ? name.substr(0, dot) : name) + "-" + std::to_string(n) +
         (has_extension ? name.substr(dot) : "");
}

void MakePrivateDirectory(const fs::path& dir) {
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) throw Errno("cannot create " + dir.string());
}

void MakeDirectory(const fs::path& dir) {
  if (::mkdir(dir.c_str(), 0777) != 0 && errno != EEXIST) throw Errno("cannot create " + dir.string());
}

// Held while a watcher works on a directory: two at once would submit or
// download the same file twice. The kernel drops it when the process dies.
UniqueFd LockDirectory(const fs::path& lock_file, const std::string& what) {
  UniqueFd fd(::open(lock_file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!fd.valid()) throw Errno("cannot open " + lock_file.string());
  if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK) throw std::runtime_error("another " + what + " is running (" + lock_file.string() + ")");
    throw Errno("cannot lock " + lock_file.string());
  }
  return fd;
}

std::optional<std::string> ReadIfExists(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    if (!Exists(path)) return std::nullopt;
    throw std::runtime_error("cannot read " + path.string());
  }
  std::ostringstream contents;
  contents << in.rdbuf();
  return contents.str();
}

std::string JsonLine(const google::protobuf::Message& message) {
  std::string json = ToJson(message, true);
  if (json.empty() || json.back() != '\n') json += '\n';
  return json;
}

// SIGTERM and SIGINT, blocked before gRPC starts its threads and read from
// a signalfd: a watcher stops between two files, never in the middle of one.
class StopSignal {
 public:
  StopSignal() {
    sigemptyset(&signals_);
    sigaddset(&signals_, SIGTERM);
    sigaddset(&signals_, SIGINT);
    if (::sigprocmask(SIG_BLOCK, &signals_, nullptr) != 0) throw Errno("sigprocmask");
    fd_.reset(::signalfd(-1, &signals_, SFD_NONBLOCK | SFD_CLOEXEC));
    if (!fd_.valid()) throw Errno("signalfd");
  }

  int fd() const { return fd_.get(); }

  bool Requested() {
    signalfd_siginfo info;
    if (::read(fd_.get(), &info, sizeof info) == static_cast<ssize_t>(sizeof info)) requested_ = true;
    return requested_;
  }

  // Waits up to `timeout` or until `other` (>= 0) is readable; false when
  // a stop was asked for.
  bool Wait(std::chrono::milliseconds timeout, int other = -1) {
    pollfd fds[2] = {{fd_.get(), POLLIN, 0}, {other, POLLIN, 0}};
    const int count = ::poll(fds, other >= 0 ? 2 : 1, static_cast<int>(std::max<int64_t>(timeout.count(), 0)));
    if (count < 0 && errno != EINTR) throw Errno("poll");
    return !Requested();
  }

 private:
  sigset_t signals_;
  UniqueFd fd_;
  bool requested_ = false;
};

std::chrono::seconds Seconds(const Options& o, std::string_view name, uint64_t default_seconds) {
  return std::chrono::seconds(o.Has(name) ? Number(o, name) : default_seconds);
}

// --- Ingress.

// Transient: the same submission may succeed later, so the file stays.
bool Transient(const grpc::Status& status) {
  switch (status.error_code()) {
    case grpc::StatusCode::UNAVAILABLE:
    case grpc::StatusCode::DEADLINE_EXCEEDED:
    case grpc::StatusCode::ABORTED:
    case grpc::StatusCode::CANCELLED:
      return true;
    default:
      return false;
  }
}

// A refusal of the caller itself: every other file would be refused too.
bool RefusesCaller(const grpc::Status& status) {
  return status.error_code() == grpc::StatusCode::UNAUTHENTICATED ||
         status.error_code() == grpc::StatusCode::PERMISSION_DENIED;
}

struct Submission {
  grpc::Status status;
  v1::SubmitFileResponse response;
};

class Submitter {
 public:
  Submitter(const Options& o, std::string recipient, std::string note)
      : ingress_(o, kIngressSocket, ExchangeToken(o)),
        stub_(v1::Exchange::NewStub(ingress_.channel())),
        recipient_(std::move(recipient)),
        note_(std::move(note)) {}

  const Connection& ingress() const { return ingress_; }

  // Throws std::runtime_error when the file cannot be read.
  Submission Submit(const fs::path& path, const std::string& key) const {
    Upload upload = OpenUpload(path);
    grpc::ClientContext context;
    ingress_.Prepare(context);
    Submission submission;
    auto stream = stub_->SubmitFile(&context, &submission.response);
    v1::SubmitFileRequest header;
    v1::SubmitHeader& h = *header.mutable_header();
    h.set_name(path.filename().string());
    h.set_size(upload.size);
    h.set_recipient(recipient_);
    h.set_note(note_);
    h.set_submit_key(key);
    Send(*stream, header, upload);
    submission.status = stream->Finish();
    return submission;
  }

 private:
  const Connection ingress_;
  const std::unique_ptr<v1::Exchange::Stub> stub_;
  const std::string recipient_, note_;
};

}  // namespace

int Submit(const Options& o) {
  if (o.words.size() != 2) throw UsageError("submit takes one PATH");
  AcceptOnly(o, "submit", {"--to", "--note", "--key"});
  const Submitter submitter(o, Required(o, "--to", "submit"), o.Value("--note"));
  const std::string key = o.Has("--key") ? Required(o, "--key", "submit") : NewSubmitKey();
  const fs::path path = o.words[1];
  const Submission submission = submitter.Submit(path, key);
  if (!submission.status.ok()) {
    Fail(StatusText(submission.status, submitter.ingress().address(), "submit") +
         (Transient(submission.status) ? " (retry with --key " + key + " to keep it one submission)" : ""));
  }
  const v1::SubmitFileResponse& response = submission.response;
  if (o.json) {
    std::cout << ToJson(response);
  } else {
    PrintSummary(path.filename().string(), response.report());
    if (!response.entry_ids().empty()) {
      std::cout << "  -> inbox of " << o.Value("--to") << ":";
      for (const std::string& id : response.entry_ids()) std::cout << " " << id;
      std::cout << "\n";
    }
  }
  return ExitFor(response.report().outcome());
}

namespace {

// --- drop watch.

// What a pass over the drop directory left for later.
struct DropPass {
  std::optional<Clock::time_point> next_settled;  // a file still being written
  bool retry = false;  // a file kept after a transient error
};

// DIR/.mugai-drop/NAME.key: "KEY\nFINGERPRINT\n", then with "DEST\n"
// once the destination (done/U or failed/U) is chosen. It exists from
// before the first submission until after the move, so a restart resubmits
// with the same key (mugaid answers its earlier report) and reuses the
// destination. The fingerprint tells a new file of the same name (dropped
// after a crash that left the record) from the one submitted.
struct JournalRecord {
  std::string key;
  std::string fingerprint;
  std::string destination;  // "" until chosen
};

// Not the device number: that may change across a reboot, and the file
// would then be submitted a second time.
std::string Fingerprint(const struct stat& st) {
  return std::to_string(st.st_ino) + ":" + std::to_string(st.st_size) + ":" + std::to_string(st.st_mtim.tv_sec) +
         "." + std::to_string(st.st_mtim.tv_nsec);
}

class DropWatcher {
 public:
  DropWatcher(const Options& o, fs::path dir)
      : dir_(std::move(dir)),
        journal_(dir_ / kDropJournal),
        submitter_(o, Required(o, "--to", "drop watch"), o.Value("--note")),
        settle_(Seconds(o, "--settle", 2)) {
    if (!fs::is_directory(dir_)) throw std::runtime_error(dir_.string() + " is not a directory");
    MakeDirectory(dir_ / "done");
    MakeDirectory(dir_ / "failed");
    MakePrivateDirectory(journal_);
    lock_ = LockDirectory(journal_ / "lock", "mugai drop watch on " + dir_.string());
  }

  const fs::path& dir() const { return dir_; }

  // Handles every complete file now in the directory (stopping early when
  // `stop` is asked for), then drops the journal records of moved files.
  DropPass Pass(StopSignal& stop) {
    DropPass pass;
    std::set<std::string> present;
    for (const std::string& name : Candidates()) {
      if (stop.Requested()) return pass;
      present.insert(name);
      const fs::path path = dir_ / name;
      struct stat st;
      if (::lstat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
      std::optional<JournalRecord> record = ReadRecord(name);
      if (record && record->fingerprint != Fingerprint(st)) {
        LogWarn(name + " changed since it was submitted with key " + record->key + "; it is submitted anew");
        RemoveDurably(journal_ / (name + ".key"));
        record.reset();
      }
      if (!record) {
        const auto modified = Clock::time_point(std::chrono::duration_cast<Clock::duration>(
            std::chrono::seconds(st.st_mtim.tv_sec) + std::chrono::nanoseconds(st.st_mtim.tv_nsec)));
        if (Clock::now() < modified + settle_) {
          pass.next_settled = std::min(pass.next_settled.value_or(Clock::time_point::max()), modified + settle_);
          continue;
        }
      }
      if (!Handle(name, Fingerprint(st), record)) pass.retry = true;
    }
    for (const std::string& stale : StaleRecords(present)) RemoveDurably(journal_ / stale);
    return pass;
  }

 private:
  // The names a watcher takes: regular files that are not hidden and not
  // named as still being written (*.part, *.tmp, *.crdownload).
  std::vector<std::string> Candidates() const {
    std::vector<std::string> names;
    for (const fs::directory_entry& entry : fs::directory_iterator(dir_)) {
      const std::string name = entry.path().filename().string();
      if (name.empty() || name[0] == '.') continue;
      auto ends_with = [&](std::string_view suffix) { return name.ends_with(suffix); };
      if (ends_with(".part") || ends_with(".tmp") || ends_with(".crdownload")) continue;
      if (entry.is_symlink() || !entry.is_regular_file()) continue;
      names.push_back(name);
    }
    std::sort(names.begin(), names.end());
    return names;
  }

  // The journal files (records, and records half-written by a crash) of
  // files gone from the directory: moved before a crash.
  std::vector<std::string> StaleRecords(const std::set<std::string>& present) const {
    std::vector<std::string> stale;
    for (const fs::directory_entry& entry : fs::directory_iterator(journal_)) {
      const std::string file = entry.path().filename().string();
      const size_t suffix = file.ends_with(".key") ? 4 : file.ends_with(".key.tmp") ? 8 : 0;
      if (suffix == 0) continue;
      const std::string name = file.substr(0, file.size() - suffix);
      if (!present.count(name) && !Exists(dir_ / name)) stale.push_back(file);
    }
    return stale;
  }

  std::optional<JournalRecord> ReadRecord(const std::string& name) const {
    std::optional<std::string> text = ReadIfExists(journal_ / (name + ".key"));
    if (!text) return std::nullopt;
    std::istringstream lines(*text);
    JournalRecord record;
    std::getline(lines, record.key);
    std::getline(lines, record.fingerprint);
    std::getline(lines, record.destination);
    // A destination is only ever done/NAME or failed/NAME.
    const std::string& destination = record.destination;
    const size_t slash = destination.find('/');
    const bool destination_ok =
        destination.empty() || (slash != std::string::npos && slash + 1 < destination.size() &&
                                destination.find('/', slash + 1) == std::string::npos &&
                                (destination.substr(0, slash) == "done" || destination.substr(0, slash) == "failed"));
    if (record.key.empty() || record.fingerprint.empty() || !destination_ok) {
      throw std::runtime_error("the journal record " + (journal_ / (name + ".key")).string() +
                               " is damaged; remove it to submit " + name + " anew");
    }
    return record;
  }

  void WriteRecord(const std::string& name, const JournalRecord& record) const {
    ReplaceDurably(journal_ / (name + ".key"),
                   record.key + "\n" + record.fingerprint + "\n" +
                       (record.destination.empty() ? "" : record.destination + "\n"),
                   0600);
  }

  // Submits `name` (again, with its recorded key, after a restart) and
  // moves it with its report. False: kept for a retry.
  bool Handle(const std::string& name, const std::string& fingerprint, std::optional<JournalRecord> record) {
    if (!record) {
      record = JournalRecord{NewSubmitKey(), fingerprint, ""};
      WriteRecord(name, *record);
    }
    Submission submission;
    try {
      // After a restart the same key: mugaid answers what it recorded (an
      // attempt cut off mid-upload was recorded without the key).
      submission = submitter_.Submit(dir_ / name, record->key);
    } catch (const std::runtime_error& e) {
      if (!Exists(dir_ / name)) return true;  // taken away meanwhile; its record goes with the pass
      submission.status = grpc::Status(grpc::StatusCode::INTERNAL, e.what());
    }
    const grpc::Status& status = submission.status;
    if (!status.ok() && RefusesCaller(status)) {
      throw std::runtime_error(StatusText(status, submitter_.ingress().address(), "drop watch"));
    }
    if (!status.ok() && Transient(status)) {
      LogWarn(name + ": kept for a retry: " + StatusText(status, submitter_.ingress().address(), ""));
      return false;
    }
    std::string report;
    std::string outcome;
    if (status.ok()) {
      report = ToJson(submission.response);
      outcome = submission.response.report().outcome();
    } else {
      google::protobuf::Struct error;
      auto& fields = *error.mutable_fields();
      fields["code"].set_number_value(static_cast<double>(status.error_code()));
      fields["message"].set_string_value(status.error_message());
      fields["submit_key"].set_string_value(record->key);
      google::protobuf::Struct wrapper;
      *(*wrapper.mutable_fields())["error"].mutable_struct_value() = error;
      report = ToJson(wrapper);
      outcome = "error: " + status.error_message();
    }
    const std::string folder = status.ok() && ExitFor(outcome) == kExitDelivered ? "done" : "failed";
    const std::string destination = Place(name, *record, folder, report);
    RemoveDurably(journal_ / (name + ".key"));
    std::cout << name << ": " << outcome;
    if (status.ok()) std::cout << " (item " << submission.response.report().item_id() << ")";
    std::cout << " -> " << destination << std::endl;
    return true;
  }

  // Writes the report and moves the file into `folder` under a name that
  // replaces nothing; returns "done/U" or "failed/U". The destination is
  // recorded first, so after a crash the report there is known to be ours.
  std::string Place(const std::string& name, JournalRecord& record, const std::string& folder,
                    const std::string& report) {
    const std::string recorded = record.destination;
    if (!recorded.empty()) {
      if (recorded.starts_with(folder + "/") && !Exists(dir_ / recorded) && MoveWithReport(name, recorded, report)) {
        return recorded;
      }
      if (!Exists(dir_ / recorded)) RemoveDurably(dir_ / (recorded + ".report.json"));
    }
    for (unsigned n = 0;; ++n) {
      const std::string destination = folder + "/" + NumberedName(name, n);
      if (destination == recorded || Exists(dir_ / destination) ||
          Exists(dir_ / (destination + ".report.json"))) {
        continue;
      }
      record.destination = destination;
      WriteRecord(name, record);
      if (MoveWithReport(name, destination, report)) return destination;
    }
  }

  // False: `destination` was taken meanwhile (its report is removed again).
  bool MoveWithReport(const std::string& name, const std::string& destination, const std::string& report) {
    ReplaceDurably(dir_ / (destination + ".report.json"), report);
    if (!MoveNoReplace(dir_ / name, dir_ / destination)) {
      RemoveDurably(dir_ / (destination + ".report.json"));
      return false;
    }
    SyncDirectory((dir_ / destination).parent_path());
    SyncDirectory(dir_);
    return true;
  }

  const fs::path dir_, journal_;
  const Submitter submitter_;
  const std::chrono::seconds settle_;
  UniqueFd lock_;
};

// An inotify watch on the drop directory: a new or completed file wakes the
// watcher before its interval; the rescan on every wake finds the rest.
UniqueFd WatchDirectory(const fs::path& dir) {
  UniqueFd fd(::inotify_init1(IN_NONBLOCK | IN_CLOEXEC));
  if (!fd.valid()) throw Errno("inotify_init1");
  if (::inotify_add_watch(fd.get(), dir.c_str(), IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_ATTRIB) < 0) {
    throw Errno("cannot watch " + dir.string());
  }
  return fd;
}

void DrainEvents(int fd) {
  alignas(inotify_event) char buffer[4096];
  while (::read(fd, buffer, sizeof buffer) > 0) {
  }
}

}  // namespace

int Drop(const Options& o) {
  if (o.words.size() != 3 || o.words[1] != "watch") throw UsageError("drop takes watch DIR");
  AcceptOnly(o, "drop watch", {"--to", "--note", "--interval", "--settle", "--once"});
  const std::chrono::seconds interval = Seconds(o, "--interval", 10);
  if (interval.count() == 0) throw UsageError("--interval needs at least 1 second");
  StopSignal stop;
  DropWatcher watcher(o, o.words[2]);
  const UniqueFd events = WatchDirectory(watcher.dir());
  for (;;) {
    DrainEvents(events.get());
    const DropPass pass = watcher.Pass(stop);
    if (stop.Requested()) return kExitDelivered;
    std::chrono::milliseconds wait = interval;
    if (pass.next_settled) {
      wait = std::min(wait, std::chrono::ceil<std::chrono::milliseconds>(*pass.next_settled - Clock::now()));
    }
    if (o.Has("--once")) {
      if (!pass.next_settled) return pass.retry ? kExitError : kExitDelivered;
      if (!stop.Wait(wait)) return kExitDelivered;  // only the files being written are left
      continue;
    }
    if (!stop.Wait(wait, events.get())) return kExitDelivered;
  }
}

namespace {

// --- Egress.

class InboxClient {
 public:
  explicit InboxClient(const Options& o)
      : egress_(o, kEgressSocket, ExchangeToken(o)), stub_(v1::Inbox::NewStub(egress_.channel())) {}

  const Connection& egress() const { return egress_; }

  // Every entry, oldest first (page by page). Throws std::runtime_error
  // when mugaid refuses or cannot be reached.
  std::vector<v1::InboxEntry> ListAll() const {
    std::vector<v1::InboxEntry> entries;
    v1::ListInboxRequest request;
    for (;;) {
      grpc::ClientContext context;
      egress_.Prepare(context);
      v1::ListInboxResponse page;
      const grpc::Status status = stub_->ListInbox(&context, request, &page);
      if (!status.ok()) throw std::runtime_error(StatusText(status, egress_.address(), "inbox list"));
      if (page.entries().empty()) return entries;
      const std::string& last = page.entries(page.entries_size() - 1).id();
      if (last == request.after_id()) throw std::runtime_error("mugaid sent the same inbox page twice");
      request.set_after_id(last);
      entries.insert(entries.end(), page.entries().begin(), page.entries().end());
    }
  }

  // Downloads entry `id` into `temp` (fsync'd) and checks it against its
  // entry and against `expected` (from the listing, when given). Throws
  // std::runtime_error (and removes `temp`) on any failure.
  v1::InboxEntry Fetch(const std::string& id, const fs::path& temp, const v1::InboxEntry* expected) const {
    grpc::ClientContext context;
    egress_.Prepare(context);
    v1::FetchDerivativeRequest request;
    request.set_id(id);
    auto reader = stub_->FetchDerivative(&context, request);
    std::optional<v1::InboxEntry> entry;
    std::string bytes;
    v1::FetchDerivativeResponse response;
    bool well_formed = true;
    while (reader->Read(&response)) {
      if (response.has_entry() && !entry) {
        entry = response.entry();
      } else if (response.has_chunk() && entry) {
        bytes += response.chunk();
      } else {
        well_formed = false;
      }
    }
    const grpc::Status status = reader->Finish();
    if (!status.ok()) throw std::runtime_error(StatusText(status, egress_.address(), "inbox fetch " + id));
    if (!well_formed || !entry || entry->id() != id) {
      throw std::runtime_error("inbox fetch " + id + ": mugaid sent a malformed stream");
    }
    const std::string sha256 = Sha256Hex(bytes);
    const std::string& wanted = expected ? expected->sha256() : entry->sha256();
    if (sha256 != wanted || entry->sha256() != wanted || bytes.size() != entry->size()) {
      throw std::runtime_error("inbox fetch " + id + ": SHA-256 mismatch: the entry says " + wanted + " (" +
                               std::to_string(entry->size()) + " bytes), received " + sha256 + " (" +
                               std::to_string(bytes.size()) + " bytes); not acknowledged");
    }
    try {
      WriteSynced(temp, bytes, 0666);
    } catch (...) {
      ::unlink(temp.c_str());
      throw;
    }
    return *entry;
  }

  // Throws std::runtime_error when mugaid refuses or cannot be reached.
  void Acknowledge(const std::string& id) const {
    grpc::ClientContext context;
    egress_.Prepare(context);
    v1::AcknowledgeRequest request;
    request.set_id(id);
    v1::AcknowledgeResponse response;
    const grpc::Status status = stub_->Acknowledge(&context, request, &response);
    if (!status.ok()) throw std::runtime_error(StatusText(status, egress_.address(), "inbox acknowledge " + id));
  }

 private:
  const Connection egress_;
  const std::unique_ptr<v1::Inbox::Stub> stub_;
};

// An entry id as part of a local file name: ids are "<item id>.<index>".
std::string CheckedId(const std::string& id) {
  const bool plain = !id.empty() && id[0] != '.' && std::all_of(id.begin(), id.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '-' ||
           c == '_';
  });
  if (!plain) throw std::runtime_error("mugaid sent an unusable inbox entry id \"" + id + "\"");
  return id;
}

// The entry's name as a file name in the target directory: a plain name
// that hides nothing (no leading dot), else the entry's id.
std::string LocalName(const v1::InboxEntry& entry) {
  std::string name = entry.name();
  if (name.empty() || name == "." || name == ".." || name.find('/') != std::string::npos ||
      name.find('\0') != std::string::npos || name.size() > 200) {
    return CheckedId(entry.id());
  }
  if (name[0] == '.') name[0] = '_';
  return name;
}

// Moves the verified download `temp` into `dir` under `name` or the first
// free numbered variant that `taken` does not hold; returns the name used.
// `before_move(name)` runs before each attempt (sync records it).
template <typename BeforeMove>
std::string PlaceDownload(const fs::path& temp, const fs::path& dir, const std::string& name,
                          const std::set<std::string>& taken, BeforeMove before_move) {
  for (unsigned n = 0;; ++n) {
    const std::string candidate = NumberedName(name, n);
    if (taken.count(candidate) || Exists(dir / candidate)) continue;
    before_move(candidate);
    if (MoveNoReplace(temp, dir / candidate)) {
      SyncDirectory(dir);
      return candidate;
    }
  }
}

google::protobuf::Struct PlacedLine(const v1::InboxEntry& entry, const fs::path& path) {
  google::protobuf::Struct line;
  auto& fields = *line.mutable_fields();
  fields["id"].set_string_value(entry.id());
  fields["path"].set_string_value(path.string());
  fields["sha256"].set_string_value(entry.sha256());
  fields["size"].set_number_value(static_cast<double>(entry.size()));
  fields["sender"].set_string_value(entry.sender());
  fields["note"].set_string_value(entry.note());
  return line;
}

void PrintPlaced(const Options& o, const v1::InboxEntry& entry, const fs::path& path) {
  if (o.json) {
    std::cout << JsonLine(PlacedLine(entry, path)) << std::flush;
  } else {
    std::cout << entry.id() << " -> " << path.string() << " (" << entry.size() << " bytes, sha256 "
              << entry.sha256() << ")" << std::endl;
  }
}

// DIR/.mugai-inbox/state: "ENTRY_ID\tNAME" for each entry moved (or about
// to be moved) into DIR as NAME and not yet known to be acknowledged.
class SyncState {
 public:
  explicit SyncState(fs::path path) : path_(std::move(path)) {
    std::optional<std::string> text = ReadIfExists(path_);
    if (!text) return;
    std::istringstream lines(*text);
    for (std::string line; std::getline(lines, line);) {
      const size_t tab = line.find('\t');
      if (tab == std::string::npos || tab == 0 || tab + 1 == line.size()) {
        throw std::runtime_error(path_.string() + " is damaged (line \"" + line + "\")");
      }
      placed_[line.substr(0, tab)] = line.substr(tab + 1);
    }
  }

  const std::map<std::string, std::string>& placed() const { return placed_; }

  std::set<std::string> Names() const {
    std::set<std::string> names;
    for (const auto& [id, name] : placed_) names.insert(name);
    return names;
  }

  void Set(const std::string& id, const std::string& name) {
    placed_[id] = name;
    Save();
  }

  void Erase(const std::string& id) {
    if (placed_.erase(id)) Save();
  }

 private:
  void Save() const {
    std::string text;
    for (const auto& [id, name] : placed_) text += id + "\t" + name + "\n";
    ReplaceDurably(path_, text, 0600);
  }

  const fs::path path_;
  std::map<std::string, std::string> placed_;
};

class InboxSync {
 public:
  InboxSync(const Options& o, fs::path dir)
      : options_(o), dir_(std::move(dir)), private_(dir_ / kInboxState), inbox_(o) {
    MakeDirectory(dir_);
    MakePrivateDirectory(private_);
    lock_ = LockDirectory(private_ / "lock", "mugai inbox sync on " + dir_.string());
    state_.emplace(private_ / "state");
  }

  // One pass over the inbox; returns the number of entries that failed.
  unsigned Pass(StopSignal& stop) {
    const std::vector<v1::InboxEntry> entries = inbox_.ListAll();
    unsigned failed = 0;
    std::set<std::string> listed;
    for (const v1::InboxEntry& entry : entries) {
      if (stop.Requested()) return failed;
      listed.insert(entry.id());
      try {
        Sync(entry);
      } catch (const std::runtime_error& e) {
        LogError(e.what());
        ++failed;
      }
    }
    // Not listed any more: acknowledged before the state said so.
    std::vector<std::string> acknowledged;
    for (const auto& [id, name] : state_->placed()) {
      if (!listed.count(id)) acknowledged.push_back(id);
    }
    for (const std::string& id : acknowledged) state_->Erase(id);
    return failed;
  }

 private:
  void Sync(const v1::InboxEntry& entry) {
    const std::string id = CheckedId(entry.id());
    auto placed = state_->placed().find(id);
    if (placed != state_->placed().end()) {
      // Recorded before a crash: in DIR already when its bytes are there.
      std::optional<std::string> bytes = ReadIfExists(dir_ / placed->second);
      if (bytes && Sha256Hex(*bytes) == entry.sha256()) {
        inbox_.Acknowledge(id);
        state_->Erase(id);
        return;
      }
      state_->Erase(id);
    }
    const fs::path temp = private_ / (id + ".part");
    const v1::InboxEntry fetched = inbox_.Fetch(id, temp, &entry);
    const std::string name = PlaceDownload(temp, dir_, LocalName(fetched), state_->Names(),
                                           [&](const std::string& candidate) { state_->Set(id, candidate); });
    inbox_.Acknowledge(id);
    state_->Erase(id);
    PrintPlaced(options_, fetched, dir_ / name);
  }

  const Options& options_;
  const fs::path dir_, private_;
  const InboxClient inbox_;
  UniqueFd lock_;
  std::optional<SyncState> state_;  // read once the lock is held
};

int InboxList(const Options& o) {
  if (o.words.size() != 2) throw UsageError("inbox list takes no arguments");
  AcceptOnly(o, "inbox list", {});
  v1::ListInboxResponse all;
  for (v1::InboxEntry& entry : InboxClient(o).ListAll()) *all.add_entries() = std::move(entry);
  if (o.json) {
    std::cout << ToJson(all);
    return kExitDelivered;
  }
  if (all.entries().empty()) std::cout << "(inbox empty)\n";
  for (const v1::InboxEntry& e : all.entries()) {
    std::cout << e.id() << "  " << e.submitted_at() << "  " << e.sender() << "  " << e.size() << "  " << e.name()
              << (e.released_original() ? "  (released original)" : "") << (e.note().empty() ? "" : "  " + e.note())
              << "\n";
  }
  return kExitDelivered;
}

int InboxFetch(const Options& o) {
  if (o.words.size() != 3) throw UsageError("inbox fetch takes one ID");
  AcceptOnly(o, "inbox fetch", {});
  if (!o.output) throw UsageError("inbox fetch needs -o DIR");
  const fs::path dir = *o.output;
  const std::string id = CheckedId(o.words[2]);
  MakeDirectory(dir);
  MakePrivateDirectory(dir / kInboxState);
  const fs::path temp = dir / kInboxState / (id + ".part");
  const InboxClient inbox(o);
  const v1::InboxEntry entry = inbox.Fetch(id, temp, nullptr);
  const std::string name = PlaceDownload(temp, dir, LocalName(entry), {}, [](const std::string&) {});
  PrintPlaced(o, entry, dir / name);
  return kExitDelivered;
}

int InboxSyncCommand(const Options& o) {
  if (o.words.size() != 3) throw UsageError("inbox sync takes one DIR");
  AcceptOnly(o, "inbox sync", {"--interval", "--once"});
  const std::chrono::seconds interval = Seconds(o, "--interval", 10);
  if (interval.count() == 0) throw UsageError("--interval needs at least 1 second");
  StopSignal stop;
  InboxSync sync(o, o.words[2]);
  for (;;) {
    unsigned failed = 0;
    try {
      failed = sync.Pass(stop);
    } catch (const std::runtime_error& e) {
      if (o.Has("--once")) throw;
      LogError(std::string(e.what()) + "; trying again in " + std::to_string(interval.count()) + " s");
    }
    if (o.Has("--once")) return failed ? kExitError : kExitDelivered;
    if (!stop.Wait(interval)) return kExitDelivered;
  }
}

}  // namespace

int Inbox(const Options& o) {
  if (o.words.size() < 2) throw UsageError("inbox needs list, fetch ID or sync DIR");
  const std::string& verb = o.words[1];
  if (verb == "list") return InboxList(o);
  if (verb == "fetch") return InboxFetch(o);
  if (verb == "sync") return InboxSyncCommand(o);
  throw UsageError("inbox needs list, fetch ID or sync DIR");
}

}  // namespace mugai::cli
