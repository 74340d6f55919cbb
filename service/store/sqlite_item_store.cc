// ItemStore on SQLite (the embedded default): one connection behind a mutex,
// originals in a BlobStore under <data_dir>/blobs.
//
// One process owns a data directory. Item ids stay unique across processes
// (random suffix), but the blob reference counting in DeleteQuarantined()
// relies on the in-process mutex to keep a Record() that reuses a blob from
// racing the delete of its last other reference.
#include <openssl/err.h>
#include <openssl/rand.h>
#include <sqlite3.h>

#include <algorithm>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <iterator>
#include <mutex>
#include <utility>

#include "sanitizers/core/log.h"
#include "service/store/blob_store.h"
#include "service/store/item_store.h"

namespace mugai {
namespace {

namespace fs = std::filesystem;

constexpr int kBusyTimeoutMs = 5000;
constexpr size_t kDefaultPageSize = 100;
constexpr size_t kMaxPageSize = 1000;

// Entry i takes the database from user_version i to i + 1 (and says so with
// its own PRAGMA user_version); Migrate() runs the pending ones in one
// transaction. Append only: a released migration never changes.
constexpr const char* kMigrations[] = {
    R"sql(
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
);
CREATE INDEX items_by_outcome ON items (outcome, id);
-- Whether any item still holds a blob, asked on every delete.
CREATE INDEX items_by_original ON items (sha256) WHERE has_original = 1;
PRAGMA user_version = 1;
)sql",
};

[[noreturn]] void ThrowSqlite(sqlite3* db, std::string_view context) {
  throw StoreError("SQLite: " + std::string(context) + ": " + sqlite3_errmsg(db));
}

struct DbCloser {
  void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
};
using Db = std::unique_ptr<sqlite3, DbCloser>;

struct StatementFinalizer {
  void operator()(sqlite3_stmt* stmt) const { sqlite3_finalize(stmt); }
};

// Constant SQL only; values always go through Statement's bindings.
void Exec(sqlite3* db, const char* sql) {
  if (sqlite3_exec(db, sql, nullptr, nullptr, nullptr) != SQLITE_OK) ThrowSqlite(db, sql);
}

class Statement {
 public:
  Statement(sqlite3* db, std::string_view sql) : db_(db) {
    sqlite3_stmt* raw = nullptr;
    int rc = sqlite3_prepare_v2(db, sql.data(), static_cast<int>(sql.size()), &raw, nullptr);
    stmt_.reset(raw);
    if (rc != SQLITE_OK) ThrowSqlite(db, "prepare " + std::string(sql));
  }

  void BindText(int index, std::string_view text) {
    Check(sqlite3_bind_text(stmt_.get(), index, text.data(), static_cast<int>(text.size()),
                            SQLITE_TRANSIENT));
  }
  void BindBlob(int index, std::string_view bytes) {
    Check(sqlite3_bind_blob(stmt_.get(), index, bytes.data(), static_cast<int>(bytes.size()),
                            SQLITE_TRANSIENT));
  }
  void BindInt(int index, int64_t value) {
    Check(sqlite3_bind_int64(stmt_.get(), index, value));
  }

  // True when a row is available, false when the statement is done.
  bool Step() {
    int rc = sqlite3_step(stmt_.get());
    if (rc == SQLITE_ROW) return true;
    if (rc != SQLITE_DONE) ThrowSqlite(db_, sqlite3_sql(stmt_.get()));
    return false;
  }

  std::string Text(int column) const {  // "" for NULL
    const unsigned char* text = sqlite3_column_text(stmt_.get(), column);
    if (text == nullptr) return {};
    return std::string(reinterpret_cast<const char*>(text),
                       static_cast<size_t>(sqlite3_column_bytes(stmt_.get(), column)));
  }
  std::string_view Blob(int column) const {
    const void* data = sqlite3_column_blob(stmt_.get(), column);
    if (data == nullptr) return {};
    return std::string_view(static_cast<const char*>(data),
                            static_cast<size_t>(sqlite3_column_bytes(stmt_.get(), column)));
  }
  int64_t Int(int column) const { return sqlite3_column_int64(stmt_.get(), column); }

 private:
  void Check(int rc) const {
    if (rc != SQLITE_OK) ThrowSqlite(db_, std::string("bind in ") + sqlite3_sql(stmt_.get()));
  }

  sqlite3* db_;
  std::unique_ptr<sqlite3_stmt, StatementFinalizer> stmt_;
};

// BEGIN IMMEDIATE takes the write lock up front, so a competing writer waits
// out the busy timeout instead of failing on a read-to-write upgrade.
// Rolls back unless committed.
class Transaction {
 public:
  explicit Transaction(sqlite3* db) : db_(db) { Exec(db_, "BEGIN IMMEDIATE"); }
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  ~Transaction() {
    if (!committed_) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
  }
  void Commit() {
    Exec(db_, "COMMIT");
    committed_ = true;
  }

 private:
  sqlite3* db_;
  bool committed_ = false;
};

Db OpenDatabase(const fs::path& file) {
  sqlite3* raw = nullptr;
  // Our mutex serializes every use of the connection.
  int rc = sqlite3_open_v2(file.c_str(), &raw,
                           SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                           nullptr);
  Db db(raw);  // allocated even when the open fails
  if (rc != SQLITE_OK) {
    if (!db) throw StoreError("SQLite: cannot open " + file.string() + ": out of memory");
    ThrowSqlite(db.get(), "cannot open " + file.string());
  }
  sqlite3_busy_timeout(db.get(), kBusyTimeoutMs);
  {
    Statement wal(db.get(), "PRAGMA journal_mode = WAL");
    if (!wal.Step() || wal.Text(0) != "wal") {
      throw StoreError("SQLite: cannot enable WAL journaling on " + file.string());
    }
  }
  Exec(db.get(), "PRAGMA synchronous = FULL");
  Exec(db.get(), "PRAGMA foreign_keys = ON");
  return db;
}

void Migrate(sqlite3* db) {
  constexpr int64_t kLatest = std::size(kMigrations);
  Transaction txn(db);
  int64_t version = 0;
  {
    Statement query(db, "PRAGMA user_version");
    if (query.Step()) version = query.Int(0);
  }
  if (version > kLatest) {
    throw StoreError("database schema version " + std::to_string(version) +
                     " is newer than this build supports (" + std::to_string(kLatest) + ")");
  }
  for (int64_t v = version; v < kLatest; ++v) Exec(db, kMigrations[v]);
  txn.Commit();
}

void CollectFindingCodes(const v1::ItemReport& item, std::vector<std::string>* codes) {
  for (const v1::Finding& finding : item.findings()) {
    if (std::find(codes->begin(), codes->end(), finding.code()) == codes->end()) {
      codes->push_back(finding.code());
    }
  }
  for (const v1::ItemReport& child : item.children()) CollectFindingCodes(child, codes);
}

// The finding_codes column: every code in the item tree, first occurrence
// first. Codes are stable dotted names; one that could not round-trip
// through the space-separated form is a bug upstream, and failing is safer
// than recording a wrong list.
std::string JoinFindingCodes(const v1::ItemReport& item) {
  std::vector<std::string> codes;
  CollectFindingCodes(item, &codes);
  std::string joined;
  for (const std::string& code : codes) {
    if (code.empty() || code.find_first_of(" \t\r\n\f\v") != std::string::npos) {
      throw StoreError("invalid finding code \"" + code + "\"");
    }
    if (!joined.empty()) joined += ' ';
    joined += code;
  }
  return joined;
}

// Columns 0-7 of every quarantine query, in the order ReadSummary expects.
constexpr std::string_view kSelectSummary =
    "SELECT id, received_at, name, detected_type, sha256, size, outcome, finding_codes";

v1::QuarantineItem ReadSummary(const Statement& row) {
  v1::QuarantineItem item;
  item.set_id(row.Text(0));
  item.set_received_at(row.Text(1));
  item.set_name(row.Text(2));
  item.set_detected_type(row.Text(3));
  item.set_sha256(row.Text(4));
  item.set_size(static_cast<uint64_t>(row.Int(5)));
  item.set_outcome(row.Text(6));
  std::string codes = row.Text(7);
  for (size_t start = 0; start < codes.size();) {
    size_t end = std::min(codes.find(' ', start), codes.size());
    item.add_finding_codes(codes.substr(start, end - start));
    start = end + 1;
  }
  return item;
}

class SqliteItemStore final : public ItemStore {
 public:
  SqliteItemStore(Db db, BlobStore blobs) : db_(std::move(db)), blobs_(std::move(blobs)) {}

  Stamp Reserve() override;
  void Record(v1::Report* report, const std::string* original) override;
  std::vector<v1::QuarantineItem> ListQuarantined(size_t limit, std::string_view before_id) override;
  std::optional<v1::QuarantineItem> GetQuarantined(std::string_view id) override;
  std::optional<std::string> ReadOriginal(std::string_view id) override;
  bool DeleteQuarantined(std::string_view id) override;

 private:
  Stamp NextStamp();  // requires mutex_

  std::mutex mutex_;
  Db db_;
  BlobStore blobs_;
  // Last id issued: ids from this store strictly increase, even within one
  // second or when the wall clock steps back.
  std::time_t last_second_ = 0;
  uint64_t last_suffix_ = 0;
};

SqliteItemStore::Stamp SqliteItemStore::NextStamp() {
  std::time_t now = std::time(nullptr);
  if (now > last_second_) {
    unsigned char random[6];
    if (RAND_bytes(random, sizeof random) != 1) {
      throw StoreError("RAND_bytes failed: " +
                       std::string(ERR_error_string(ERR_get_error(), nullptr)));
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
  char rfc3339[32];
  char suffix[16];
  std::strftime(compact, sizeof compact, "%Y%m%dT%H%M%SZ", &utc);
  std::strftime(rfc3339, sizeof rfc3339, "%Y-%m-%dT%H:%M:%SZ", &utc);
  std::snprintf(suffix, sizeof suffix, "%012" PRIx64, last_suffix_);
  return {std::string(compact) + "-" + suffix, rfc3339};
}

ItemStore::Stamp SqliteItemStore::Reserve() {
  std::lock_guard lock(mutex_);
  return NextStamp();
}

void SqliteItemStore::Record(v1::Report* report, const std::string* original) {
  const v1::ItemReport& item = report->item();
  std::string finding_codes = JoinFindingCodes(item);
  std::lock_guard lock(mutex_);
  // The blob goes first, so a committed row always has its original. Doing it
  // under the lock keeps a concurrent DeleteQuarantined() of another item
  // with the same original from removing the blob before this row exists.
  if (original != nullptr) blobs_.Put(item.sha256(), *original);

  // The caller's report changes only once the record is committed.
  Stamp stamp = report->item_id().empty() ? NextStamp() : Stamp{report->item_id(), report->received_at()};
  v1::Report stored = *report;
  stored.set_item_id(stamp.id);
  stored.set_received_at(stamp.received_at);
  std::string serialized;
  if (!stored.SerializeToString(&serialized)) throw StoreError("cannot serialize the report");

  Transaction txn(db_.get());
  {
    Statement insert(db_.get(),
                     "INSERT INTO items (id, received_at, name, detected_type, sha256, size, "
                     "outcome, finding_codes, has_original, report) "
                     "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)");
    insert.BindText(1, stamp.id);
    insert.BindText(2, stamp.received_at);
    insert.BindText(3, item.claimed_name());
    insert.BindText(4, item.detected_type());
    insert.BindText(5, item.sha256());
    insert.BindInt(6, static_cast<int64_t>(item.size()));
    insert.BindText(7, stored.outcome());
    insert.BindText(8, finding_codes);
    insert.BindInt(9, original != nullptr ? 1 : 0);
    insert.BindBlob(10, serialized);
    insert.Step();
  }
  txn.Commit();
  *report = std::move(stored);
}

std::vector<v1::QuarantineItem> SqliteItemStore::ListQuarantined(size_t limit,
                                                                 std::string_view before_id) {
  if (limit == 0) limit = kDefaultPageSize;
  limit = std::min(limit, kMaxPageSize);
  // Two statements rather than "(?1 = '' OR id < ?1)", which would keep
  // SQLite from seeking the (outcome, id) index to the page start.
  std::string sql(kSelectSummary);
  sql += before_id.empty()
             ? " FROM items WHERE outcome = 'quarantined' ORDER BY id DESC LIMIT ?1"
             : " FROM items WHERE outcome = 'quarantined' AND id < ?2 ORDER BY id DESC LIMIT ?1";
  std::lock_guard lock(mutex_);
  Statement query(db_.get(), sql);
  query.BindInt(1, static_cast<int64_t>(limit));
  if (!before_id.empty()) query.BindText(2, before_id);
  std::vector<v1::QuarantineItem> items;
  while (query.Step()) items.push_back(ReadSummary(query));
  return items;
}

std::optional<v1::QuarantineItem> SqliteItemStore::GetQuarantined(std::string_view id) {
  std::string sql(kSelectSummary);
  sql += ", report FROM items WHERE id = ?1 AND outcome = 'quarantined'";
  std::lock_guard lock(mutex_);
  Statement query(db_.get(), sql);
  query.BindText(1, id);
  if (!query.Step()) return std::nullopt;
  v1::QuarantineItem item = ReadSummary(query);
  std::string_view report = query.Blob(8);
  if (!item.mutable_report()->ParseFromArray(report.data(), static_cast<int>(report.size()))) {
    throw StoreError("stored report of item " + item.id() + " is corrupt");
  }
  return item;
}

std::optional<std::string> SqliteItemStore::ReadOriginal(std::string_view id) {
  // Under the lock so a concurrent delete cannot unlink the blob mid-read.
  std::lock_guard lock(mutex_);
  Statement query(db_.get(), "SELECT sha256 FROM items WHERE id = ?1 AND has_original = 1");
  query.BindText(1, id);
  if (!query.Step()) return std::nullopt;
  std::string sha256 = query.Text(0);
  std::optional<std::string> bytes = blobs_.Get(sha256);
  if (!bytes) {
    throw StoreError("original of item " + std::string(id) + " (sha256 " + sha256 +
                     ") is missing from the blob store");
  }
  return bytes;
}

bool SqliteItemStore::DeleteQuarantined(std::string_view id) {
  std::lock_guard lock(mutex_);
  std::string unreferenced_blob;
  {
    Transaction txn(db_.get());
    std::string sha256;
    bool had_original = false;
    {
      Statement remove(db_.get(),
                       "DELETE FROM items WHERE id = ?1 AND outcome = 'quarantined' "
                       "RETURNING sha256, has_original");
      remove.BindText(1, id);
      if (!remove.Step()) return false;
      sha256 = remove.Text(0);
      had_original = remove.Int(1) != 0;
    }
    if (had_original) {
      Statement shared(db_.get(),
                       "SELECT 1 FROM items WHERE sha256 = ?1 AND has_original = 1 LIMIT 1");
      shared.BindText(1, sha256);
      if (!shared.Step()) unreferenced_blob = std::move(sha256);
    }
    txn.Commit();
  }
  // After the commit: a crash in between leaves an orphaned blob, which is
  // harmless, never a row without its original. The item is gone either way,
  // so a failure here is reported to the operator, not to the caller.
  if (!unreferenced_blob.empty()) {
    try {
      blobs_.Remove(unreferenced_blob);
    } catch (const StoreError& e) {
      LogError("item " + std::string(id) + " deleted but its original was not: " + e.what());
    }
  }
  return true;
}

}  // namespace

std::unique_ptr<ItemStore> ItemStore::Open(const fs::path& data_dir) {
  EnsurePrivateDirectory(data_dir);
  BlobStore blobs(data_dir / "blobs");
  Db db = OpenDatabase(data_dir / "mugai.db");
  Migrate(db.get());
  return std::make_unique<SqliteItemStore>(std::move(db), std::move(blobs));
}

}  // namespace mugai
