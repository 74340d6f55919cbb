#include <charconv>

#include "service/store/sql_database.h"

namespace mugai {

const std::string& SqlRows::Text(size_t row, size_t column) const {
  static const std::string kEmpty;
  const std::optional<std::string>& cell = rows_.at(row).at(column);
  return cell ? *cell : kEmpty;
}

int64_t SqlRows::Int(size_t row, size_t column) const {
  const std::optional<std::string>& cell = rows_.at(row).at(column);
  if (!cell) return 0;
  int64_t value = 0;
  const char* end = cell->data() + cell->size();
  auto [parsed_end, error] = std::from_chars(cell->data(), end, value);
  if (error != std::errc() || parsed_end != end || cell->empty()) {
    throw StoreError("database returned \"" + cell->substr(0, 40) + "\" where an integer was expected");
  }
  return value;
}

}  // namespace mugai
