// What a layer above the runtime (the tenant registry) holds of it: a way to
// know, from below, that the runtime is gone. The runtime calls nothing
// above it; instead ~Runtime ends the link, first, while every part of the
// runtime is whole. A use of the runtime (RuntimeLink::use) holds the end
// back until it finishes, and no use starts after it: a drain pump thread
// that runs beside the runtime's destruction either finishes its pass
// first or never touches the runtime again.
#pragma once

#include <atomic>
#include <mutex>
#include <shared_mutex>

namespace megaring::detail {

class RuntimeLink {
 public:
  // True while the runtime may be used; ~Runtime waits for it to go.
  class Use {
   public:
    explicit operator bool() const { return alive_; }

   private:
    friend class RuntimeLink;
    Use(std::shared_lock<std::shared_mutex> lock, bool alive) : lock_(std::move(lock)), alive_(alive) {}
    std::shared_lock<std::shared_mutex> lock_;
    bool alive_;
  };

  Use use() {
    std::shared_lock<std::shared_mutex> lock(mutex_);
    const bool alive = alive_.load(std::memory_order_relaxed);  // ordered by the lock
    return Use(std::move(lock), alive);
  }
  // A look without holding the runtime: once false, false for good. For
  // callers that must not touch a runtime that is gone, and whose racing
  // with its destruction is the caller's own data race (tenant.hpp).
  // ACQUIRE: pairs with end()'s release.
  bool alive() const { return alive_.load(std::memory_order_acquire); }
  // ~Runtime: waits for every use in progress to finish; none starts after.
  void end() {
    std::unique_lock<std::shared_mutex> lock(mutex_);
    alive_.store(false, std::memory_order_release);  // RELEASE: pairs with alive()
  }

 private:
  std::shared_mutex mutex_;
  std::atomic<bool> alive_{true};
};

}  // namespace megaring::detail
