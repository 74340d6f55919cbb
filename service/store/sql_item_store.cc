// ItemStore over SqlDatabase: the same statements on SQLite and PostgreSQL.
//
// Concurrency: every transaction that writes an audit entry, or may add or
// drop an original, calls LockAuditChain() before it reads anything, so
// those transactions run one at a time across every connection and
// process. On PostgreSQL (READ COMMITTED) each later statement of the
// transaction then sees everything committed before the lock: the state it
// checks is the state it changes, the chain head it reads is the head, and
// a blob it finds unreferenced cannot gain a reference before it commits.
// Recording an item without an original or inbox entries takes no lock: it
// is one INSERT. The one write before the lock is a submission's
// idempotency key, which its primary key alone makes safe (see Record).
// The inbox's reads and acknowledgements take no lock either: each is one
// statement on one row, filtered by the recipient.
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/rand.h>

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <ctime>
#include <deque>
#include <mutex>
#include <span>
#include <tuple>
#include <utility>

#include "sanitizers/core/log.h"
#include "sanitizers/core/sha256.h"
#include "sanitizers/core/unique_fd.h"
#include "sanitizers/pipeline/names.h"
#include "service/store/item_store.h"
#include "service/store/private_dir.h"
#include "service/store/sql_database.h"
#include "service/store/vault_cipher.h"

namespace mugai {
namespace {

void CollectFindingCodes(const v1::ItemReport& item, std::vector<std::string>* codes) {
  for (const v1::Finding& finding : item.findings()) {
    if (std::find(codes->begin(), codes->end(), finding.code()) == codes->end()) codes->push_back(finding.code());
  }
  for (const v1::ItemReport& child : item.children()) CollectFindingCodes(child, codes);
}

}  // namespace

std::vector<std::string> FindingCodesOf(const v1::ItemReport& item) {
  std::vector<std::string> codes;
  CollectFindingCodes(item, &codes);
  return codes;
}

namespace {

namespace fs = std::filesystem;
using Dialect = SqlDatabase::Dialect;

constexpr size_t kDefaultPageSize = 100;
constexpr size_t kMaxPageSize = 1000;
constexpr int64_t kVerifyPageSize = 1000;
// SQLite's default SQLITE_MAX_LENGTH, and under PostgreSQL's 1 GB bytea.
constexpr size_t kMaxSealedSize = 1'000'000'000;
constexpr size_t kMaxOriginalSize = kMaxSealedSize - VaultCipher::kSealOverhead;

constexpr std::string_view kHeld = "held";
constexpr std::string_view kReleaseRequested = "release_requested";
constexpr std::string_view kReleased = "released";
constexpr std::string_view kDeleted = "deleted";
constexpr std::string_view kExpired = "expired";

const std::string kFirstPrevHash(64, '0');

// One schema statement; `postgres` null when PostgreSQL takes the same text.
struct SchemaStatement {
  const char* sqlite;
  const char* postgres = nullptr;
};

// Migration i takes the schema from version i to i + 1. Append only: a
// released migration never changes.
constexpr SchemaStatement kMigration1[] = {
    {R"sql(
CREATE TABLE items (
  id TEXT PRIMARY KEY,          -- YYYYMMDDTHHMMSSZ-<12 hex>: sorts by time
  received_at TEXT NOT NULL,    -- RFC 3339 UTC
  name TEXT,
  detected_type TEXT,
  sha256 TEXT NOT NULL,
  size INTEGER NOT NULL,
  outcome TEXT NOT NULL,
  finding_codes TEXT NOT NULL,  -- space-separated, deduplicated, whole tree
  has_original INTEGER NOT NULL,
  report BLOB NOT NULL          -- serialized mugai.v1.Report
))sql",
     R"sql(
CREATE TABLE items (
  id TEXT PRIMARY KEY,
  received_at TEXT NOT NULL,
  name TEXT,
  detected_type TEXT,
  sha256 TEXT NOT NULL,
  size BIGINT NOT NULL,
  outcome TEXT NOT NULL,
  finding_codes TEXT NOT NULL,
  has_original INTEGER NOT NULL,
  report BYTEA NOT NULL
))sql"},
    {"CREATE INDEX items_by_outcome ON items (outcome, id)"},
    // Whether any item still holds a blob, asked on every delete.
    {"CREATE INDEX items_by_original ON items (sha256) WHERE has_original = 1"},
};

// has_original stays the one test of "the original is kept" (states held,
// release_requested, released); state says which.
constexpr SchemaStatement kMigration2[] = {
    {"ALTER TABLE items ADD COLUMN state TEXT NOT NULL DEFAULT ''"},
    {"ALTER TABLE items ADD COLUMN state_changed_at TEXT NOT NULL DEFAULT ''"},
    {"ALTER TABLE items ADD COLUMN kind TEXT NOT NULL DEFAULT ''"},
    {"ALTER TABLE items ADD COLUMN sender TEXT NOT NULL DEFAULT ''"},
    {"ALTER TABLE items ADD COLUMN recipients TEXT NOT NULL DEFAULT ''"},  // newline-joined
    {"ALTER TABLE items ADD COLUMN subject TEXT NOT NULL DEFAULT ''"},
    {"ALTER TABLE items ADD COLUMN summary BLOB", "ALTER TABLE items ADD COLUMN summary BYTEA"},
    // Serialized mugai.v1.ReleaseInfo; NULL until a release is requested.
    {"ALTER TABLE items ADD COLUMN release_info BLOB", "ALTER TABLE items ADD COLUMN release_info BYTEA"},
    {"UPDATE items SET state = 'held', state_changed_at = received_at WHERE has_original = 1"},
    {"CREATE INDEX items_by_state ON items (state, id)"},
    {"CREATE INDEX items_by_received_at ON items (received_at)"},
    // Originals sealed by VaultCipher, by the SHA-256 of their plaintext.
    {"CREATE TABLE blobs (sha256 TEXT PRIMARY KEY, sealed BLOB NOT NULL)",
     "CREATE TABLE blobs (sha256 TEXT PRIMARY KEY, sealed BYTEA NOT NULL)"},
    // BIGINT, not INTEGER: PostgreSQL's INTEGER is 32 bits; SQLite gives
    // both 64-bit integer affinity.
    {R"sql(
CREATE TABLE audit (
  seq BIGINT PRIMARY KEY,
  at TEXT NOT NULL,
  actor TEXT NOT NULL,
  action TEXT NOT NULL,
  item_id TEXT NOT NULL,
  detail TEXT NOT NULL,
  prev_hash TEXT NOT NULL,
  hash TEXT NOT NULL
))sql"},
    {"CREATE INDEX audit_by_item ON audit (item_id, seq)"},
};

// The file exchange. An inbox row is one file waiting for an
// LGWAN-side recipient: a derivative of a delivered submission, or an
// original two administrators released (idx -1, id "<item id>.original").
// Its content is sealed apart from the vault's blobs, so the inbox and the
// vault expire independently. Rows stay when their content goes
// (acknowledged or expired): they are the record of what crossed.
constexpr SchemaStatement kMigration3[] = {
    {R"sql(
CREATE TABLE inbox (
  id TEXT PRIMARY KEY,                  -- <item id>.<idx>, or <item id>.original
  item_id TEXT NOT NULL,
  idx BIGINT NOT NULL,                  -- derivative index; -1: the released original
  recipient TEXT NOT NULL,
  sender TEXT NOT NULL,
  note TEXT NOT NULL,
  name TEXT NOT NULL,
  media_type TEXT NOT NULL,
  sha256 TEXT NOT NULL,                 -- of the plaintext content
  size BIGINT NOT NULL,
  submitted_at TEXT NOT NULL,           -- RFC 3339 UTC; retention counts from here
  released_original INTEGER NOT NULL,
  fetched_at TEXT NOT NULL DEFAULT '',
  acknowledged_at TEXT NOT NULL DEFAULT '',
  expired_at TEXT NOT NULL DEFAULT '',
  content BLOB                          -- sealed by VaultCipher; NULL once deleted
))sql",
     R"sql(
CREATE TABLE inbox (
  id TEXT PRIMARY KEY,
  item_id TEXT NOT NULL,
  idx BIGINT NOT NULL,
  recipient TEXT NOT NULL,
  sender TEXT NOT NULL,
  note TEXT NOT NULL,
  name TEXT NOT NULL,
  media_type TEXT NOT NULL,
  sha256 TEXT NOT NULL,
  size BIGINT NOT NULL,
  submitted_at TEXT NOT NULL,
  released_original INTEGER NOT NULL,
  fetched_at TEXT NOT NULL DEFAULT '',
  acknowledged_at TEXT NOT NULL DEFAULT '',
  expired_at TEXT NOT NULL DEFAULT '',
  content BYTEA
))sql"},
    // ListInbox: one recipient's live entries in order. Its WHERE repeats
    // this predicate word for word, so both planners use the index.
    {"CREATE INDEX inbox_live ON inbox (recipient, item_id, idx) WHERE acknowledged_at = '' AND content IS NOT NULL"},
    {"CREATE INDEX inbox_by_submitted_at ON inbox (submitted_at) WHERE content IS NOT NULL"},
    // Idempotent submission: a sender's key names the one item it made.
    {R"sql(
CREATE TABLE submissions (
  sender TEXT NOT NULL,
  submit_key TEXT NOT NULL,
  item_id TEXT NOT NULL,
  PRIMARY KEY (sender, submit_key)
))sql"},
};

constexpr std::span<const SchemaStatement> kMigrations[] = {kMigration1, kMigration2, kMigration3};
constexpr int64_t kSchemaVersion = std::size(kMigrations);

// Columns 0-14 of every item query, in the order ReadItem expects; 15 and
// 16 in full reads.
constexpr std::string_view kItemColumns =
    "id, received_at, name, detected_type, sha256, size, outcome, finding_codes, state, state_changed_at, "
    "kind, sender, recipients, subject, release_info";
constexpr std::string_view kFullItemColumns = ", summary, report";

constexpr std::string_view kAuditColumns = "seq, at, actor, action, item_id, detail, prev_hash, hash";

// Columns 0-10 of every inbox query, in the order ReadInboxEntry expects.
constexpr std::string_view kInboxColumns =
    "id, item_id, name, media_type, sha256, size, sender, note, submitted_at, released_original, fetched_at";
// The inbox_live index's predicate: neither acknowledged nor purged.
constexpr std::string_view kLiveInbox = "acknowledged_at = '' AND content IS NOT NULL";
constexpr int64_t kReleasedOriginalIndex = -1;
constexpr std::string_view kReleasedOriginalSuffix = "original";

std::string Rfc3339(std::chrono::system_clock::time_point time) {
  std::time_t seconds = std::chrono::system_clock::to_time_t(time);
  std::tm utc;
  gmtime_r(&seconds, &utc);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &utc);
  return text;
}

std::string Now() { return Rfc3339(std::chrono::system_clock::now()); }

std::vector<std::string> Split(std::string_view joined, char separator) {
  std::vector<std::string> parts;
  for (size_t start = 0; start < joined.size();) {
    size_t end = std::min(joined.find(separator, start), joined.size());
    parts.emplace_back(joined.substr(start, end - start));
    start = end + 1;
  }
  return parts;
}

// The finding_codes column: every code in the item tree, first occurrence
// first. Codes are stable dotted names; one that could not round-trip
// through the space-separated form is a bug upstream, and failing is safer
// than recording a wrong list.
std::string JoinFindingCodes(const v1::ItemReport& item) {
  std::string joined;
  const std::vector<std::string> codes = FindingCodesOf(item);
  for (const std::string& code : codes) {
    if (code.empty() || code.find_first_of(" \t\r\n\f\v") != std::string::npos) {
      throw StoreError("invalid finding code \"" + code + "\"");
    }
    if (!joined.empty()) joined += ' ';
    joined += code;
  }
  return joined;
}

// The recipients column, one per line so a search can match within one.
std::string JoinRecipients(const v1::ItemSummary& summary) {
  std::string joined;
  for (const std::string& recipient : summary.recipients()) {
    if (recipient.find('\n') != std::string::npos) throw StoreError("recipient with a newline: \"" + recipient + "\"");
    if (!joined.empty()) joined += '\n';
    joined += recipient;
  }
  return joined;
}

// A LIKE pattern matching `text` anywhere, with LIKE's own characters
// escaped (ESCAPE '\').
std::string ContainsPattern(std::string_view text) {
  std::string pattern = "%";
  for (char c : text) {
    if (c == '%' || c == '_' || c == '\\') pattern += '\\';
    pattern += c;
  }
  pattern += '%';
  return pattern;
}

// A NULL cell leaves `message` as it is.
template <typename Message>
void ParseColumn(const SqlRows& rows, size_t row, size_t column, std::string_view what, Message* message) {
  if (rows.IsNull(row, column)) return;
  if (!message->ParseFromString(rows.Text(row, column))) {
    throw StoreError("stored " + std::string(what) + " of item " + rows.Text(row, 0) + " is corrupt");
  }
}

// The report of the item `sender` submitted with `submit_key`, if any.
std::optional<v1::Report> EarlierSubmission(SqlSession& session, std::string_view sender,
                                            std::string_view submit_key) {
  SqlRows rows = session.Query(
      "SELECT items.id, items.report FROM submissions JOIN items ON items.id = submissions.item_id "
      "WHERE submissions.sender = $1 AND submissions.submit_key = $2",
      {sender, submit_key});
  if (rows.empty()) return std::nullopt;
  v1::Report report;
  ParseColumn(rows, 0, 1, "report", &report);
  return report;
}

v1::VaultItem ReadItem(const SqlRows& rows, size_t row, bool full) {
  v1::VaultItem item;
  item.set_id(rows.Text(row, 0));
  item.set_received_at(rows.Text(row, 1));
  item.set_name(rows.Text(row, 2));
  item.set_detected_type(rows.Text(row, 3));
  item.set_sha256(rows.Text(row, 4));
  item.set_size(static_cast<uint64_t>(rows.Int(row, 5)));
  item.set_outcome(rows.Text(row, 6));
  for (std::string& code : Split(rows.Text(row, 7), ' ')) item.add_finding_codes(std::move(code));
  item.set_state(rows.Text(row, 8));
  item.set_state_changed_at(rows.Text(row, 9));
  v1::ItemSummary* summary = item.mutable_summary();
  if (full) ParseColumn(rows, row, 15, "summary", summary);
  summary->set_kind(rows.Text(row, 10));
  summary->set_sender(rows.Text(row, 11));
  summary->clear_recipients();
  for (std::string& recipient : Split(rows.Text(row, 12), '\n')) summary->add_recipients(std::move(recipient));
  summary->set_subject(rows.Text(row, 13));
  if (!rows.IsNull(row, 14)) ParseColumn(rows, row, 14, "release", item.mutable_release());
  if (full) ParseColumn(rows, row, 16, "report", item.mutable_report());
  return item;
}

std::string Serialize(const google::protobuf::MessageLite& message, std::string_view what) {
  std::string bytes;
  if (!message.SerializeToString(&bytes)) throw StoreError("cannot serialize the " + std::string(what));
  return bytes;
}

void AppendNetstring(std::string* out, std::string_view field) {
  *out += std::to_string(field.size());
  *out += ':';
  *out += field;
  *out += ',';
}

// What the audit hash covers: every field but the hash, each
// length-prefixed so that no two entries encode alike.
std::string CanonicalAuditEntry(const v1::AuditEntry& entry) {
  std::string canonical = "mugai audit entry v1\n";
  AppendNetstring(&canonical, std::to_string(entry.seq()));
  AppendNetstring(&canonical, entry.at());
  AppendNetstring(&canonical, entry.actor());
  AppendNetstring(&canonical, entry.action());
  AppendNetstring(&canonical, entry.item_id());
  AppendNetstring(&canonical, entry.detail());
  AppendNetstring(&canonical, entry.prev_hash());
  return canonical;
}

v1::AuditEntry ReadAuditEntry(const SqlRows& rows, size_t row) {
  v1::AuditEntry entry;
  entry.set_seq(static_cast<uint64_t>(rows.Int(row, 0)));
  entry.set_at(rows.Text(row, 1));
  entry.set_actor(rows.Text(row, 2));
  entry.set_action(rows.Text(row, 3));
  entry.set_item_id(rows.Text(row, 4));
  entry.set_detail(rows.Text(row, 5));
  entry.set_prev_hash(rows.Text(row, 6));
  entry.set_hash(rows.Text(row, 7));
  return entry;
}

v1::InboxEntry ReadInboxEntry(const SqlRows& rows, size_t row) {
  v1::InboxEntry entry;
  entry.set_id(rows.Text(row, 0));
  entry.set_item_id(rows.Text(row, 1));
  entry.set_name(rows.Text(row, 2));
  entry.set_media_type(rows.Text(row, 3));
  entry.set_sha256(rows.Text(row, 4));
  entry.set_size(static_cast<uint64_t>(rows.Int(row, 5)));
  entry.set_sender(rows.Text(row, 6));
  entry.set_note(rows.Text(row, 7));
  entry.set_submitted_at(rows.Text(row, 8));
  entry.set_released_original(rows.Int(row, 9) != 0);
  entry.set_fetched_at(rows.Text(row, 10));
  return entry;
}

// Where a ListInbox page starts: after (item_id, idx). An after_id that is
// no entry id ("<item id>.<idx>" or "<item id>.original") bounds by item
// id alone, past every entry of that item: the caller pages only its own
// inbox, so a stray value costs nothing but an odd page.
struct InboxCursor {
  std::string item_id;
  int64_t idx = 0;
};
InboxCursor ParseInboxCursor(std::string_view after_id) {
  size_t dot = after_id.rfind('.');
  if (dot != std::string_view::npos) {
    std::string_view suffix = after_id.substr(dot + 1);
    std::string item_id(after_id.substr(0, dot));
    if (suffix == kReleasedOriginalSuffix) return {item_id, kReleasedOriginalIndex};
    if (!suffix.empty() && suffix.size() <= 9 && suffix.find_first_not_of("0123456789") == std::string_view::npos) {
      return {item_id, std::stoll(std::string(suffix))};
    }
  }
  return {std::string(after_id), INT64_MAX};
}

bool DeliversDerivatives(std::string_view outcome) {
  return outcome == "delivered" || outcome == "delivered_with_removals";
}

size_t PageSize(size_t limit) { return std::min(limit == 0 ? kDefaultPageSize : limit, kMaxPageSize); }

// A file of the v1 blob directory, whole; nullopt when it does not exist.
std::optional<std::string> ReadV1Blob(const fs::path& file) {
  // O_NOFOLLOW: a symlink planted in the blob directory is not followed.
  UniqueFd fd(::open(file.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!fd.valid()) {
    if (errno == ENOENT) return std::nullopt;
    throw StoreError(ErrnoText("cannot open " + file.string()));
  }
  std::string data;
  char buffer[64 * 1024];
  for (;;) {
    ssize_t n = ::read(fd.get(), buffer, sizeof buffer);
    if (n == 0) return data;
    if (n < 0) {
      if (errno == EINTR) continue;
      throw StoreError(ErrnoText("cannot read " + file.string()));
    }
    data.append(buffer, static_cast<size_t>(n));
  }
}

class SqlItemStore final : public ItemStore {
 public:
  SqlItemStore(std::unique_ptr<SqlDatabase> db, std::string_view key, const StoreOptions& options)
      : db_(std::move(db)), cipher_(key), options_(options) {}

  // Brings the schema to kSchemaVersion. `v1_blob_dir`: where a v1 SQLite
  // store kept its originals, sealed into the blobs table on the way.
  void Migrate(const fs::path& v1_blob_dir);

  Stamp Reserve() override;
  bool Record(v1::Report* report, const std::string* original, const v1::ItemSummary& summary,
              const InboxDelivery* inbox) override;
  std::vector<v1::VaultItem> Search(const VaultQuery& query) override;
  std::optional<v1::VaultItem> Get(std::string_view id) override;
  std::optional<std::string> ReadOriginal(std::string_view id) override;
  Change RequestRelease(std::string_view id, std::string_view actor, std::string_view reason) override;
  Change DecideRelease(std::string_view id, std::string_view actor, bool approve, std::string_view reason,
                       bool two_person_rule) override;
  Change RecordDelivery(std::string_view id, std::string_view actor, bool delivered, std::string_view detail) override;
  Change Delete(std::string_view id, std::string_view actor, std::string_view reason) override;
  Change ReleaseToInbox(std::string_view id, std::string_view actor) override;
  std::optional<v1::Report> FindSubmission(std::string_view sender, std::string_view submit_key) override;
  std::vector<v1::InboxEntry> ListInbox(std::string_view recipient, std::string_view after_id, size_t limit) override;
  std::optional<InboxFile> FetchInbox(std::string_view recipient, std::string_view entry_id) override;
  bool AcknowledgeInbox(std::string_view recipient, std::string_view entry_id) override;
  PurgeResult Purge(std::chrono::system_clock::time_point now) override;
  std::vector<v1::DailyCount> Statistics(std::string_view from, std::string_view to) override;
  VaultUsage Usage() override;
  void Audit(std::string_view actor, std::string_view action, std::string_view item_id,
             std::string_view detail) override;
  std::vector<v1::AuditEntry> ReadAudit(uint64_t after_seq, size_t limit, std::string_view item_id) override;
  v1::AuditVerification VerifyAudit() override;

 private:
  Stamp NextStamp();

  // Requires LockAuditChain() in this transaction.
  void AppendAudit(SqlSession& session, std::string_view actor, std::string_view action, std::string_view item_id,
                   std::string_view detail);
  std::optional<v1::VaultItem> LoadItem(SqlSession& session, std::string_view id);
  void SealV1Originals(SqlSession& session, const fs::path& v1_blob_dir);

  // Runs `apply` on the item under the chain lock; `apply` checks the
  // state, writes the change and its audit entry, or returns a refusal.
  Change Transition(std::string_view id,
                    const std::function<Refusal(SqlSession& session, const v1::VaultItem& item)>& apply);

  const std::unique_ptr<SqlDatabase> db_;
  const VaultCipher cipher_;
  const StoreOptions options_;

  std::mutex stamp_mutex_;
  // Last id issued: ids from this store strictly increase, even within one
  // second or when the wall clock steps back.
  std::time_t last_second_ = 0;
  uint64_t last_suffix_ = 0;
};

void SqlItemStore::Migrate(const fs::path& v1_blob_dir) {
  const bool sqlite = db_->dialect() == Dialect::kSqlite;
  db_->Transact([&](SqlSession& session) {
    // Replicas starting together migrate one after the other.
    session.LockAuditChain();
    int64_t version = db_->SchemaVersion(session);
    if (version > kSchemaVersion) {
      throw StoreError("database schema version " + std::to_string(version) + " is newer than this build supports (" +
                       std::to_string(kSchemaVersion) + ")");
    }
    if (version == kSchemaVersion) return;
    for (int64_t v = version; v < kSchemaVersion; ++v) {
      for (const SchemaStatement& statement : kMigrations[v]) {
        session.Query(sqlite || statement.postgres == nullptr ? statement.sqlite : statement.postgres);
      }
      if (v == 1 && sqlite) SealV1Originals(session, v1_blob_dir);
    }
    db_->SetSchemaVersion(session, kSchemaVersion);
  });
}

void SqlItemStore::SealV1Originals(SqlSession& session, const fs::path& v1_blob_dir) {
  SqlRows held = session.Query("SELECT id, sha256 FROM items WHERE has_original = 1 ORDER BY id");
  for (size_t i = 0; i < held.size(); ++i) {
    const std::string& id = held.Text(i, 0);
    const std::string& sha256 = held.Text(i, 1);
    if (session.Query("SELECT 1 FROM blobs WHERE sha256 = $1", {sha256}).empty()) {
      if (sha256.size() != 64 || sha256.find_first_not_of("0123456789abcdef") != std::string::npos) {
        throw StoreError("cannot migrate item " + id + ": its sha256 \"" + sha256 + "\" is not a digest");
      }
      fs::path file = v1_blob_dir / sha256.substr(0, 2) / sha256;
      std::optional<std::string> original = ReadV1Blob(file);
      if (!original) throw StoreError("cannot migrate item " + id + ": its original " + file.string() + " is missing");
      if (Sha256Hex(*original) != sha256) {
        throw StoreError("cannot migrate item " + id + ": its original " + file.string() +
                         " does not match its SHA-256 (corrupted or tampered with)");
      }
      session.Query("INSERT INTO blobs (sha256, sealed) VALUES ($1, $2)",
                    {sha256, SqlBytes{cipher_.Seal(sha256, *original)}});
    }
    AppendAudit(session, kDaemonActor, "vault.hold", id, "migrated from " + v1_blob_dir.string());
  }
  if (!held.empty()) LogInfo("sealed the originals of " + std::to_string(held.size()) + " items into the database");
}

ItemStore::Stamp SqlItemStore::NextStamp() {
  std::lock_guard lock(stamp_mutex_);
  std::time_t now = std::time(nullptr);
  if (now > last_second_) {
    unsigned char random[6];
    if (RAND_bytes(random, sizeof random) != 1) {
      throw StoreError("RAND_bytes failed: " + std::string(ERR_error_string(ERR_get_error(), nullptr)));
    }
    uint64_t value = 0;
    for (unsigned char byte : random) value = (value << 8) | byte;
    // The top bit is cleared so counting up within the second can never
    // overflow the 12 hex digits.
    last_suffix_ = value >> 1;
    last_second_ = now;
  } else {
    ++last_suffix_;
  }
  std::tm utc;
  gmtime_r(&last_second_, &utc);
  char compact[32];
  char suffix[16];
  std::strftime(compact, sizeof compact, "%Y%m%dT%H%M%SZ", &utc);
  std::snprintf(suffix, sizeof suffix, "%012" PRIx64, last_suffix_);
  return {std::string(compact) + "-" + suffix, Rfc3339(std::chrono::system_clock::from_time_t(last_second_))};
}

ItemStore::Stamp SqlItemStore::Reserve() { return NextStamp(); }

void SqlItemStore::AppendAudit(SqlSession& session, std::string_view actor, std::string_view action,
                               std::string_view item_id, std::string_view detail) {
  SqlRows head = session.Query("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1");
  v1::AuditEntry entry;
  entry.set_seq(head.empty() ? 1 : static_cast<uint64_t>(head.Int(0, 0)) + 1);
  entry.set_at(Now());
  entry.set_actor(std::string(actor));
  entry.set_action(std::string(action));
  entry.set_item_id(std::string(item_id));
  entry.set_detail(std::string(detail));
  entry.set_prev_hash(head.empty() ? kFirstPrevHash : head.Text(0, 1));
  entry.set_hash(cipher_.AuditHash(CanonicalAuditEntry(entry)));
  session.Query(
      "INSERT INTO audit (seq, at, actor, action, item_id, detail, prev_hash, hash) "
      "VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
      {static_cast<int64_t>(entry.seq()), entry.at(), entry.actor(), entry.action(), entry.item_id(), entry.detail(),
       entry.prev_hash(), entry.hash()});
}

// An inbox row as Record or ReleaseToInbox writes it.
struct NewInboxEntry {
  std::string id;
  int64_t idx;
  std::string name, media_type, sha256;
  uint64_t size;
  std::string sealed;
};

void InsertInboxEntry(SqlSession& session, const NewInboxEntry& entry, std::string_view item_id,
                      std::string_view recipient, std::string_view sender, std::string_view note,
                      std::string_view submitted_at) {
  session.Query(
      "INSERT INTO inbox (id, item_id, idx, recipient, sender, note, name, media_type, sha256, size, submitted_at, "
      "released_original, content) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
      {entry.id, item_id, entry.idx, recipient, sender, note, entry.name, entry.media_type, entry.sha256,
       static_cast<int64_t>(entry.size), submitted_at, int64_t{entry.idx == kReleasedOriginalIndex ? 1 : 0},
       SqlBytes{entry.sealed}});
}

bool SqlItemStore::Record(v1::Report* report, const std::string* original, const v1::ItemSummary& summary,
                          const InboxDelivery* inbox) {
  const v1::ItemReport& item = report->item();
  std::string finding_codes = JoinFindingCodes(item);
  std::string recipients = JoinRecipients(summary);
  std::string sealed;
  if (original != nullptr) {
    if (original->size() > kMaxOriginalSize) {
      throw StoreError("original of " + std::to_string(original->size()) + " bytes is too large for the vault (at most " +
                       std::to_string(kMaxOriginalSize) + ")");
    }
    if (Sha256Hex(*original) != item.sha256()) {
      throw StoreError("original does not match the report's SHA-256 " + item.sha256());
    }
    // Outside the transaction: sealing a large original takes a while.
    sealed = cipher_.Seal(item.sha256(), *original);
  }

  // The caller's report changes only once the record is committed.
  Stamp stamp = report->item_id().empty() ? NextStamp() : Stamp{report->item_id(), report->received_at()};

  // Hashed and sealed outside the transaction too. A derivative that is not
  // what the report says is a pipeline bug: nothing is recorded.
  std::vector<NewInboxEntry> entries;
  if (inbox != nullptr && inbox->derivatives != nullptr && DeliversDerivatives(report->outcome())) {
    const std::vector<std::string>& derivatives = *inbox->derivatives;
    if (inbox->recipient.empty()) throw StoreError("an inbox delivery needs a recipient");
    if (derivatives.size() != static_cast<size_t>(item.derivatives_size())) {
      throw StoreError("inbox delivery has " + std::to_string(derivatives.size()) + " derivatives, the report " +
                       std::to_string(item.derivatives_size()));
    }
    for (size_t i = 0; i < derivatives.size(); ++i) {
      const v1::Derivative& described = item.derivatives(static_cast<int>(i));
      if (derivatives[i].size() > kMaxOriginalSize) {
        throw StoreError("derivative " + std::to_string(i) + " of " + std::to_string(derivatives[i].size()) +
                         " bytes is too large for the inbox");
      }
      if (derivatives[i].size() != described.size() || Sha256Hex(derivatives[i]) != described.sha256()) {
        throw StoreError("derivative " + std::to_string(i) + " does not match the report's SHA-256 " +
                         described.sha256() + " and size " + std::to_string(described.size()));
      }
      entries.push_back({stamp.id + "." + std::to_string(i), static_cast<int64_t>(i), described.name(),
                         described.media_type(), described.sha256(), described.size(),
                         cipher_.Seal(described.sha256(), derivatives[i])});
    }
  }
  const bool keyed = inbox != nullptr && !inbox->submit_key.empty();

  v1::Report stored = *report;
  stored.set_item_id(stamp.id);
  stored.set_received_at(stamp.received_at);
  std::string serialized_report = Serialize(stored, "report");
  std::string serialized_summary = Serialize(summary, "summary");
  const std::string state(original != nullptr ? kHeld : "");
  const std::string state_changed_at = original != nullptr ? Now() : "";

  std::optional<v1::Report> earlier;
  db_->Transact([&](SqlSession& session) {
    earlier.reset();  // the transaction may be retried
    if (keyed) {
      // Before the chain lock: a second submission of the key waits here,
      // on the first one's row, until that commits; it never waits on the
      // key while holding the lock the first one needs.
      SqlRows taken = session.Query(
          "INSERT INTO submissions (sender, submit_key, item_id) VALUES ($1, $2, $3) "
          "ON CONFLICT (sender, submit_key) DO NOTHING RETURNING item_id",
          {summary.sender(), inbox->submit_key, stamp.id});
      if (taken.empty()) {
        earlier = EarlierSubmission(session, summary.sender(), inbox->submit_key);
        if (!earlier) throw StoreError("submission key of " + summary.sender() + " names no recorded item");
        return;  // nothing written: the empty transaction commits
      }
    }
    if (original != nullptr || !entries.empty()) session.LockAuditChain();
    if (original != nullptr) {
      session.Query("INSERT INTO blobs (sha256, sealed) VALUES ($1, $2) ON CONFLICT (sha256) DO NOTHING",
                    {item.sha256(), SqlBytes{sealed}});
    }
    session.Query(
        "INSERT INTO items (id, received_at, name, detected_type, sha256, size, outcome, finding_codes, "
        "has_original, report, state, state_changed_at, kind, sender, recipients, subject, summary) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)",
        {stamp.id, stamp.received_at, item.claimed_name(), item.detected_type(), item.sha256(),
         static_cast<int64_t>(item.size()), stored.outcome(), finding_codes, int64_t{original != nullptr ? 1 : 0},
         SqlBytes{serialized_report}, state, state_changed_at, summary.kind(), summary.sender(), recipients,
         summary.subject(), SqlBytes{serialized_summary}});
    for (const NewInboxEntry& entry : entries) {
      InsertInboxEntry(session, entry, stamp.id, inbox->recipient, summary.sender(), inbox->note, stamp.received_at);
    }
    if (original != nullptr) AppendAudit(session, kDaemonActor, "vault.hold", stamp.id, stored.outcome());
    if (!entries.empty()) {
      AppendAudit(session, kDaemonActor, "inbox.deliver", stamp.id,
                  std::to_string(entries.size()) + " derivatives to the inbox of " + inbox->recipient);
    }
  });
  if (earlier) {
    *report = std::move(*earlier);
    return false;
  }
  *report = std::move(stored);
  return true;
}

std::vector<v1::VaultItem> SqlItemStore::Search(const VaultQuery& query) {
  std::string sql = "SELECT " + std::string(kItemColumns) + " FROM items";
  std::deque<std::string> values;  // stable storage behind the bound views
  std::vector<SqlValue> params;
  auto placeholder = [&](std::string value) {
    params.emplace_back(std::string_view(values.emplace_back(std::move(value))));
    return "$" + std::to_string(params.size());
  };
  std::vector<std::string> conditions;
  if (!query.received_from.empty()) conditions.push_back("received_at >= " + placeholder(query.received_from));
  if (!query.received_to.empty()) conditions.push_back("received_at < " + placeholder(query.received_to));
  auto contains = [&](std::string_view column, std::string_view text) {
    if (text.empty()) return;
    conditions.push_back("lower(" + std::string(column) + ") LIKE lower(" + placeholder(ContainsPattern(text)) +
                         ") ESCAPE '\\'");
  };
  contains("sender", query.sender);
  contains("recipients", query.recipient);
  contains("subject", query.subject);
  if (!query.finding_code.empty()) {
    // Not LIKE: SQLite's LIKE ignores ASCII case, and codes match exactly.
    const char* find = db_->dialect() == Dialect::kSqlite ? "instr" : "strpos";
    conditions.push_back(std::string(find) + "(' ' || finding_codes || ' ', " +
                         placeholder(" " + query.finding_code + " ") + ") > 0");
  }
  if (!query.outcome.empty()) conditions.push_back("outcome = " + placeholder(query.outcome));
  if (query.state == "vault") {
    conditions.push_back("has_original = 1");
  } else if (!query.state.empty()) {
    conditions.push_back("state = " + placeholder(query.state));
  }
  if (!query.before_id.empty()) conditions.push_back("id < " + placeholder(query.before_id));
  for (size_t i = 0; i < conditions.size(); ++i) sql += (i == 0 ? " WHERE " : " AND ") + conditions[i];
  params.emplace_back(static_cast<int64_t>(PageSize(query.limit)));
  sql += " ORDER BY id DESC LIMIT $" + std::to_string(params.size());

  SqlRows rows;
  db_->Transact([&](SqlSession& session) { rows = session.Query(sql, params); });
  std::vector<v1::VaultItem> items;
  items.reserve(rows.size());
  for (size_t i = 0; i < rows.size(); ++i) items.push_back(ReadItem(rows, i, false));
  return items;
}

std::optional<v1::VaultItem> SqlItemStore::LoadItem(SqlSession& session, std::string_view id) {
  SqlRows rows = session.Query(
      "SELECT " + std::string(kItemColumns) + std::string(kFullItemColumns) + " FROM items WHERE id = $1", {id});
  if (rows.empty()) return std::nullopt;
  return ReadItem(rows, 0, true);
}

std::optional<v1::VaultItem> SqlItemStore::Get(std::string_view id) {
  std::optional<v1::VaultItem> item;
  db_->Transact([&](SqlSession& session) { item = LoadItem(session, id); });
  return item;
}

std::optional<std::string> SqlItemStore::ReadOriginal(std::string_view id) {
  std::string sha256;
  SqlRows sealed;
  db_->Transact([&](SqlSession& session) {
    SqlRows item = session.Query("SELECT sha256 FROM items WHERE id = $1 AND has_original = 1", {id});
    sha256 = item.empty() ? "" : item.Text(0, 0);
    if (!sha256.empty()) sealed = session.Query("SELECT sealed FROM blobs WHERE sha256 = $1", {sha256});
  });
  if (sha256.empty()) return std::nullopt;
  if (sealed.empty()) {
    throw StoreError("original of item " + std::string(id) + " (sha256 " + sha256 + ") is missing from the vault");
  }
  return cipher_.Open(sha256, sealed.Text(0, 0));
}

ItemStore::Change SqlItemStore::Transition(
    std::string_view id, const std::function<Refusal(SqlSession& session, const v1::VaultItem& item)>& apply) {
  Change change;
  db_->Transact([&](SqlSession& session) {
    change = Change();  // the transaction may be retried
    session.LockAuditChain();
    std::optional<v1::VaultItem> item = LoadItem(session, id);
    if (!item) {
      change.refusal = Refusal::kNoSuchItem;
      return;
    }
    change.refusal = apply(session, *item);
    change.item = change.refusal == Refusal::kNone ? LoadItem(session, id).value() : std::move(*item);
  });
  return change;
}

// Writes the item's state columns; the original stays kept unless `state`
// is one without it.
void UpdateState(SqlSession& session, const v1::VaultItem& item, std::string_view state,
                 std::string_view state_changed_at, const v1::ReleaseInfo& release) {
  bool kept = state == kHeld || state == kReleaseRequested || state == kReleased;
  session.Query(
      "UPDATE items SET state = $2, state_changed_at = $3, release_info = $4, has_original = $5 WHERE id = $1",
      {item.id(), state, state_changed_at, SqlBytes{Serialize(release, "release")}, int64_t{kept ? 1 : 0}});
}

// Drops the sealed original unless another item still keeps it.
void RemoveBlobIfUnreferenced(SqlSession& session, const std::string& sha256) {
  session.Query(
      "DELETE FROM blobs WHERE sha256 = $1 AND NOT EXISTS "
      "(SELECT 1 FROM items WHERE items.sha256 = $1 AND items.has_original = 1)",
      {sha256});
}

ItemStore::Change SqlItemStore::RequestRelease(std::string_view id, std::string_view actor, std::string_view reason) {
  return Transition(id, [&](SqlSession& session, const v1::VaultItem& item) {
    if (item.state() != kHeld) return Refusal::kWrongState;
    std::string now = Now();
    // A new request starts a new release; earlier ones are in the audit trail.
    v1::ReleaseInfo release;
    release.set_requested_by(std::string(actor));
    release.set_requested_at(now);
    release.set_request_reason(std::string(reason));
    UpdateState(session, item, kReleaseRequested, now, release);
    AppendAudit(session, actor, "release.request", item.id(), reason);
    return Refusal::kNone;
  });
}

ItemStore::Change SqlItemStore::DecideRelease(std::string_view id, std::string_view actor, bool approve,
                                              std::string_view reason, bool two_person_rule) {
  return Transition(id, [&](SqlSession& session, const v1::VaultItem& item) {
    if (item.state() != kReleaseRequested) return Refusal::kWrongState;
    if (two_person_rule && item.release().requested_by() == actor) return Refusal::kSelfApproval;
    std::string now = Now();
    v1::ReleaseInfo release = item.release();
    release.set_decided_by(std::string(actor));
    release.set_decided_at(now);
    release.set_decision(approve ? "approved" : "denied");
    release.set_decision_reason(std::string(reason));
    UpdateState(session, item, approve ? kReleased : kHeld, now, release);
    AppendAudit(session, actor, approve ? "release.approve" : "release.deny", item.id(), reason);
    return Refusal::kNone;
  });
}

ItemStore::Change SqlItemStore::RecordDelivery(std::string_view id, std::string_view actor, bool delivered,
                                               std::string_view detail) {
  return Transition(id, [&](SqlSession& session, const v1::VaultItem& item) {
    if (item.state() != kReleased) return Refusal::kWrongState;
    v1::ReleaseInfo release = item.release();
    if (delivered) release.set_delivered_at(Now());
    release.set_delivery(std::string(detail));
    UpdateState(session, item, item.state(), item.state_changed_at(), release);
    AppendAudit(session, actor, delivered ? "release.delivered" : "release.delivery_failed", item.id(), detail);
    return Refusal::kNone;
  });
}

ItemStore::Change SqlItemStore::Delete(std::string_view id, std::string_view actor, std::string_view reason) {
  return Transition(id, [&](SqlSession& session, const v1::VaultItem& item) {
    if (item.state() != kHeld && item.state() != kReleaseRequested && item.state() != kReleased) {
      return Refusal::kWrongState;
    }
    UpdateState(session, item, kDeleted, Now(), item.release());
    RemoveBlobIfUnreferenced(session, item.sha256());
    AppendAudit(session, actor, "vault.delete", item.id(), reason);
    return Refusal::kNone;
  });
}

// The one way an original reaches the egress side: released by two
// administrators, re-sealed into the recipient's inbox (the vault's copy
// keeps its own retention).
ItemStore::Change SqlItemStore::ReleaseToInbox(std::string_view id, std::string_view actor) {
  return Transition(id, [&](SqlSession& session, const v1::VaultItem& item) {
    if (item.state() != kReleased || item.summary().kind() != "file" || item.summary().recipients().empty() ||
        !item.release().delivered_at().empty()) {
      return Refusal::kWrongState;
    }
    SqlRows blob = session.Query("SELECT sealed FROM blobs WHERE sha256 = $1", {item.sha256()});
    if (blob.empty()) {
      throw StoreError("original of item " + item.id() + " (sha256 " + item.sha256() + ") is missing from the vault");
    }
    const std::string& recipient = item.summary().recipients(0);
    std::string now = Now();
    // The vault keeps the name as claimed (printable); a file name the
    // recipient saves must be safe as a derivative's is.
    NewInboxEntry entry{item.id() + "." + std::string(kReleasedOriginalSuffix), kReleasedOriginalIndex,
                        MakeSafeName(item.name()).name, item.detected_type(), item.sha256(), item.size(),
                        cipher_.Seal(item.sha256(), cipher_.Open(item.sha256(), blob.Text(0, 0)))};
    // The sender's note is not kept with the item; the recipient is told
    // where the original comes from instead.
    InsertInboxEntry(session, entry, item.id(), recipient, item.summary().sender(),
                     "original released from the vault by " + item.release().decided_by(), now);
    std::string detail = "in the LGWAN inbox of " + recipient;
    v1::ReleaseInfo release = item.release();
    release.set_delivered_at(now);
    release.set_delivery(detail);
    UpdateState(session, item, item.state(), item.state_changed_at(), release);
    AppendAudit(session, actor, "release.delivered", item.id(), detail);
    return Refusal::kNone;
  });
}

std::optional<v1::Report> SqlItemStore::FindSubmission(std::string_view sender, std::string_view submit_key) {
  std::optional<v1::Report> found;
  db_->Transact([&](SqlSession& session) { found = EarlierSubmission(session, sender, submit_key); });
  return found;
}

std::vector<v1::InboxEntry> SqlItemStore::ListInbox(std::string_view recipient, std::string_view after_id,
                                                    size_t limit) {
  std::string sql = "SELECT " + std::string(kInboxColumns) + " FROM inbox WHERE recipient = $1 AND " +
                    std::string(kLiveInbox);
  InboxCursor cursor = ParseInboxCursor(after_id);
  std::vector<SqlValue> params = {recipient};
  if (!after_id.empty()) {
    params.emplace_back(std::string_view(cursor.item_id));
    params.emplace_back(cursor.idx);
    sql += " AND (item_id > $2 OR (item_id = $2 AND idx > $3))";
  }
  params.emplace_back(static_cast<int64_t>(PageSize(limit)));
  sql += " ORDER BY item_id, idx LIMIT $" + std::to_string(params.size());
  SqlRows rows;
  db_->Transact([&](SqlSession& session) { rows = session.Query(sql, params); });
  std::vector<v1::InboxEntry> entries;
  entries.reserve(rows.size());
  for (size_t i = 0; i < rows.size(); ++i) entries.push_back(ReadInboxEntry(rows, i));
  return entries;
}

std::optional<ItemStore::InboxFile> SqlItemStore::FetchInbox(std::string_view recipient, std::string_view entry_id) {
  std::optional<InboxFile> file;
  db_->Transact([&](SqlSession& session) {
    file.reset();  // the transaction may be retried
    SqlRows rows = session.Query("SELECT " + std::string(kInboxColumns) +
                                     ", content FROM inbox WHERE id = $1 AND recipient = $2 AND " +
                                     std::string(kLiveInbox),
                                 {entry_id, recipient});
    if (rows.empty()) return;
    v1::InboxEntry entry = ReadInboxEntry(rows, 0);
    // Opened before fetched_at is set: content that fails its check was
    // never fetched.
    std::string bytes = cipher_.Open(entry.sha256(), rows.Text(0, 11));
    if (entry.fetched_at().empty()) {
      entry.set_fetched_at(Now());
      session.Query("UPDATE inbox SET fetched_at = $2 WHERE id = $1 AND fetched_at = ''", {entry_id, entry.fetched_at()});
    }
    file = InboxFile{std::move(entry), std::move(bytes)};
  });
  return file;
}

bool SqlItemStore::AcknowledgeInbox(std::string_view recipient, std::string_view entry_id) {
  std::string sql = options_.keep_acknowledged ? "UPDATE inbox SET acknowledged_at = $3"
                                               : "UPDATE inbox SET acknowledged_at = $3, content = NULL";
  sql += " WHERE id = $1 AND recipient = $2 AND " + std::string(kLiveInbox) + " RETURNING id";
  std::string now = Now();
  bool acknowledged = false;
  db_->Transact([&](SqlSession& session) { acknowledged = !session.Query(sql, {entry_id, recipient, now}).empty(); });
  return acknowledged;
}

ItemStore::PurgeResult SqlItemStore::Purge(std::chrono::system_clock::time_point now) {
  auto retention = [&](const std::string& outcome) {
    auto found = options_.retention_days_by_outcome.find(outcome);
    return found != options_.retention_days_by_outcome.end() ? found->second : options_.retention_days;
  };
  auto cutoff = [&](unsigned days) { return Rfc3339(now - std::chrono::hours(24) * days); };
  // The latest cutoff of any outcome bounds the candidates; each is then
  // checked against its own outcome's.
  unsigned shortest = options_.retention_days;
  for (const auto& [outcome, days] : options_.retention_days_by_outcome) shortest = std::min(shortest, days);

  PurgeResult result;
  db_->Transact([&](SqlSession& session) {
    result = PurgeResult();  // the transaction may be retried
    session.LockAuditChain();
    SqlRows candidates = session.Query(
        "SELECT id, outcome, received_at FROM items WHERE has_original = 1 AND received_at <= $1 ORDER BY id",
        {cutoff(shortest)});
    std::string changed_at = Now();
    for (size_t i = 0; i < candidates.size(); ++i) {
      const std::string& id = candidates.Text(i, 0);
      unsigned days = retention(candidates.Text(i, 1));
      if (candidates.Text(i, 2) > cutoff(days)) continue;
      session.Query("UPDATE items SET state = $2, state_changed_at = $3, has_original = 0 WHERE id = $1",
                    {id, kExpired, changed_at});
      AppendAudit(session, kDaemonActor, "vault.expire", id, "retention of " + std::to_string(days) + " days");
      ++result.expired;
    }
    // Live entries, and acknowledged ones whose bytes were kept.
    SqlRows inbox = session.Query(
        "UPDATE inbox SET content = NULL, expired_at = $2 WHERE content IS NOT NULL AND submitted_at <= $1 "
        "RETURNING id, item_id, recipient",
        {cutoff(options_.inbox_retention_days), changed_at});
    for (size_t i = 0; i < inbox.size(); ++i) {
      AppendAudit(session, kDaemonActor, "inbox.expire", inbox.Text(i, 1),
                  "entry " + inbox.Text(i, 0) + " of " + inbox.Text(i, 2) + ": retention of " +
                      std::to_string(options_.inbox_retention_days) + " days");
    }
    result.inbox_expired = inbox.size();
    SqlRows removed = session.Query(
        "DELETE FROM blobs WHERE NOT EXISTS "
        "(SELECT 1 FROM items WHERE items.sha256 = blobs.sha256 AND items.has_original = 1) RETURNING sha256");
    result.blobs_removed = removed.size();
  });
  return result;
}

std::vector<v1::DailyCount> SqlItemStore::Statistics(std::string_view from, std::string_view to) {
  std::string sql = "SELECT substr(received_at, 1, 10), outcome, finding_codes, count(*) FROM items";
  std::vector<SqlValue> params;
  std::vector<std::string> conditions;
  if (!from.empty()) {
    params.emplace_back(from);
    conditions.push_back("received_at >= $" + std::to_string(params.size()));
  }
  if (!to.empty()) {
    params.emplace_back(to);
    conditions.push_back("received_at < $" + std::to_string(params.size()));
  }
  for (size_t i = 0; i < conditions.size(); ++i) sql += (i == 0 ? " WHERE " : " AND ") + conditions[i];
  sql += " GROUP BY substr(received_at, 1, 10), outcome, finding_codes";

  SqlRows rows;
  db_->Transact([&](SqlSession& session) { rows = session.Query(sql, params); });
  // (day, outcome, finding code) -> count; code "" counts the items.
  std::map<std::tuple<std::string, std::string, std::string>, uint64_t> counts;
  for (size_t i = 0; i < rows.size(); ++i) {
    uint64_t count = static_cast<uint64_t>(rows.Int(i, 3));
    const std::string& day = rows.Text(i, 0);
    const std::string& outcome = rows.Text(i, 1);
    counts[{day, outcome, ""}] += count;
    for (std::string& code : Split(rows.Text(i, 2), ' ')) counts[{day, outcome, std::move(code)}] += count;
  }
  std::vector<v1::DailyCount> result;
  result.reserve(counts.size());
  for (const auto& [key, count] : counts) {
    v1::DailyCount& daily = result.emplace_back();
    daily.set_day(std::get<0>(key));
    daily.set_outcome(std::get<1>(key));
    daily.set_finding_code(std::get<2>(key));
    daily.set_count(count);
  }
  return result;
}

ItemStore::VaultUsage SqlItemStore::Usage() {
  SqlRows items, blobs;
  db_->Transact([&](SqlSession& session) {
    items = session.Query("SELECT count(*) FROM items WHERE state IN ($1, $2, $3)",
                          {kHeld, kReleaseRequested, kReleased});
    blobs = session.Query("SELECT count(*), coalesce(sum(length(sealed)), 0) FROM blobs");
  });
  return {static_cast<uint64_t>(items.Int(0, 0)), static_cast<uint64_t>(blobs.Int(0, 0)),
          static_cast<uint64_t>(blobs.Int(0, 1))};
}

void SqlItemStore::Audit(std::string_view actor, std::string_view action, std::string_view item_id,
                         std::string_view detail) {
  db_->Transact([&](SqlSession& session) {
    session.LockAuditChain();
    AppendAudit(session, actor, action, item_id, detail);
  });
}

std::vector<v1::AuditEntry> SqlItemStore::ReadAudit(uint64_t after_seq, size_t limit, std::string_view item_id) {
  std::string sql = "SELECT " + std::string(kAuditColumns) + " FROM audit WHERE seq > $1";
  std::vector<SqlValue> params = {static_cast<int64_t>(after_seq)};
  if (!item_id.empty()) {
    params.emplace_back(item_id);
    sql += " AND item_id = $2";
  }
  params.emplace_back(static_cast<int64_t>(PageSize(limit)));
  sql += " ORDER BY seq LIMIT $" + std::to_string(params.size());
  SqlRows rows;
  db_->Transact([&](SqlSession& session) { rows = session.Query(sql, params); });
  std::vector<v1::AuditEntry> entries;
  entries.reserve(rows.size());
  for (size_t i = 0; i < rows.size(); ++i) entries.push_back(ReadAuditEntry(rows, i));
  return entries;
}

v1::AuditVerification SqlItemStore::VerifyAudit() {
  v1::AuditVerification result;
  std::string previous_hash = kFirstPrevHash;
  uint64_t expected_seq = 1;
  auto fail = [&](uint64_t seq, std::string problem) {
    result.set_ok(false);
    result.set_first_bad_seq(seq);
    result.set_problem(std::move(problem));
    return result;
  };
  for (;;) {
    SqlRows page;
    db_->Transact([&](SqlSession& session) {
      page = session.Query("SELECT " + std::string(kAuditColumns) + " FROM audit WHERE seq > $1 ORDER BY seq LIMIT $2",
                           {static_cast<int64_t>(expected_seq - 1), kVerifyPageSize});
    });
    for (size_t i = 0; i < page.size(); ++i) {
      v1::AuditEntry entry = ReadAuditEntry(page, i);
      if (entry.seq() != expected_seq) {
        return fail(expected_seq, "entry " + std::to_string(expected_seq) + " is missing (the next is " +
                                      std::to_string(entry.seq()) + ")");
      }
      if (entry.prev_hash() != previous_hash) {
        return fail(entry.seq(), "entry " + std::to_string(entry.seq()) +
                                     " does not follow the one before it (prev_hash is not its hash)");
      }
      if (entry.hash() != cipher_.AuditHash(CanonicalAuditEntry(entry))) {
        return fail(entry.seq(), "entry " + std::to_string(entry.seq()) +
                                     " does not match its hash: edited, or written under another vault key");
      }
      previous_hash = entry.hash();
      result.set_entries(expected_seq);
      result.set_head_hash(previous_hash);
      ++expected_seq;
    }
    if (page.size() < static_cast<size_t>(kVerifyPageSize)) break;
  }
  result.set_ok(true);
  return result;
}

}  // namespace

std::unique_ptr<ItemStore> OpenItemStore(const StoreOptions& options) {
  std::unique_ptr<SqlDatabase> db;
  std::string key;
  fs::path v1_blob_dir;
  if (options.backend == StoreOptions::Backend::kSqlite) {
    EnsurePrivateDirectory(options.data_dir);
    db = OpenSqliteDatabase(options.data_dir / "mugai.db");
    if (!options.key_file.empty()) {
      key = LoadVaultKey(options.key_file);
    } else {
      fs::path key_file = options.data_dir / "vault.key";
      // A lost key must not be silently replaced: what was sealed under it
      // would become unreadable, and the audit chain unverifiable.
      std::error_code error;
      if (!fs::exists(key_file, error)) {
        db->Transact([&](SqlSession& session) {
          if (db->SchemaVersion(session) < 2) return;
          if (session.Query("SELECT 1 FROM audit LIMIT 1").empty() &&
              session.Query("SELECT 1 FROM blobs LIMIT 1").empty()) {
            return;
          }
          throw StoreError("vault key " + key_file.string() +
                           " is missing but the database holds originals and audit entries made with it: restore it");
        });
      }
      key = LoadOrCreateVaultKey(options.data_dir);
    }
    v1_blob_dir = options.data_dir / "blobs";
  } else {
    if (options.key_file.empty()) {
      throw StoreError("the PostgreSQL store needs [vault] key_file: every replica must use the same vault key");
    }
    if (options.postgres.empty()) throw StoreError("the PostgreSQL store needs a connection string ([store] postgresql)");
    key = LoadVaultKey(options.key_file);
    db = OpenPostgresDatabase(options.postgres, options.postgres_connections);
  }
  auto store = std::make_unique<SqlItemStore>(std::move(db), key, options);
  OPENSSL_cleanse(key.data(), key.size());
  store->Migrate(v1_blob_dir);
  // The v1 store kept originals in plaintext files; once they are sealed in
  // the database (committed above) they must not stay on disk.
  if (!v1_blob_dir.empty() && fs::exists(v1_blob_dir)) {
    std::error_code error;
    fs::remove_all(v1_blob_dir, error);
    if (error) throw StoreError("cannot remove " + v1_blob_dir.string() + ": " + error.message());
    SyncDirectory(options.data_dir);
    LogInfo("removed the plaintext originals of schema 1 in " + v1_blob_dir.string());
  }
  return store;
}

}  // namespace mugai
