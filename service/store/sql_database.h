// The little SQL the item store needs, over SQLite or PostgreSQL, so that
// the store's logic (sql_item_store.cc) is written once.
//
// Statements are written in the SQL both speak, with $1..$n placeholders;
// values are always bound, never spliced into the text. Results are
// fetched whole. Where the two differ (schema types, the version marker,
// locking the audit chain) the store asks dialect().
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "service/store/item_store.h"  // StoreError

namespace mugai {

// A value bound to a placeholder. Text must be valid UTF-8 without NUL;
// Bytes is anything (a BLOB / bytea).
struct SqlBytes {
  std::string_view bytes;
};
using SqlValue = std::variant<std::nullptr_t, int64_t, std::string_view, SqlBytes>;

// A whole result: rows of cells, each the column's bytes (text as UTF-8,
// integers in decimal, BLOB / bytea raw) or nullopt for NULL.
class SqlRows {
 public:
  using Row = std::vector<std::optional<std::string>>;
  explicit SqlRows(std::vector<Row> rows = {}) : rows_(std::move(rows)) {}

  size_t size() const { return rows_.size(); }
  bool empty() const { return rows_.empty(); }
  bool IsNull(size_t row, size_t column) const { return !rows_.at(row).at(column).has_value(); }
  // "" for NULL.
  const std::string& Text(size_t row, size_t column) const;
  // 0 for NULL; StoreError when the cell is not an integer.
  int64_t Int(size_t row, size_t column) const;

 private:
  std::vector<Row> rows_;
};

// One connection inside one transaction.
class SqlSession {
 public:
  virtual ~SqlSession() = default;
  // Runs one statement. Throws StoreError with the database's message.
  virtual SqlRows Query(std::string_view sql, const std::vector<SqlValue>& params = {}) = 0;
  // Serializes appends to the audit chain across connections and processes
  // until the transaction ends (SQLite: the write lock already does;
  // PostgreSQL: a transaction-scoped advisory lock).
  virtual void LockAuditChain() = 0;
};

class SqlDatabase {
 public:
  enum class Dialect { kSqlite, kPostgres };

  virtual ~SqlDatabase() = default;
  virtual Dialect dialect() const = 0;

  // Runs `work` in one transaction on one connection: committed when it
  // returns, rolled back when it throws (the exception propagates). The
  // transaction writes from its first statement (SQLite: BEGIN IMMEDIATE)
  // so concurrent writers queue instead of failing on an upgrade; on
  // PostgreSQL a serialization failure or a lost connection is retried a
  // few times with a fresh connection, so `work` must be repeatable.
  virtual void Transact(const std::function<void(SqlSession&)>& work) = 0;

  // The schema version the database is at (0 when new), read and set
  // inside a Transact.
  virtual int64_t SchemaVersion(SqlSession& session) = 0;
  virtual void SetSchemaVersion(SqlSession& session, int64_t version) = 0;
};

// <file>, WAL, synchronous=FULL; one connection behind a mutex.
std::unique_ptr<SqlDatabase> OpenSqliteDatabase(const std::filesystem::path& file);
// A pool of `connections` libpq connections to `conninfo`.
std::unique_ptr<SqlDatabase> OpenPostgresDatabase(const std::string& conninfo, unsigned connections);

}  // namespace mugai
