// Strong integer identifiers used across Warden: Raft terms, log indexes, node
// ids, MVCC revisions and lease ids. Each is a distinct type so that a term can
// never be passed where an index is expected. They are trivially copyable and
// hashable, and support only the arithmetic their meaning allows.
#pragma once

#include <compare>
#include <cstdint>
#include <functional>
#include <ostream>

namespace warden {

template <typename Tag>
class StrongId {
 public:
  constexpr StrongId() = default;
  constexpr explicit StrongId(uint64_t value) : value_(value) {}

  constexpr uint64_t value() const { return value_; }
  constexpr auto operator<=>(const StrongId&) const = default;

  // Arithmetic by a plain count: "the index after this one".
  constexpr StrongId operator+(uint64_t n) const { return StrongId(value_ + n); }
  constexpr StrongId operator-(uint64_t n) const { return StrongId(value_ - n); }
  constexpr StrongId& operator++() {
    ++value_;
    return *this;
  }
  // The distance between two ids of the same kind is a plain count.
  friend constexpr uint64_t Distance(StrongId from, StrongId to) { return to.value_ - from.value_; }

  friend std::ostream& operator<<(std::ostream& os, StrongId id) { return os << id.value_; }

 private:
  uint64_t value_ = 0;
};

struct TermTag {};
struct IndexTag {};
struct NodeIdTag {};
struct RevisionTag {};
struct LeaseIdTag {};

using Term = StrongId<TermTag>;
using Index = StrongId<IndexTag>;
using NodeId = StrongId<NodeIdTag>;
using Revision = StrongId<RevisionTag>;
using LeaseId = StrongId<LeaseIdTag>;

// No node has id 0; it means "none" (no vote, no known leader).
inline constexpr NodeId kNoNode{0};

}  // namespace warden

template <typename Tag>
struct std::hash<warden::StrongId<Tag>> {
  size_t operator()(warden::StrongId<Tag> id) const noexcept {
    return std::hash<uint64_t>{}(id.value());
  }
};
