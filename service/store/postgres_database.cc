// The SQL layer (sql_database.h) over libpq: a pool of connections, each
// transaction on one of them at READ COMMITTED.
//
// READ COMMITTED, not REPEATABLE READ, because the store serializes its
// read-then-write sections with transaction-scoped advisory locks: every
// statement after the lock is granted sees what the previous holder
// committed. A snapshot taken before the lock (REPEATABLE READ takes it at
// the first statement, i.e. the lock itself) would read a stale end of the
// audit chain.
#include <libpq-fe.h>

#include <chrono>
#include <condition_variable>
#include <limits>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "sanitizers/core/log.h"
#include "service/store/sql_database.h"

namespace mugai {
namespace {

struct PgConnDeleter {
  void operator()(PGconn* connection) const { PQfinish(connection); }
};
using PgConnection = std::unique_ptr<PGconn, PgConnDeleter>;

struct PgResultDeleter {
  void operator()(PGresult* result) const { PQclear(result); }
};
using PgResult = std::unique_ptr<PGresult, PgResultDeleter>;

struct PgMemoryDeleter {
  void operator()(void* memory) const { PQfreemem(memory); }
};

struct PgConninfoDeleter {
  void operator()(PQconninfoOption* options) const { PQconninfoFree(options); }
};

// pg_type OIDs (server/catalog/pg_type_d.h is not in libpq-dev).
constexpr Oid kByteaOid = 17;

// Advisory lock keys: "mugai" in ASCII, then what the lock guards. Any
// other user of advisory locks in the same database must avoid them.
constexpr int64_t kAuditChainLock = 0x6d75676169'0001;
constexpr int64_t kMigrationLock = 0x6d75676169'0002;

constexpr int kTransactionAttempts = 5;

// The server chose this transaction as a serialization or deadlock
// victim: a fresh attempt can succeed. (So can one after the connection
// broke before COMMIT: the server rolled the transaction back.)
bool IsRetryableState(std::string_view sqlstate) { return sqlstate == "40001" || sqlstate == "40P01"; }

// user@host:port/dbname; never the password.
std::string ServerName(PGconn* connection) {
  auto field = [](const char* value) { return std::string(value != nullptr ? value : ""); };
  return field(PQuser(connection)) + "@" + field(PQhost(connection)) + ":" + field(PQport(connection)) + "/" +
         field(PQdb(connection));
}

// The first line of a statement, short: enough to find it in the code.
std::string StatementHead(std::string_view sql) {
  size_t begin = sql.find_first_not_of(" \t\n");
  if (begin == std::string_view::npos) return "";
  std::string_view head = sql.substr(begin, sql.find('\n', begin) - begin);
  constexpr size_t kMax = 80;
  return head.size() > kMax ? std::string(head.substr(0, kMax)) + "..." : std::string(head);
}

// libpq's messages span lines (DETAIL, HINT, CONTEXT); our log has one
// line per event.
std::string OneLine(const char* message) {
  std::string text;
  for (const char* c = message != nullptr ? message : ""; *c != '\0'; ++c) {
    bool space = *c == '\n' || *c == '\t' || *c == ' ';
    if (!space) {
      text += *c;
    } else if (!text.empty() && text.back() != ' ') {
      text += ' ';
    }
  }
  if (!text.empty() && text.back() == ' ') text.pop_back();
  return text;
}

// The server's warnings into our log; its notices ("relation already
// exists, skipping") are dropped instead of going raw to stderr.
void LogServerWarning(void* /*unused*/, const PGresult* message) {
  const char* severity = PQresultErrorField(message, PG_DIAG_SEVERITY_NONLOCALIZED);
  if (severity != nullptr && std::string_view(severity) == "WARNING") {
    LogWarn("PostgreSQL: " + OneLine(PQresultErrorMessage(message)));
  }
}

class PostgresSession final : public SqlSession {
 public:
  explicit PostgresSession(PGconn* connection) : connection_(connection) {}

  SqlRows Query(std::string_view sql, const std::vector<SqlValue>& params) override {
    std::vector<std::string> texts(params.size());
    std::vector<const char*> values(params.size(), nullptr);
    std::vector<int> lengths(params.size(), 0);
    std::vector<int> formats(params.size(), 0);
    std::vector<Oid> types(params.size(), 0);  // 0: the server infers it from the statement
    for (size_t i = 0; i < params.size(); ++i) {
      const SqlValue& param = params[i];
      if (const auto* number = std::get_if<int64_t>(&param)) {
        texts[i] = std::to_string(*number);
        values[i] = texts[i].c_str();
      } else if (const auto* text = std::get_if<std::string_view>(&param)) {
        // libpq reads text parameters up to the first NUL: refuse rather
        // than store a silently shortened value.
        if (text->find('\0') != std::string_view::npos) {
          throw StoreError("PostgreSQL " + ServerName(connection_) + ": " + StatementHead(sql) + ": parameter $" +
                           std::to_string(i + 1) + " is text containing NUL");
        }
        texts[i] = *text;
        values[i] = texts[i].c_str();
      } else if (const auto* bytes = std::get_if<SqlBytes>(&param)) {
        if (bytes->bytes.size() > static_cast<size_t>(std::numeric_limits<int>::max())) {
          throw StoreError("PostgreSQL " + ServerName(connection_) + ": " + StatementHead(sql) + ": parameter $" +
                           std::to_string(i + 1) + " is larger than libpq can send");
        }
        // Binary format: the bytes go as they are, no escaping. libpq takes
        // a null pointer for NULL, so empty bytes point somewhere.
        values[i] = bytes->bytes.empty() ? "" : bytes->bytes.data();
        lengths[i] = static_cast<int>(bytes->bytes.size());
        formats[i] = 1;
        types[i] = kByteaOid;
      }
    }
    std::string statement(sql);
    PgResult result(PQexecParams(connection_, statement.c_str(), static_cast<int>(params.size()), types.data(),
                                 values.data(), lengths.data(), formats.data(), /*resultFormat=*/0));
    ExecStatusType status = result ? PQresultStatus(result.get()) : PGRES_FATAL_ERROR;
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
      const char* sqlstate = result ? PQresultErrorField(result.get(), PG_DIAG_SQLSTATE) : nullptr;
      if (PQstatus(connection_) == CONNECTION_BAD) {
        broken_ = true;
        retryable_ = true;
      } else if (sqlstate != nullptr && IsRetryableState(sqlstate)) {
        retryable_ = true;
      }
      std::string message = OneLine(result ? PQresultErrorMessage(result.get()) : PQerrorMessage(connection_));
      throw StoreError("PostgreSQL " + ServerName(connection_) + ": " + StatementHead(sql) + ": " +
                       (message.empty() ? "failed without a message" : message) +
                       (sqlstate != nullptr ? std::string(" (SQLSTATE ") + sqlstate + ")" : ""));
    }
    return ToRows(result.get());
  }

  void LockAuditChain() override { Query("SELECT pg_advisory_xact_lock($1)", {kAuditChainLock}); }

  PGconn* connection() const { return connection_; }
  // Whether the last failure leaves the connection unusable.
  bool broken() const { return broken_; }
  // Whether a failure in this transaction is one a fresh attempt can cure.
  // Kept here, not in the exception, so it survives `work` wrapping the
  // StoreError in its own.
  bool retryable() const { return retryable_; }

 private:
  static SqlRows ToRows(PGresult* result) {
    int row_count = PQntuples(result);
    int column_count = PQnfields(result);
    std::vector<SqlRows::Row> rows(row_count, SqlRows::Row(column_count));
    for (int column = 0; column < column_count; ++column) {
      bool bytea = PQftype(result, column) == kByteaOid;
      for (int row = 0; row < row_count; ++row) {
        if (PQgetisnull(result, row, column)) continue;
        const char* text = PQgetvalue(result, row, column);
        int text_length = PQgetlength(result, row, column);
        if (!bytea) {
          rows[row][column].emplace(text, text_length);
          continue;
        }
        if (std::string_view(text, text_length) == "\\x") {  // empty; PQunescapeBytea may malloc(0)
          rows[row][column].emplace();
          continue;
        }
        size_t length = 0;
        std::unique_ptr<unsigned char, PgMemoryDeleter> raw(
            PQunescapeBytea(reinterpret_cast<const unsigned char*>(text), &length));
        if (!raw) throw StoreError("PostgreSQL: out of memory decoding a bytea value");
        rows[row][column].emplace(reinterpret_cast<const char*>(raw.get()), length);
      }
    }
    return SqlRows(std::move(rows));
  }

  PGconn* connection_;
  bool broken_ = false;
  bool retryable_ = false;
};

class PostgresDatabase final : public SqlDatabase {
 public:
  PostgresDatabase(std::string conninfo, unsigned connections)
      : conninfo_(std::move(conninfo)), capacity_(connections) {
    // Fail at startup on an unreachable server, not at the first item.
    idle_.push_back(Connect());
    open_ = 1;
  }

  Dialect dialect() const override { return Dialect::kPostgres; }

  void Transact(const std::function<void(SqlSession&)>& work) override {
    std::string last_error;
    for (int attempt = 1; attempt <= kTransactionAttempts; ++attempt) {
      if (attempt > 1) {
        LogWarn("PostgreSQL: retrying a transaction (attempt " + std::to_string(attempt) + " of " +
                std::to_string(kTransactionAttempts) + "): " + last_error);
        std::this_thread::sleep_for(std::chrono::milliseconds(50) * (1 << (attempt - 2)));
      }
      std::optional<Lease> lease;
      try {
        lease.emplace(*this);
      } catch (const StoreError& error) {  // the server restarting, say
        last_error = error.what();
        continue;
      }
      PostgresSession session(lease->connection());
      try {
        session.Query("BEGIN ISOLATION LEVEL READ COMMITTED", {});
        work(session);
      } catch (const std::exception& error) {
        if (!session.broken()) RollBack(session);
        lease->set_healthy(!session.broken());
        if (!session.retryable()) throw;
        last_error = error.what();
        continue;
      }
      Commit(session, *lease);
      return;
    }
    throw StoreError("PostgreSQL: transaction failed " + std::to_string(kTransactionAttempts) +
                     " times: " + last_error);
  }

  int64_t SchemaVersion(SqlSession& session) override {
    // Two mugaid starting at once on an empty database: the second waits
    // here until the first has migrated and committed, then sees its
    // version. Without the lock both could run CREATE TABLE IF NOT EXISTS
    // concurrently, which PostgreSQL does not make safe.
    session.Query("SELECT pg_advisory_xact_lock($1)", {kMigrationLock});
    session.Query(
        "CREATE TABLE IF NOT EXISTS mugai_schema ("
        "singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton), version bigint NOT NULL)");
    SqlRows rows = session.Query("SELECT version FROM mugai_schema");
    return rows.empty() ? 0 : rows.Int(0, 0);
  }

  void SetSchemaVersion(SqlSession& session, int64_t version) override {
    session.Query(
        "INSERT INTO mugai_schema (singleton, version) VALUES (true, $1) "
        "ON CONFLICT (singleton) DO UPDATE SET version = EXCLUDED.version",
        {version});
  }

 private:
  // A connection out of the pool for one transaction; back in (or closed,
  // when it broke) at the end of the scope.
  class Lease {
   public:
    explicit Lease(PostgresDatabase& database) : database_(database), connection_(database.Acquire()) {}
    ~Lease() { database_.Release(std::move(connection_), healthy_); }
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;

    PGconn* connection() const { return connection_.get(); }
    void set_healthy(bool healthy) { healthy_ = healthy; }

   private:
    PostgresDatabase& database_;
    PgConnection connection_;
    bool healthy_ = true;
  };

  PgConnection Connect() {
    // The caller's conninfo is expanded last but one so it can override the
    // defaults before it; the client encoding after it is not negotiable
    // (SqlValue text is UTF-8).
    const char* keywords[] = {"connect_timeout", "fallback_application_name", "dbname", "client_encoding", nullptr};
    const char* values[] = {"10", "mugaid", conninfo_.c_str(), "UTF8", nullptr};
    PgConnection connection(PQconnectdbParams(keywords, values, /*expand_dbname=*/1));
    if (!connection) throw StoreError("PostgreSQL: out of memory opening a connection");
    if (PQstatus(connection.get()) != CONNECTION_OK) {
      // libpq's message names the server it tried; the conninfo itself may
      // hold a password and is never shown.
      throw StoreError("cannot connect to PostgreSQL: " + OneLine(PQerrorMessage(connection.get())));
    }
    PQsetNoticeReceiver(connection.get(), LogServerWarning, nullptr);
    return connection;
  }

  PgConnection Acquire() {
    std::unique_lock lock(mutex_);
    available_.wait(lock, [this] { return !idle_.empty() || open_ < capacity_; });
    if (!idle_.empty()) {
      PgConnection connection = std::move(idle_.back());
      idle_.pop_back();
      return connection;
    }
    ++open_;
    lock.unlock();
    try {
      return Connect();
    } catch (...) {
      lock.lock();
      --open_;
      available_.notify_one();
      throw;
    }
  }

  void Release(PgConnection connection, bool healthy) {
    std::lock_guard lock(mutex_);
    // A connection still inside a transaction (its ROLLBACK failed) or
    // broken is closed; the next Acquire opens a fresh one.
    if (healthy && connection && PQstatus(connection.get()) == CONNECTION_OK &&
        PQtransactionStatus(connection.get()) == PQTRANS_IDLE) {
      idle_.push_back(std::move(connection));
      available_.notify_one();
      return;
    }
    connection.reset();
    --open_;
    // One broken connection usually means the server restarted or failed
    // over: the idle ones are dead too, and retrying on each in turn would
    // use up a transaction's attempts.
    open_ -= static_cast<unsigned>(idle_.size());
    idle_.clear();
    available_.notify_all();
  }

  static void RollBack(PostgresSession& session) {
    PgResult result(PQexec(session.connection(), "ROLLBACK"));
  }

  static void Commit(PostgresSession& session, Lease& lease) {
    PgResult result(PQexec(session.connection(), "COMMIT"));
    if (result && PQresultStatus(result.get()) == PGRES_COMMAND_OK &&
        std::string_view(PQcmdStatus(result.get())) == "COMMIT") {
      return;
    }
    bool connected = PQstatus(session.connection()) == CONNECTION_OK;
    lease.set_healthy(connected);
    // An aborted transaction "commits" as ROLLBACK without an error: some
    // statement failed and `work` went on regardless.
    if (result && PQresultStatus(result.get()) == PGRES_COMMAND_OK) {
      throw StoreError("PostgreSQL " + ServerName(session.connection()) +
                       ": the transaction was rolled back: a statement in it had failed");
    }
    std::string message =
        OneLine(result ? PQresultErrorMessage(result.get()) : PQerrorMessage(session.connection()));
    // Not retried: when the connection broke during COMMIT, the server may
    // have committed, and doing the work again could do it twice.
    throw StoreError("PostgreSQL " + ServerName(session.connection()) +
                     (connected ? ": COMMIT failed, the transaction was rolled back: "
                                : ": the connection broke during COMMIT, outcome unknown: ") +
                     message);
  }

  const std::string conninfo_;
  const unsigned capacity_;
  std::mutex mutex_;
  std::condition_variable available_;
  std::vector<PgConnection> idle_;
  unsigned open_ = 0;  // idle and leased
};

}  // namespace

std::unique_ptr<SqlDatabase> OpenPostgresDatabase(const std::string& conninfo, unsigned connections) {
  if (connections == 0) throw StoreError("PostgreSQL: the connection pool needs at least one connection");
  char* error = nullptr;
  std::unique_ptr<PQconninfoOption, PgConninfoDeleter> parsed(PQconninfoParse(conninfo.c_str(), &error));
  std::unique_ptr<char, PgMemoryDeleter> error_owner(error);
  if (!parsed) {
    // libpq's message may quote part of the string, which may be a password.
    throw StoreError("PostgreSQL: the connection string does not parse (not shown: it may hold a password)");
  }
  return std::make_unique<PostgresDatabase>(conninfo, connections);
}

}  // namespace mugai
