// The counters, in memory shared by the tracer process (their only writer) and the addon, which reads
// them at any time without asking the tracer anything.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace interceptor {

// Written only by the tracer thread, read by any: a relaxed load/store pair is enough (no lock prefix).
// Lock-free and address-free, so it works across processes in a shared mapping.
class Counter {
 public:
  void Bump() { v_.store(v_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed); }
  void Set(uint64_t v) { v_.store(v, std::memory_order_relaxed); }
  uint64_t Get() const { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> v_{0};
};
static_assert(std::atomic<uint64_t>::is_always_lock_free, "counters are shared between processes");

// Slots: stops, signals, tracees, one per traced syscall, a rewrite and a missed count per rule, and
// the calls whose path could not be read.
class CounterBlock {
 public:
  CounterBlock() = default;
  CounterBlock(Counter* slots, size_t syscalls, size_t rules) : slots_(slots), syscalls_(syscalls), rules_(rules) {}

  static size_t Bytes(size_t syscalls, size_t rules) { return sizeof(Counter) * (4 + syscalls + 2 * rules); }

  Counter& stops() const { return slots_[0]; }
  Counter& signals() const { return slots_[1]; }
  Counter& tracees() const { return slots_[2]; }
  Counter& unreadable() const { return slots_[3]; }
  Counter& syscall(size_t i) const { return slots_[4 + i]; }
  Counter& rewrite(size_t rule) const { return slots_[4 + syscalls_ + rule]; }
  Counter& missed(size_t rule) const { return slots_[4 + syscalls_ + rules_ + rule]; }

 private:
  Counter* slots_ = nullptr;
  size_t syscalls_ = 0;
  size_t rules_ = 0;
};

}  // namespace interceptor
