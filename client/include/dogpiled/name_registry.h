// dogpile's NameRegistry, in-process: one shared object per identifier.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <type_traits>
#include <unordered_map>
#include <utility>

namespace dogpiled {

// Hands out one object per identifier for as long as anything holds a
// strong reference to it; the creator runs once per identifier and
// lifetime. When the last reference goes, the object is destroyed and its
// slot removed, so the registry holds no memory for idle identifiers (the
// Python original uses a WeakValueDictionary the same way).
//
// The creator runs under the registry's lock, like the original, so it
// must be quick, and must neither call get() on the same registry nor drop
// the last reference to one of its objects.
//
// Thread-safe: get() may be called from any thread at once. Objects it
// returns may outlive the registry.
template <typename T, typename Key = std::string>
class NameRegistry {
 public:
  using Creator = std::function<std::unique_ptr<T>(const Key&)>;

  // Default creator: T(identifier) if T has such a constructor, else T().
  NameRegistry() : NameRegistry(DefaultCreator()) {}
  explicit NameRegistry(Creator creator)
      : state_(std::make_shared<State>(std::move(creator))) {}

  NameRegistry(const NameRegistry&) = delete;
  NameRegistry& operator=(const NameRegistry&) = delete;

  // The object for `identifier`, made now if no live one exists.
  std::shared_ptr<T> get(const Key& identifier) {
    std::lock_guard<std::mutex> lock(state_->mu);
    Slot& slot = state_->slots[identifier];
    if (std::shared_ptr<T> live = slot.object.lock()) {
      return live;
    }
    std::unique_ptr<T> made;
    try {
      made = state_->creator(identifier);
    } catch (...) {
      state_->slots.erase(identifier);
      throw;
    }
    T* raw = made.release();
    // The deleter clears the slot first, so a get() that races with the
    // last release either sees the old object alive or makes a new one.
    std::shared_ptr<T> object(
        raw, [weak = std::weak_ptr<State>(state_), identifier](T* p) {
          if (std::shared_ptr<State> state = weak.lock()) {
            std::lock_guard<std::mutex> lock(state->mu);
            auto it = state->slots.find(identifier);
            if (it != state->slots.end() && it->second.raw == p) {
              state->slots.erase(it);
            }
          }
          delete p;
        });
    slot.object = object;
    slot.raw = raw;
    return object;
  }

  // Identifiers with a live object (for tests and metrics).
  size_t size() const {
    std::lock_guard<std::mutex> lock(state_->mu);
    return state_->slots.size();
  }

 private:
  struct Slot {
    std::weak_ptr<T> object;
    const T* raw = nullptr;  // identifies the object even once it expired
  };
  struct State {
    explicit State(Creator c) : creator(std::move(c)) {}
    const Creator creator;  // constant after construction
    mutable std::mutex mu;
    std::unordered_map<Key, Slot> slots;  // guarded by mu
  };

  static Creator DefaultCreator() {
    return [](const Key& identifier) {
      if constexpr (std::is_constructible_v<T, const Key&>) {
        return std::make_unique<T>(identifier);
      } else {
        return std::make_unique<T>();
      }
    };
  }

  std::shared_ptr<State> state_;
};

}  // namespace dogpiled
