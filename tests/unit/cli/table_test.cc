#include "faas/cli/table.h"

#include <gtest/gtest.h>

namespace faas::cli {
namespace {

TEST(Table, AlignsColumnsToTheWidestCell) {
  Table t({"NAME", "VERSION", "MEMORY"});
  t.AddRow({"hello", "3", "128 MiB"});
  t.AddRow({"a-much-longer-name", "12", "1024 MiB"});
  EXPECT_EQ(t.Render(),
            "NAME                VERSION  MEMORY\n"
            "hello               3        128 MiB\n"
            "a-much-longer-name  12       1024 MiB\n");
}

TEST(Table, HeaderOnlyWhenEmpty) {
  Table t({"NAME", "VERSION"});
  EXPECT_EQ(t.RowCount(), 0u);
  EXPECT_EQ(t.Render(), "NAME  VERSION\n");
}

TEST(Table, ShortRowsArePaddedAndNoTrailingSpaces) {
  Table t({"VERSION", "LATEST"});
  t.AddRow({"1"});
  t.AddRow({"2", "*"});
  EXPECT_EQ(t.Render(),
            "VERSION  LATEST\n"
            "1\n"
            "2        *\n");
}

TEST(Table, CountsUtf8CodePointsNotBytes) {
  Table t({"H", "X"});
  t.AddRow({"ab\u2026", "1"});  // "…" is 3 bytes, 1 column
  EXPECT_EQ(t.Render(),
            "H    X\n"
            "ab\u2026  1\n");
  EXPECT_EQ(DisplayWidth("ab\u2026"), 3u);
}

}  // namespace
}  // namespace faas::cli
