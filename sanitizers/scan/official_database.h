// Whether a ClamAV database directory holds an official database (what
// freshclam installs) or only local signatures such as our test ones.
#pragma once

#include <filesystem>

namespace mugai {

inline bool HoldsOfficialDatabase(const std::filesystem::path& directory) {
  for (const char* name : {"main.cvd", "main.cld", "daily.cvd", "daily.cld"}) {
    std::error_code ignored;
    if (std::filesystem::exists(directory / name, ignored)) return true;
  }
  return false;
}

}  // namespace mugai
