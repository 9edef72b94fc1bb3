// SPDX-License-Identifier: Apache-2.0
// What a layer above the runtime (the tenant registry) holds of it: the
// runtime's end, announced. The runtime knows nothing of that layer; the
// layer registers what it must do when the runtime ends (stop its pump,
// revoke its tenants, let go of the drain, never touch the runtime again),
// and ~Runtime runs it first, while every part of the runtime is whole.
// This is the only call from the runtime into a layer above; the drain
// itself is pulled (RuntimeInternals::drain).
#pragma once

#include <algorithm>
#include <functional>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

namespace megaring::detail {

class RuntimeLink {
 public:
  // `hook` runs once, in ~Runtime, on the destroying thread. It holds its
  // owner weakly (an owner destroyed first is skipped): the link keeps no
  // layer above alive. Hooks of owners that are gone are dropped here.
  template <class Owner>
  void on_end(const std::shared_ptr<Owner>& owner, void (Owner::*hook)()) {
    std::weak_ptr<Owner> weak = owner;
    std::lock_guard<std::mutex> lock(mutex_);
    hooks_.erase(std::remove_if(hooks_.begin(), hooks_.end(),
                                [](const Hook& h) { return h.owner.expired(); }),
                 hooks_.end());
    hooks_.push_back(Hook{weak, [weak, hook] {
                            if (auto o = weak.lock()) ((*o).*hook)();
                          }});
  }
  // ~Runtime: each owner's hook, then never again.
  void end() noexcept {
    std::vector<Hook> hooks;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      hooks.swap(hooks_);
    }
    for (Hook& h : hooks) {
      try {
        h.run();
      } catch (...) {  // a hook that cannot finish must not stop the runtime's end
      }
    }
  }

 private:
  struct Hook {
    std::weak_ptr<void> owner;  // to drop the hooks of owners that are gone
    std::function<void()> run;
  };
  std::mutex mutex_;
  std::vector<Hook> hooks_;
};

}  // namespace megaring::detail
