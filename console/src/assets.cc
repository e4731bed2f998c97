#include "faas/console/assets.h"

namespace faas::console {

const Asset* FindAsset(std::string_view path) {
  for (const Asset& a : Assets()) {
    if (a.path == path) {
      return &a;
    }
  }
  return nullptr;
}

}  // namespace faas::console
