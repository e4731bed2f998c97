#pragma once
// What a thread tells the kernel about itself: its name, and how it wants to be scheduled.
#include <chrono>
#include <string_view>

namespace faas {

// Names the calling thread `name`, cut to the kernel's 15 bytes, as top -H, perf and
// /proc/<pid>/task/<tid>/comm show it. Best effort.
void NameThisThread(std::string_view name);

// Asks the kernel to run the calling thread in slices of `slice` (sched_setattr's sched_runtime
// for SCHED_OTHER, honoured by EEVDF from Linux 6.12, clamped to 0.1-100 ms; older kernels
// ignore it). Its share of the CPU is unchanged; a task woken on its CPU waits about that long
// for it instead of up to a scheduler tick (4 ms at HZ=250). For background threads that run in
// bursts, such as the ledger writer (design/0043). Best effort.
void UseShortSlices(std::chrono::microseconds slice);

}  // namespace faas
