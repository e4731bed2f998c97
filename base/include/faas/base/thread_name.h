#pragma once
// Thread names, as top -H, perf and /proc/<pid>/task/<tid>/comm show them.
#include <pthread.h>

#include <algorithm>
#include <string_view>

namespace faas {

// Names the calling thread `name`, cut to the kernel's 15 bytes. Best effort.
inline void NameThisThread(std::string_view name) {
  char buf[16] = {};
  name.copy(buf, std::min<std::size_t>(name.size(), sizeof buf - 1));
  ::pthread_setname_np(::pthread_self(), buf);
}

}  // namespace faas
