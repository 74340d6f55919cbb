#include "sanitizers/core/log.h"

#include <string.h>
#include <unistd.h>

#include <cerrno>

#include <ctime>
#include <mutex>
#include <string>

namespace mugai {
namespace {

std::mutex g_program_mutex;
std::string g_program = "mugai";

constexpr std::string_view LevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kInfo: return "INFO";
    case LogLevel::kWarn: return "WARN";
    case LogLevel::kError: return "ERROR";
  }
  return "?";
}

}  // namespace

void SetLogProgram(std::string_view name) {
  std::lock_guard lock(g_program_mutex);
  g_program = name;
}

void Log(LogLevel level, std::string_view message) {
  char stamp[32];
  std::time_t now = std::time(nullptr);
  std::tm utc;
  gmtime_r(&now, &utc);
  std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", &utc);
  std::string line;
  {
    std::lock_guard lock(g_program_mutex);
    line = std::string(stamp) + " " + g_program + "[" + std::to_string(getpid()) + "] ";
  }
  line += LevelName(level);
  line += ' ';
  line += message;
  line += '\n';
  // One write per line so concurrent lines never interleave.
  [[maybe_unused]] ssize_t ignored = ::write(STDERR_FILENO, line.data(), line.size());
}

std::string ErrnoText(std::string_view what) { return std::string(what) + ": " + strerror(errno); }

}  // namespace mugai
