// One client x topic queue: the in-memory FIFO, its limits, and the overflow policy that
// decides what happens to a message that does not fit. Pure logic on the owning loop's
// thread: no I/O and no timers here (Subscription drives sending, acks and spill).
//
// Accounting (docs/client-protocol.md): every entry counts toward maxQueuedMessagesPerClient and
// maxQueuedBytesPerClient, in-flight AT_LEAST_ONCE entries included, until acked or
// exhausted. BEST_EFFORT entries leave the lane when they are handed to the socket.
#pragma once
#include <streamfence/plugin.h>

#include <cstdint>
#include <deque>
#include <string>
#include <string_view>

#include "common/lazy_deque.hpp"
#include "delivery/message.hpp"
#include "delivery/overflow_policy.hpp"
#include "net/event_loop.hpp"

namespace sf::delivery {

struct LaneLimits {
    uint32_t maxMessages = 64;
    uint64_t maxBytes = 524288;
};

struct LaneEntry {
    MessagePtr msg;
    bool inFlight = false;   // sent, awaiting ack (AT_LEAST_ONCE)
    uint32_t sends = 0;      // times handed to the socket
    uint32_t retries = 0;    // re-sends so far
    uint64_t deadline = 0;   // loop ms when the ack is due, while in flight (0: none)
};

enum class EnqueueVerdict { Accepted, Coalesced, Rejected, Spill };

struct EnqueueOutcome {
    EnqueueVerdict verdict = EnqueueVerdict::Accepted;
    std::string reason;    // for Rejected / Spill / Coalesced (label of queue_overflow_total)
    uint32_t dropped = 0;  // entries the policy removed during this enqueue
};

// Fixed reasons the host itself gives.
namespace reasons {
inline constexpr const char* kTooLarge = "message exceeds maxQueuedBytesPerClient";
inline constexpr const char* kPolicyRejected = "queue policy rejected message";
inline constexpr const char* kOverLimits = "policy exceeded lane limits";
inline constexpr const char* kNoSpill = "SPILL_TO_DISK: no spill queue configured";
inline constexpr const char* kSpilled = "spilled to disk";
inline constexpr const char* kQueueFull = "queue full";
inline constexpr const char* kPolicyError = "overflow policy error";
inline constexpr const char* kBadCoalesce = "policy returned COALESCED without replacing";
// Batch forms (SF_POLICY_BATCH_*): the same words the bundled plugins use message by message.
inline constexpr const char* kRejectNewFull = "queue full with REJECT_NEW";
inline constexpr const char* kDropOldestFull = "queue full after drop-oldest attempts";
inline constexpr const char* kSnapshotFull = "snapshot does not fit beside in-flight entries";
}  // namespace reasons

class Lane {
public:
    // coalesce: the namespace's `coalesce: true` — before anything else, an incoming message
    // replaces the newest pending entry with its key (docs/client-protocol.md).
    Lane(std::string ns, std::string topic, LaneLimits limits, const OverflowPolicy* policy, bool canSpill,
         bool coalesce = false);
    Lane(const Lane&) = delete;
    Lane& operator=(const Lane&) = delete;

    // Offer a message. spillFirst: older messages of this lane are in spill storage, so this
    // one must go there too (FIFO across memory and disk); the policy is not consulted.
    EnqueueOutcome enqueue(const MessagePtr& m, bool spillFirst = false);
    // Replace the newest pending (not in-flight) entry with m's key when the byte limit
    // allows; false when there is none. Keys compare by their text; an empty key matches nothing.
    bool coalesceInto(const MessagePtr& m);
    // Refill from spill: append without the policy (caller checks fits()).
    void append(LaneEntry e);

    bool fits(uint64_t bytes) const { return entries_.size() < limits_.maxMessages && bytes_ + bytes <= limits_.maxBytes; }
    size_t size() const { return entries_.size(); }
    bool empty() const { return entries_.empty(); }
    uint64_t bytes() const { return bytes_; }
    uint32_t inFlight() const { return inFlight_; }
    const LaneLimits& limits() const { return limits_; }
    bool canSpill() const { return canSpill_; }
    const std::string& ns() const { return ns_; }
    const std::string& topic() const { return topic_; }

    // Mutable access for timers, counts and messages; inFlight changes only through
    // markInFlight / clearInFlight (firstSendable relies on it).
    LaneEntry& at(size_t i) { return entries_[i]; }
    const LaneEntry& at(size_t i) const { return entries_[i]; }
    // Index of the oldest entry not in flight, or -1.
    long firstSendable() const;
    // Index of the entry with this messageId, or -1.
    long find(std::string_view messageId) const;
    void markInFlight(size_t i, uint64_t deadline);
    void clearInFlight(size_t i);  // ack timeout: waits for a re-send
    LaneEntry take(size_t i);      // remove and return (counters adjusted)
    std::deque<LaneEntry> takeAll();

private:
    struct Call;  // state of one policy call, behind sf_lane_view.lane
    static uint32_t vCount(void* l);
    static uint64_t vBytes(void* l);
    static int vEntry(void* l, uint32_t i, sf_message_view* out);
    static int vRemove(void* l, uint32_t i);
    static int vReplace(void* l, uint32_t i);
    static int vCanSpill(void* l);

    std::string ns_, topic_;
    LaneLimits limits_;
    const OverflowPolicy* policy_;
    bool canSpill_;
    bool coalesce_;
    LazyDeque<LaneEntry> entries_;  // nothing allocated until a message arrives
    uint64_t bytes_ = 0;
    uint32_t inFlight_ = 0;
    // Every entry before this index is in flight: firstSendable starts here instead of
    // walking up to maxInFlight entries per send (docs/message-path.md).
    mutable size_t sendFrom_ = 0;
};

}  // namespace sf::delivery
