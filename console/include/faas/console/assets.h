// The web console's static files, embedded in faasd at build time (console/CMakeLists.txt):
// HTML pages, CSS, JavaScript and the pinned uPlot chart library with its license.
//
//   if (const faas::console::Asset* a = faas::console::FindAsset("assets/console.css")) {
//     res.headers.emplace_back("Content-Type", std::string(a->content_type));
//     res.body = a->body;
//   }
#pragma once

#include <span>
#include <string_view>

namespace faas::console {

struct Asset {
  std::string_view path;          // under /console/, e.g. "functions.html", "assets/console.css"
  std::string_view content_type;  // by extension, with charset for text
  std::string_view body;          // static storage: valid for the whole process
};

// Every embedded file. Thread-safe (constant data).
std::span<const Asset> Assets();

// The file at `path` (relative to /console/, no leading slash), or nullptr.
const Asset* FindAsset(std::string_view path);

}  // namespace faas::console
