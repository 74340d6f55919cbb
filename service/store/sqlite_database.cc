// SqlDatabase on SQLite: one connection behind a mutex, so every
// transaction runs alone in this process; BEGIN IMMEDIATE and the busy
// timeout queue another process's writers behind it.
#include <sqlite3.h>

#include <mutex>

#include "service/store/sql_database.h"

namespace mugai {
namespace {

namespace fs = std::filesystem;

constexpr int kBusyTimeoutMs = 5000;

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
using Statement = std::unique_ptr<sqlite3_stmt, StatementFinalizer>;

// Constant SQL only; values always go through SqliteSession::Query.
void Exec(sqlite3* db, const char* sql) {
  if (sqlite3_exec(db, sql, nullptr, nullptr, nullptr) != SQLITE_OK) ThrowSqlite(db, sql);
}

bool IsBlank(std::string_view s) { return s.find_first_not_of(" \t\r\n") == std::string_view::npos; }

class SqliteSession final : public SqlSession {
 public:
  explicit SqliteSession(sqlite3* db) : db_(db) {}

  SqlRows Query(std::string_view sql, const std::vector<SqlValue>& params) override {
    sqlite3_stmt* raw = nullptr;
    const char* tail = nullptr;
    int rc = sqlite3_prepare_v2(db_, sql.data(), static_cast<int>(sql.size()), &raw, &tail);
    Statement stmt(raw);
    if (rc != SQLITE_OK) ThrowSqlite(db_, "prepare " + std::string(sql));
    if (!stmt || !IsBlank(std::string_view(tail, sql.data() + sql.size() - tail))) {
      throw StoreError("SQLite: not exactly one statement: " + std::string(sql));
    }
    if (sqlite3_bind_parameter_count(stmt.get()) != static_cast<int>(params.size())) {
      throw StoreError("SQLite: " + std::to_string(params.size()) + " values for the placeholders of " +
                       std::string(sql));
    }
    for (size_t i = 0; i < params.size(); ++i) Bind(stmt.get(), i + 1, params[i]);

    std::vector<SqlRows::Row> rows;
    const int columns = sqlite3_column_count(stmt.get());
    for (;;) {
      rc = sqlite3_step(stmt.get());
      if (rc == SQLITE_DONE) break;
      if (rc != SQLITE_ROW) ThrowSqlite(db_, std::string(sql));
      SqlRows::Row& row = rows.emplace_back();
      row.reserve(static_cast<size_t>(columns));
      for (int c = 0; c < columns; ++c) {
        int type = sqlite3_column_type(stmt.get(), c);
        if (type == SQLITE_NULL) {
          row.emplace_back(std::nullopt);
          continue;
        }
        // Blob first, then the byte count, as sqlite3_column_bytes requires.
        const void* data = type == SQLITE_BLOB ? sqlite3_column_blob(stmt.get(), c)
                                               : static_cast<const void*>(sqlite3_column_text(stmt.get(), c));
        size_t size = static_cast<size_t>(sqlite3_column_bytes(stmt.get(), c));
        row.emplace_back(data == nullptr ? std::string() : std::string(static_cast<const char*>(data), size));
      }
    }
    return SqlRows(std::move(rows));
  }

  // The write lock BEGIN IMMEDIATE took already serializes the chain.
  void LockAuditChain() override {}

 private:
  void Bind(sqlite3_stmt* stmt, size_t number, const SqlValue& value) {
    std::string name = "$" + std::to_string(number);
    int index = sqlite3_bind_parameter_index(stmt, name.c_str());
    if (index == 0) throw StoreError("SQLite: placeholder " + name + " missing in " + sqlite3_sql(stmt));
    int rc = SQLITE_OK;
    if (std::holds_alternative<std::nullptr_t>(value)) {
      rc = sqlite3_bind_null(stmt, index);
    } else if (const int64_t* integer = std::get_if<int64_t>(&value)) {
      rc = sqlite3_bind_int64(stmt, index, *integer);
    } else if (const std::string_view* text = std::get_if<std::string_view>(&value)) {
      rc = sqlite3_bind_text64(stmt, index, text->data(), text->size(), SQLITE_TRANSIENT, SQLITE_UTF8);
    } else {
      std::string_view bytes = std::get<SqlBytes>(value).bytes;
      // A zero-length blob, not NULL, for empty bytes.
      rc = bytes.empty() ? sqlite3_bind_zeroblob(stmt, index, 0)
                         : sqlite3_bind_blob64(stmt, index, bytes.data(), bytes.size(), SQLITE_TRANSIENT);
    }
    if (rc != SQLITE_OK) ThrowSqlite(db_, "bind " + name + " in " + sqlite3_sql(stmt));
  }

  sqlite3* db_;
};

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

class SqliteDatabase final : public SqlDatabase {
 public:
  explicit SqliteDatabase(Db db) : db_(std::move(db)) {}

  Dialect dialect() const override { return Dialect::kSqlite; }

  void Transact(const std::function<void(SqlSession&)>& work) override {
    std::lock_guard lock(mutex_);
    Transaction transaction(db_.get());
    SqliteSession session(db_.get());
    work(session);
    transaction.Commit();
  }

  int64_t SchemaVersion(SqlSession& session) override {
    return session.Query("PRAGMA user_version").Int(0, 0);
  }
  void SetSchemaVersion(SqlSession& session, int64_t version) override {
    // A PRAGMA takes no placeholders; the version is our own integer.
    session.Query("PRAGMA user_version = " + std::to_string(version));
  }

 private:
  std::mutex mutex_;
  Db db_;
};

}  // namespace

std::unique_ptr<SqlDatabase> OpenSqliteDatabase(const fs::path& file) {
  sqlite3* raw = nullptr;
  // Our mutex serializes every use of the connection.
  int rc = sqlite3_open_v2(file.c_str(), &raw, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                           nullptr);
  Db db(raw);  // allocated even when the open fails
  if (rc != SQLITE_OK) {
    if (!db) throw StoreError("SQLite: cannot open " + file.string() + ": out of memory");
    ThrowSqlite(db.get(), "cannot open " + file.string());
  }
  sqlite3_busy_timeout(db.get(), kBusyTimeoutMs);
  SqliteSession session(db.get());
  if (session.Query("PRAGMA journal_mode = WAL", {}).Text(0, 0) != "wal") {
    throw StoreError("SQLite: cannot enable WAL journaling on " + file.string());
  }
  Exec(db.get(), "PRAGMA synchronous = FULL");
  Exec(db.get(), "PRAGMA foreign_keys = ON");
  return std::make_unique<SqliteDatabase>(std::move(db));
}

}  // namespace mugai
