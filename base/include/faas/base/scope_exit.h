// ScopeExit: runs a callable when the scope ends, unless Cancel()ed. For one-off cleanup.
//
//   faas::ScopeExit rm([&] { ::unlink(tmp.c_str()); });
#pragma once

#include <utility>

namespace faas {

template <typename F>
class ScopeExit {
 public:
  explicit ScopeExit(F f) : f_(std::move(f)) {}
  ScopeExit(const ScopeExit&) = delete;
  ScopeExit& operator=(const ScopeExit&) = delete;
  ~ScopeExit() {
    if (armed_) {
      f_();
    }
  }
  void Cancel() { armed_ = false; }

 private:
  F f_;
  bool armed_ = true;
};

}  // namespace faas
