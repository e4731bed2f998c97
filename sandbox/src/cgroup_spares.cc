// The spare pool (CgroupRoot::KeepSpares): a refill thread keeps empty instance groups ready at
// each level, so that starting an instance does not wait for mkdir and the limit writes.
#include <algorithm>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>

#include "faas/base/log.h"
#include "faas/sandbox/cgroup.h"

#include "cgroup_internal.h"

namespace faas::sandbox {

void CgroupRoot::KeepSpares(std::size_t n, const CgroupLimits& base) {
  if (spares_ != nullptr) {  // stop the old refill thread; its spares are removed below
    {
      std::lock_guard lock(spares_->mu);
      spares_->stop = true;
    }
    spares_->wake.notify_all();
    spares_->thread.join();
    spares_.reset();
  }
  if (n == 0) {
    return;
  }
  spares_ = std::make_unique<Spares>();
  spares_->want = n;
  spares_->base = base;
  Spares* sp = spares_.get();
  sp->levels[nullptr];  // function levels join on their first TakeInstance
  sp->thread = std::thread([this, sp] {
    static auto log = log::Get("sandbox");
    std::unique_lock lock(sp->mu);
    bool failing = false;
    while (!sp->stop) {
      // The first level short of spares (a function level only while it is alive). The `want`
      // spares are shared out among the function levels that have started an instance (at
      // least one each), so spares grow with the functions in use, not with those deployed;
      // the top level, used only by probes and fallbacks, keeps at most two.
      const FunctionCgroup* key = nullptr;
      std::shared_ptr<FunctionCgroup> function;
      bool found = false;
      const std::size_t functions = sp->levels.size() - sp->levels.count(nullptr);
      const std::size_t per_function =
          std::max<std::size_t>(1, sp->want / std::max<std::size_t>(1, functions));
      for (auto& [k, level] : sp->levels) {
        const std::size_t target = k == nullptr ? std::min<std::size_t>(sp->want, 2) : per_function;
        if (level.ready.size() >= target) {
          continue;
        }
        if (k != nullptr && !(function = level.function.lock())) {
          continue;
        }
        key = k;
        found = true;
        break;
      }
      if (!found) {
        sp->wake.wait(lock);
        continue;
      }
      lock.unlock();
      auto made =
          CreateInstance("i-" + std::to_string(next_leaf_.fetch_add(1)), sp->base, function);
      lock.lock();
      if (made.ok()) {
        (*made)->parent_.reset();  // its level's destructor drops it (DropSpares)
        sp->levels[key].ready.push_back(std::move(*made));  // held: the level is still there
      } else if (!failing) {  // once per failure streak; TakeInstance still creates on demand
        FAAS_LOG(log, warn, "cgroup.spare_failed", {"error", made.status().ToString()});
      }
      failing = !made.ok();
      // Maybe the last holder of that level: let it go without our lock (DropSpares takes it).
      lock.unlock();
      function.reset();
      lock.lock();
      if (failing) {
        sp->wake.wait_for(lock, std::chrono::seconds(1));
      }
    }
  });
}

std::size_t CgroupRoot::SpareCount(const FunctionCgroup* function) const {
  if (spares_ == nullptr) {
    return 0;
  }
  std::lock_guard lock(spares_->mu);
  auto it = spares_->levels.find(function);
  return it == spares_->levels.end() ? 0 : it->second.ready.size();
}

void CgroupRoot::DropSpares(const FunctionCgroup* function) {
  if (spares_ == nullptr) {
    return;
  }
  std::deque<std::unique_ptr<InstanceCgroup>> dropped;
  {
    std::lock_guard lock(spares_->mu);
    auto it = spares_->levels.find(function);
    if (it != spares_->levels.end()) {
      dropped = std::move(it->second.ready);
      spares_->levels.erase(it);
    }
  }
  // Removed here, before the level's own directories.
}

Result<std::unique_ptr<InstanceCgroup>> CgroupRoot::TakeInstance(
    const CgroupLimits& limits, const std::shared_ptr<FunctionCgroup>& function) {
  if (spares_ != nullptr) {
    std::unique_ptr<InstanceCgroup> spare;
    CgroupLimits base;
    {
      std::lock_guard lock(spares_->mu);
      auto& level = spares_->levels[function.get()];
      if (function != nullptr && level.function.expired()) {
        level.function = function;  // the refill thread keeps this level stocked from now on
      }
      if (!level.ready.empty()) {
        spare = std::move(level.ready.front());
        level.ready.pop_front();
        base = spares_->base;
      }
    }
    spares_->wake.notify_one();
    if (spare != nullptr) {
      spare->parent_ = function;
      if (mode_ == CgroupMode::kV1 || enforces_limits_) {  // else there is nothing to set
        FAAS_RETURN_IF_ERROR(spare->SetLimits(base, limits));
      }
      return spare;
    }
  }
  return CreateInstance("i-" + std::to_string(next_leaf_.fetch_add(1)), limits, function);
}

}  // namespace faas::sandbox
