// Table: aligned text columns for faasctl's human output.
//
//   Table t({"NAME", "VERSION"});
//   t.AddRow({"hello", "3"});
//   out << t.Render();   // "NAME   VERSION\nhello  3\n"
//
// Columns are left-aligned, separated by two spaces, without trailing spaces. Widths count
// UTF-8 code points, so "…" is one column wide. Value type; not thread-safe.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace faas::cli {

class Table {
 public:
  explicit Table(std::vector<std::string> headers);

  // A row shorter than the header is padded with empty cells; extra cells are kept and get
  // their own (headerless) columns.
  void AddRow(std::vector<std::string> cells);
  std::size_t RowCount() const { return rows_.size(); }
  // Header line plus one line per row, each ending in '\n'.
  std::string Render() const;

 private:
  std::vector<std::string> headers_;
  std::vector<std::vector<std::string>> rows_;
};

// Number of UTF-8 code points in `s` (continuation bytes are not counted).
std::size_t DisplayWidth(std::string_view s);

}  // namespace faas::cli
