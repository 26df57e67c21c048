// One client socket in one namespace (Session) and its subscriptions (Subscription = the
// lane runner of one client x topic: pushes frames under socket backpressure, ack
// deadlines on loop timers, retries of the same frame, spill to and refill from the
// storage backend). Everything here runs on the socket's loop thread.
//
// A lane is a position in its loop's LoopTopicLog plus a small Lane of its own
// (docs/message-path.md): pending = lane_ entries (older: in flight, retried, refilled from
// spill, directed, or decided message by message) followed by the log range
// [cursor_, end_). Publishes cost a lane nothing until its loop writes it; a write decides
// the whole run at once when the policy has a batch form.
#pragma once
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/lazy_deque.hpp"
#include "delivery/core.hpp"
#include "delivery/lane.hpp"
#include "delivery/loop_topic_log.hpp"
#include "delivery/replay_history.hpp"

namespace sf::delivery {

class Session;

class Subscription {
public:
    Subscription(Session& session, size_t topic);
    ~Subscription();  // cancels ack timers, clears the lane's spill, leaves the topic index
    Subscription(const Subscription&) = delete;
    Subscription& operator=(const Subscription&) = delete;

    // The loop appended [from, log head) to the topic's log: take the run under the lane's
    // limits and policy, and push what the socket can take.
    void write(uint64_t from);
    // publishTo: this lane only, decided message by message.
    void deliverDirect(const MessagePtr& m);
    // Start reading the topic's log at pos (a new lane: only what is published from now on).
    void startAt(uint64_t pos) { cursor_ = end_ = pos; }
    uint64_t cursor() const { return cursor_; }
    // Pending messages and bytes: the lane's own entries plus its accepted log range.
    uint64_t depth() const { return lane_.size() + (end_ - cursor_); }
    uint64_t queuedBytes() const { return lane_.bytes() + log_.bytesFrom(cursor_) - log_.bytesFrom(end_); }
    // Push queued frames while the socket's buffer is below the high-water mark; refill
    // from spill when memory has room.
    void pump();
    // Client ack. Removes the entry if it was sent at least once (in flight or waiting for
    // its re-send); ids never sent or unknown are ignored. True when something was removed.
    bool ack(const std::string& messageId);

    // Connection-state recovery (docs/recovery.md). The client's connection is gone: entries
    // in flight wait for it to come back, their ack deadlines and retry counts paused.
    void pause();
    // Durable restart (docs/recovery.md): the lane's unacked messages, oldest first.
    void restore(const std::vector<MessagePtr>& pending);
    // The same built on demand: pull(out, max) appends up to max of them in order and says
    // whether more are left. They stay ahead of everything the lane takes from the log:
    // pump pulls a chunk when it has nothing older to send, anything that materializes the
    // log range pulls them all first.
    using Backlog = std::function<bool(std::vector<MessagePtr>& out, size_t max)>;
    void restoreLater(Backlog pull) { backlog_ = std::move(pull); }
    bool restorePending() const { return static_cast<bool>(backlog_); }
    // Moving to another loop: everything pending in order (lane entries, then the accepted
    // log range), leaving out topic offsets >= upTo (the new lane has those already). The
    // spill, keyed by client and topic, goes with it: this lane will not clear it.
    struct Moved {
        std::vector<LaneEntry> entries;
        std::vector<std::string> alsoHave;  // messageIds the client has or gets otherwise (replay history)
        uint64_t spillPending = 0;
        uint64_t removeOwed = 0;  // spilled records already in entries whose remove failed
        bool everSpilled = false;
    };
    Moved moveOut(uint64_t upTo);
    // The other half: the moved entries go before what this lane took meanwhile; with spill
    // pending, those newer ones follow the spill (FIFO across memory and disk). Limits hold
    // afterwards: the oldest entries not in flight are dropped (counted) if needed.
    void moveIn(Moved&& m);
    // Handing the session to another node (docs/cluster.md): everything pending, in order;
    // the spill stays here and is cleared with the lane (the other node cannot read it).
    std::vector<LaneEntry> handOut();
    // Cluster mode, AT_LEAST_ONCE: where another node would replay this lane from in the
    // topic's stream if this node died now (RemoteSessionRecord::topics). Never past an
    // entry the client has not acked.
    std::string replayFloor() const;

    Lane& lane() { return lane_; }
    size_t topic() const { return topic_; }
    uint64_t spilledPending() const { return spill_.pending; }
    bool refilling() const { return spill_.reading; }

    size_t listIndex = 0;           // position in the shard's subscriber list
    net::TimerId expiryTimer = 0;   // token expiry when a payload token authorized it

private:
    struct SpillState {
        uint64_t pending = 0;       // records in storage or on their way there
        uint64_t appendsIssued = 0;
        bool reading = false;       // a read_oldest/remove_oldest cycle is under way
        bool everSpilled = false;
        uint64_t removeOwed = 0;    // read into memory, remove failed: remove before reading again
        net::TimerId retryTimer = 0;
    };

    void enqueueOne(const MessagePtr& m);  // the per-message policy path
    void materialize();                    // move the accepted log range into lane_
    void restoreMore(size_t max);          // up to max from backlog_ into lane_
    void writeEach(uint64_t from);         // no batch form applies: message by message
    void writeDropOldest(uint64_t from);
    void writeRejectNew(uint64_t from);
    void refused(uint64_t firstOffset, uint64_t lastOffset);  // durable: the lane never sends these
    void refusedLogRange(uint64_t from, uint64_t to);         // the same for loop-log positions [from, to)
    void writeKeepNewest(uint64_t from);
    void spill(const MessagePtr& m, const std::string& reason);
    void removeOwed();
    void retryRefillSoon();
    void maybeRefill();
    void onRead(int status, std::vector<SpillRecord> recs, const std::string& error, uint32_t asked, uint64_t appendsAtRead);
    void onAckTimeout(const std::string& messageId);
    // One timer per lane for the earliest ack deadline of its in-flight entries, instead of
    // a timer per send (docs/message-path.md): armAckTimer keeps it at or before `at`.
    void armAckTimer(uint64_t at);
    void onAckTimer();
    // count messages the lane did not take, for one reason: one listener event per call (a
    // batch write's rejections are one call).
    void overflow(const std::string& reason, uint64_t count = 1);
    SpillKey spillKey() const;

    Session& session_;
    NamespaceRuntime& ns_;
    bool keepSpill_ = false;  // moved to another loop: the spill belongs to the new lane
    size_t topic_;
    Metrics::TopicCounters& metrics_;
    Lane lane_;
    LoopTopicLog& log_;
    uint64_t cursor_ = 0, end_ = 0;  // accepted log range [cursor_, end_)
    SpillState spill_;
    std::string lastAckedStream_;  // stream id of the newest acked entry (replayFloor)
    uint64_t subscribedWallMs_ = 0;
    Backlog backlog_;  // durable restart: unacked messages not built yet
    std::shared_ptr<bool> alive_;  // callbacks hold a weak_ptr: expired = this is gone
    net::TimerId ackTimer_ = 0;
    uint64_t ackTimerAt_ = 0;
};

class Session : public std::enable_shared_from_this<Session> {
public:
    Session(std::shared_ptr<Core> core, NamespaceRuntime& ns, LoopShard& shard, sio::Socket& socket);
    // A session rebuilt from a durable journal: no socket until its client comes back.
    Session(std::shared_ptr<Core> core, NamespaceRuntime& ns, LoopShard& shard, std::string id);
    ~Session();

    std::shared_ptr<Core> core;
    NamespaceRuntime& ns;
    LoopShard& shard;
    sio::Socket* socket;   // valid until close()
    std::string id, remote;
    std::string connectToken, principal;
    net::TimerId expiryTimer = 0;  // connect-time token expiry
    bool closed = false;
    // Connection-state recovery (docs/recovery.md). pid: the private id a reconnecting
    // client names (empty when recovery is off). Detached: held after an abnormal end,
    // lanes still taking publishes under their limits, until the client comes back or the
    // hold expires.
    std::string pid;
    bool detached = false;
    bool heldCounted = false;  // counted in the namespace's detached-sessions gauge
    // Leave that gauge (attached again or closed), once.
    void uncountHeld();
    uint64_t detachedAtMs = 0;
    net::TimerId holdTimer = 0;
    // Cluster mode: the record other nodes recover this session from (session_sync.cpp):
    // what was last written and when.
    std::string syncedRecord;
    uint64_t syncedAtMs = 0;
    ReplayHistory history;  // BEST_EFFORT messages sent and not yet confirmed received
    // A frame went to the socket: remember it until the client is proven to have it.
    void recordSent(const MessagePtr& m);
    // The connection ended abnormally: keep everything, pause what waits for the client.
    void detach(uint64_t confirmedMark);
    // Closing on this loop because the session moved to another one: lanes leave without
    // clearing their spill, and the client directory (now pointing elsewhere) is left alone.
    void closeMoved();

    // Error answers in the current one-minute window (ServerConfig::maxClientErrorsPerMinute).
    uint64_t errorWindowStartMs = 0;
    uint64_t errorsInWindow = 0;

    // Events arriving while an asynchronous token check is pending wait here, so a
    // client's events are handled in the order it sent them.
    bool busy = false;
    LazyDeque<std::function<void()>> deferred;  // almost always empty: allocates on first use
    void runDeferred();

    Subscription* subscription(size_t topic) { return topic < subs.size() ? subs[topic].get() : nullptr; }
    Subscription& subscribe(size_t topic);  // idempotent
    bool unsubscribe(size_t topic);         // drops the lane and its spill; false if not subscribed
    void pumpAll();                         // socket drained
    void close(const std::string& reason);  // disconnect: everything dropped

    std::vector<std::unique_ptr<Subscription>> subs;  // by topic index
    size_t topicCount = 0;                             // subscribed topics (non-null subs)
};

// What sio::Socket::userData holds: the session, closed on its own loop whichever thread
// lets go of the socket (loop-owned lists and timers are never touched from elsewhere).
struct SessionHolder {
    std::shared_ptr<Session> session;
    explicit SessionHolder(std::shared_ptr<Session> s) : session(std::move(s)) {}
    ~SessionHolder();
    static std::shared_ptr<Session> of(const sio::Socket& s) {
        auto h = std::static_pointer_cast<SessionHolder>(s.userData);
        return h ? h->session : nullptr;
    }
};

}  // namespace sf::delivery
