#include "faas/cli/table.h"

#include <algorithm>
#include <utility>

namespace faas::cli {

std::size_t DisplayWidth(std::string_view s) {
  std::size_t n = 0;
  for (char c : s) {
    // 0b10xxxxxx bytes continue a code point.
    if ((static_cast<unsigned char>(c) & 0xC0U) != 0x80U) {
      ++n;
    }
  }
  return n;
}

Table::Table(std::vector<std::string> headers) : headers_(std::move(headers)) {}

void Table::AddRow(std::vector<std::string> cells) {
  if (cells.size() < headers_.size()) {
    cells.resize(headers_.size());
  }
  rows_.push_back(std::move(cells));
}

std::string Table::Render() const {
  std::size_t columns = headers_.size();
  for (const auto& row : rows_) {
    columns = std::max(columns, row.size());
  }
  std::vector<std::size_t> widths(columns, 0);
  auto measure = [&widths](const std::vector<std::string>& cells) {
    for (std::size_t i = 0; i < cells.size(); ++i) {
      widths[i] = std::max(widths[i], DisplayWidth(cells[i]));
    }
  };
  measure(headers_);
  for (const auto& row : rows_) {
    measure(row);
  }

  std::string out;
  auto render_line = [&](const std::vector<std::string>& cells) {
    std::string line;
    for (std::size_t i = 0; i < cells.size(); ++i) {
      if (i > 0) {
        line += "  ";
      }
      line += cells[i];
      if (i + 1 < cells.size()) {
        line.append(widths[i] - DisplayWidth(cells[i]), ' ');
      }
    }
    // Empty trailing cells would leave padding behind.
    while (!line.empty() && line.back() == ' ') {
      line.pop_back();
    }
    out += line;
    out += '\n';
  };
  render_line(headers_);
  for (const auto& row : rows_) {
    render_line(row);
  }
  return out;
}

}  // namespace faas::cli
