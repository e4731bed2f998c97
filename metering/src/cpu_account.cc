#include "faas/metering/cpu_account.h"

#include <algorithm>

namespace faas::metering {

void CpuAccount::Ready(ns ready, std::optional<ns> jailed) {
  init_ = jailed ? std::max(ready - *jailed, ns(0)) : ns(0);
  platform_ = std::max(ready - init_, ns(0));
  last_ = ready;
  ready_ = true;
}

void CpuAccount::InvocationStarts(ns now) {
  // A cold start's first invocation is charged from the moment the instance was ready, like a
  // warm one: what came before is the platform's start-up or the function's init.
  if (now > last_) {
    background_ += now - last_;
  }
}

CpuAccount::ns CpuAccount::TakeBackground(std::optional<ns> final) {
  if (final && ready_ && *final > last_) {
    background_ += *final - last_;
    last_ = *final;
  }
  const ns take = background_;
  background_ = ns(0);
  return take;
}

}  // namespace faas::metering
