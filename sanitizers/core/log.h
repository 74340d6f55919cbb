// Operator-readable logs on stderr, one line per event:
//   2026-12-01T08:20:00Z mugaid[1234] WARN message
// Thread-safe; each line is written with a single write(2).
#pragma once

#include <string>
#include <string_view>

namespace mugai {

enum class LogLevel { kInfo, kWarn, kError };

// Sets the program name shown in every line (default "mugai").
void SetLogProgram(std::string_view name);

void Log(LogLevel level, std::string_view message);

inline void LogInfo(std::string_view message) { Log(LogLevel::kInfo, message); }
inline void LogWarn(std::string_view message) { Log(LogLevel::kWarn, message); }
inline void LogError(std::string_view message) { Log(LogLevel::kError, message); }

// "what: " and the text of the current errno, for log lines and reasons.
std::string ErrnoText(std::string_view what);

}  // namespace mugai
