#include "delivery/session.hpp"

#include <algorithm>
#include <cstdint>
#include <unordered_set>

#include "common/log.hpp"
#include "delivery/durable_namespace.hpp"
#include "delivery/loop_shard.hpp"
#include "delivery/spill_faults.hpp"
#include "delivery/spill_record.hpp"
#include "delivery/stream_id.hpp"
#include "delivery/token_validator.hpp"

namespace sf::delivery {

namespace {
constexpr size_t kRestoreChunk = 256;  // restored messages built per pull (docs/recovery.md)
}  // namespace

// ------------------------------------------------------------------ Subscription

Subscription::Subscription(Session& session, size_t topic)
    : session_(session),
      ns_(session.ns),
      topic_(topic),
      metrics_(*session.ns.topicMetrics[topic]),
      lane_(session.ns.path(), session.ns.topic(topic), session.ns.limits, session.ns.policy.get(),
            session.ns.storage != nullptr, session.ns.cfg.coalesce),
      log_(session.shard.topicLog(session.ns.index, topic)),
      subscribedWallMs_(wallClockMs()),
      alive_(std::make_shared<bool>(true)) {}

Subscription::~Subscription() {
    alive_.reset();  // late timer/storage callbacks see this gone
    net::EventLoop& loop = session_.shard.loop();
    if (ackTimer_) loop.cancelTimer(ackTimer_);
    metrics_.inflight.fetch_sub(lane_.inFlight(), std::memory_order_relaxed);
    if (expiryTimer) loop.cancelTimer(expiryTimer);
    if (spill_.retryTimer) loop.cancelTimer(spill_.retryTimer);
    if (spill_.everSpilled && ns_.storage && !keepSpill_) {
        // Completes after any append still under way (per-lane order), so nothing is left.
        SpillKey k = spillKey();
        int rc = ns_.storage->clear(loop, k, [k](int status, std::vector<SpillRecord>, std::string err) {
            if (status != SF_OK)
                log::warn("spill_clear_failed", {{"namespace", k.ns}, {"client", k.client}, {"topic", k.topic}, {"error", err}});
        });
        if (rc != SF_OK)
            log::warn("spill_clear_refused", {{"namespace", k.ns}, {"client", k.client}, {"topic", k.topic}, {"code", std::to_string(rc)}});
    }
    session_.shard.remove(ns_.index, this);
}

SpillKey Subscription::spillKey() const {
    return SpillKey{session_.core->cfg.name, ns_.path(), session_.id, ns_.topic(topic_)};
}

void Subscription::overflow(const std::string& reason, uint64_t count) {
    metrics_.overflow(reason, count);
    const std::string& id = session_.id;
    session_.core->notify([&](Listener& l) { l.onQueueOverflow(QueueOverflowEvent{ns_.path(), id, ns_.topic(topic_), reason}); });
}

void Subscription::enqueueOne(const MessagePtr& m) {
    EnqueueOutcome out = lane_.enqueue(m, spill_.pending > 0);
    if (out.dropped) metrics_.dropped.fetch_add(1, std::memory_order_relaxed);  // per enqueue (docs/message-path.md)
    switch (out.verdict) {
        case EnqueueVerdict::Accepted:
            break;
        case EnqueueVerdict::Coalesced:
            metrics_.coalesced.fetch_add(1, std::memory_order_relaxed);
            break;
        case EnqueueVerdict::Rejected:
            overflow(out.reason);
            refused(m->logOffset, m->logOffset);
            break;
        case EnqueueVerdict::Spill:
            spill(m, out.reason);
            break;
    }
}

// A durable lane's refusals are final: the journal marks them done for this lane, so it
// can drop them and a restart does not send them after all (docs/recovery.md).
void Subscription::refused(uint64_t firstOffset, uint64_t lastOffset) {
    if (!ns_.journal || session_.pid.empty() || firstOffset == 0) return;
    durable::recordDone(session_, topic_, firstOffset, lastOffset);
}

// Loop-log positions [from, to): one range when their offsets are consecutive (a durable
// topic's always are: the journal is its only appender), else message by message.
void Subscription::refusedLogRange(uint64_t from, uint64_t to) {
    if (from >= to || !ns_.journal || session_.pid.empty()) return;
    const uint64_t first = log_.at(from).msg->logOffset, last = log_.at(to - 1).msg->logOffset;
    if (last >= first && last - first == to - 1 - from) return refused(first, last);
    for (uint64_t q = from; q < to; ++q) refused(log_.at(q).msg->logOffset, log_.at(q).msg->logOffset);
}

void Subscription::materialize() {
    if (backlog_) restoreMore(SIZE_MAX);  // restored messages are older than the log's
    for (; cursor_ < end_; ++cursor_) lane_.append(LaneEntry{log_.at(cursor_).msg});
}

void Subscription::restoreMore(size_t max) {
    std::vector<MessagePtr> more;
    if (!backlog_(more, max) || more.empty()) backlog_ = nullptr;
    for (const MessagePtr& m : more) lane_.append(LaneEntry{m});
}

void Subscription::deliverDirect(const MessagePtr& m) {
    materialize();  // older log messages stay ahead of it
    enqueueOne(m);
    pump();
}

// A run [from, head) is decided as if each message had been offered in turn: the socket
// first takes what it can (a message handed over leaves a BEST_EFFORT lane, so it never
// counted against the limits), then the policy's batch form settles the rest in one step.
void Subscription::write(uint64_t from) {
    const uint64_t head = log_.head();
    if (from >= head || end_ >= head) return pump();
    if (cursor_ < log_.base()) cursor_ = end_ = log_.base();  // defensive: positions never go back
    const uint32_t form = ns_.policy->batchForm();
    if (!form || ns_.cfg.coalesce || spill_.pending > 0 || log_.largeFrom(from) > 0) return writeEach(from);
    std::weak_ptr<bool> alive = alive_;
    end_ = head;
    pump();
    if (alive.expired()) return;
    switch (form) {
        case SF_POLICY_BATCH_DROP_OLDEST: writeDropOldest(from); break;
        case SF_POLICY_BATCH_REJECT_NEW: writeRejectNew(from); break;
        case SF_POLICY_BATCH_KEEP_NEWEST: writeKeepNewest(from); break;
        default: break;
    }
}

void Subscription::writeEach(uint64_t from) {
    materialize();
    cursor_ = end_ = from;
    std::weak_ptr<bool> alive = alive_;
    const uint64_t head = log_.head();
    while (cursor_ < head) {
        MessagePtr m = log_.at(cursor_).msg;
        cursor_ = end_ = cursor_ + 1;
        enqueueOne(m);
        pump();
        if (alive.expired() || session_.closed) return;
    }
}

void Subscription::writeDropOldest(uint64_t from) {
    const LaneLimits& lim = lane_.limits();
    auto over = [&] { return depth() > lim.maxMessages || queuedBytes() > lim.maxBytes; };
    if (!over()) return;
    const uint64_t fresh = log_.head() - std::max(from, cursor_);  // new and not sent
    uint64_t removed = 0;
    for (size_t i = 0; over() && i < lane_.size();) {
        if (lane_.at(i).inFlight) {  // awaits its ack: never dropped
            ++i;
            continue;
        }
        lane_.take(i);
        ++removed;
    }
    uint64_t to = cursor_;
    if (over()) {
        const uint64_t heldN = lane_.size(), heldB = lane_.bytes();
        const uint64_t byCount = heldN >= lim.maxMessages ? end_ : std::max(cursor_, end_ - std::min<uint64_t>(end_, lim.maxMessages - heldN));
        const uint64_t byBytes = heldB >= lim.maxBytes ? end_ : log_.firstWithin(cursor_, lim.maxBytes - heldB + log_.bytesFrom(end_));
        to = std::max(byCount, byBytes);
    }
    uint64_t rejected = 0;
    if (to >= end_ && end_ > cursor_) {
        // Even the newest does not fit beside the in-flight entries: the new ones are
        // refused, the older accepted ones dropped.
        rejected = end_ - std::max(from, cursor_);
        removed += std::max(from, cursor_) - cursor_;
    } else {
        removed += to - cursor_;
    }
    cursor_ = std::min(to, end_);
    if (removed) metrics_.dropped.fetch_add(std::min(fresh, removed), std::memory_order_relaxed);  // enqueues that dropped
    if (rejected) overflow(reasons::kDropOldestFull, rejected);
}

void Subscription::writeRejectNew(uint64_t from) {
    const LaneLimits& lim = lane_.limits();
    if (depth() <= lim.maxMessages && queuedBytes() <= lim.maxBytes) return;
    // Accepted before this run: [cursor_, max(from, cursor_)), within the limits. Take the
    // longest prefix of the rest that fits (one binary search); a lane full by count refuses
    // the rest at once.
    const uint64_t p = std::max(from, cursor_);
    const uint64_t heldN = lane_.size(), heldB = lane_.bytes();
    const uint64_t roomN = lim.maxMessages > heldN ? lim.maxMessages - heldN : 0;
    const uint64_t limitN = std::max(p, cursor_ + std::min<uint64_t>(roomN, end_ - cursor_));
    const uint64_t roomB = lim.maxBytes > heldB ? lim.maxBytes - heldB : 0;
    const uint64_t fromBytes = log_.bytesFrom(cursor_);
    uint64_t lo = p, hi = limitN;  // largest q in [p, limitN] with bytes(cursor_, q) <= roomB
    while (lo < hi) {
        uint64_t mid = hi - (hi - lo) / 2;
        if (fromBytes - log_.bytesFrom(mid) <= roomB) lo = mid;
        else hi = mid - 1;
    }
    const uint64_t head = end_;
    end_ = lo;
    materialize();  // later publishes follow the refused ones: the lane keeps its own copy
    uint64_t rejected = head - lo;
    uint64_t refusedFrom = lo;  // the refused positions: runs [refusedFrom, next taken)
    // Stopped by bytes with count to spare: a smaller later message may still fit, exactly
    // as it would when offered alone (REJECT_NEW judges each message by itself).
    for (uint64_t q = lo + (lo < head ? 1 : 0); q < head && lane_.size() < lim.maxMessages && lane_.bytes() < lim.maxBytes; ++q) {
        const MessagePtr& m = log_.at(q).msg;
        if (lane_.fits(m->bytes)) {
            lane_.append(LaneEntry{m});
            --rejected;
            refusedLogRange(refusedFrom, q);
            refusedFrom = q + 1;
        }
    }
    refusedLogRange(refusedFrom, head);
    cursor_ = end_ = head;
    if (rejected) overflow(reasons::kRejectNewFull, rejected);
}

void Subscription::writeKeepNewest(uint64_t from) {
    const uint64_t fresh = end_ - std::max(from, cursor_);
    if (fresh == 0) return;  // the socket took the whole run
    uint64_t removed = 0;
    for (size_t i = 0; i < lane_.size();) {
        if (lane_.at(i).inFlight) {
            ++i;
            continue;
        }
        lane_.take(i);
        ++removed;
    }
    removed += end_ - 1 - cursor_;
    cursor_ = end_ - 1;  // the newest replaces every pending one
    if (removed) metrics_.dropped.fetch_add(std::min(fresh, removed), std::memory_order_relaxed);
    const LaneLimits& lim = lane_.limits();
    if (depth() > lim.maxMessages || queuedBytes() > lim.maxBytes) {
        cursor_ = end_;
        overflow(reasons::kSnapshotFull);
    }
}

void Subscription::spill(const MessagePtr& m, const std::string& reason) {
    SpillRecord r;
    r.data = encodeSpillData(*m);
    r.event = ns_.topic(topic_);
    r.messageId = m->messageId;
    r.key = m->key;
    r.bytes = m->bytes;
    std::weak_ptr<bool> alive = alive_;
    ++spill_.pending;
    ++spill_.appendsIssued;
    spill_.everSpilled = true;
    // Counted as spilled once the backend says it holds it: a failed append is counted once,
    // as the failure (docs/message-path.md, the spill row).
    int rc = ns_.storage->append(session_.shard.loop(), spillKey(), r,
                                 [this, alive, reason](int status, std::vector<SpillRecord>, std::string err) {
                                     if (alive.expired()) return;
                                     if (status == SF_OK) {
                                         metrics_.spilled.fetch_add(1, std::memory_order_relaxed);
                                         overflow(reason);  // spilled also counts as overflow, reason "spilled to disk" (docs/client-protocol.md)
                                         pump();  // memory may have room for it already
                                         return;
                                     }
                                     // Accepted by the plugin, failed later: the message is lost; say so.
                                     if (spill_.pending) --spill_.pending;
                                     logSpillFault("spill_append_failed", ns_.path(), ns_.topic(topic_), session_.id, err);
                                     overflow(status == SF_ERR_FULL ? "spill quota exceeded" : "spill storage error");
                                 });
    if (rc != SF_OK) {
        --spill_.pending;
        --spill_.appendsIssued;
        logSpillFault("spill_append_refused", ns_.path(), ns_.topic(topic_), session_.id, "code " + std::to_string(rc));
        overflow(rc == SF_ERR_FULL ? "spill quota exceeded" : "spill storage unavailable");
        return;
    }
}

void Subscription::maybeRefill() {
    if (!ns_.storage || (spill_.pending == 0 && spill_.removeOwed == 0) || spill_.reading) return;
    if (spill_.removeOwed) return removeOwed();
    if (depth() >= lane_.limits().maxMessages) return;
    uint32_t room = static_cast<uint32_t>(lane_.limits().maxMessages - depth());
    uint32_t asked = std::min<uint32_t>(room, 256);
    uint64_t appendsAtRead = spill_.appendsIssued;
    std::weak_ptr<bool> alive = alive_;
    spill_.reading = true;
    int rc = ns_.storage->readOldest(session_.shard.loop(), spillKey(), asked,
                                     [this, alive, asked, appendsAtRead](int status, std::vector<SpillRecord> recs, std::string err) {
                                         if (alive.expired()) return;
                                         onRead(status, std::move(recs), err, asked, appendsAtRead);
                                     });
    if (rc != SF_OK) {
        spill_.reading = false;
        onRead(rc, {}, "read_oldest refused", asked, appendsAtRead);
    }
}

void Subscription::onRead(int status, std::vector<SpillRecord> recs, const std::string& error, uint32_t asked,
                          uint64_t appendsAtRead) {
    net::EventLoop& loop = session_.shard.loop();
    if (status != SF_OK) {
        spill_.reading = false;
        logSpillFault("spill_read_failed", ns_.path(), ns_.topic(topic_), session_.id, error);
        retryRefillSoon();
        return;
    }
    // Fewer than asked: the storage holds exactly these (corrupt records it skipped are
    // gone for us), plus whatever was appended after the read was issued.
    if (recs.size() < asked) spill_.pending = recs.size() + (spill_.appendsIssued - appendsAtRead);
    uint32_t taken = 0;
    for (auto& r : recs) {
        std::string json;
        std::vector<std::string> attachments;
        if (!decodeSpillData(r.data, json, attachments)) {
            // A corrupt envelope: removed with the others, reported, never delivered as garbage.
            log::warn("spill_record_corrupt", {{"namespace", ns_.path()}, {"topic", ns_.topic(topic_)}, {"client", session_.id}});
            overflow("spill record corrupt");
            ++taken;
            continue;
        }
        uint64_t bytes = json.size();
        for (auto& a : attachments) bytes += a.size();
        if (!lane_.fits(bytes)) break;
        LaneEntry e;
        e.msg = session_.core->buildMessageWithId(ns_, topic_, std::move(json), std::move(r.key), std::move(r.messageId),
                                                  std::move(attachments));
        e.retries = r.retryCount;
        lane_.append(std::move(e));
        ++taken;
    }
    if (taken == 0) {
        spill_.reading = false;
        return;
    }
    std::weak_ptr<bool> alive = alive_;
    int rc = ns_.storage->removeOldest(loop, spillKey(), taken, [this, alive, taken](int st, std::vector<SpillRecord>, std::string err) {
        if (alive.expired()) return;
        spill_.reading = false;
        spill_.pending = spill_.pending > taken ? spill_.pending - taken : 0;
        if (st != SF_OK) {
            // They are in memory already: removed before the next read, or they would come twice.
            spill_.removeOwed += taken;
            logSpillFault("spill_remove_failed", ns_.path(), ns_.topic(topic_), session_.id, err);
            retryRefillSoon();
        }
        pump();
    });
    if (rc != SF_OK) {
        spill_.reading = false;
        spill_.pending = spill_.pending > taken ? spill_.pending - taken : 0;
        spill_.removeOwed += taken;
        logSpillFault("spill_remove_refused", ns_.path(), ns_.topic(topic_), session_.id, "code " + std::to_string(rc));
        retryRefillSoon();
    }
    pump();
}

// Records already taken into memory whose remove failed: removed before anything is read again.
void Subscription::removeOwed() {
    const uint32_t n = static_cast<uint32_t>(std::min<uint64_t>(spill_.removeOwed, UINT32_MAX));
    std::weak_ptr<bool> alive = alive_;
    spill_.reading = true;
    int rc = ns_.storage->removeOldest(session_.shard.loop(), spillKey(), n, [this, alive, n](int st, std::vector<SpillRecord>, std::string err) {
        if (alive.expired()) return;
        spill_.reading = false;
        if (st != SF_OK) {
            logSpillFault("spill_remove_failed", ns_.path(), ns_.topic(topic_), session_.id, err);
            return retryRefillSoon();
        }
        spill_.removeOwed -= n;
        maybeRefill();
    });
    if (rc != SF_OK) {
        spill_.reading = false;
        logSpillFault("spill_remove_refused", ns_.path(), ns_.topic(topic_), session_.id, "code " + std::to_string(rc));
        retryRefillSoon();
    }
}

// Try again shortly rather than spinning on a failing backend.
void Subscription::retryRefillSoon() {
    if (spill_.retryTimer) return;
    std::weak_ptr<bool> alive = alive_;
    spill_.retryTimer = session_.shard.loop().addTimer(500, [this, alive] {
        if (alive.expired()) return;
        spill_.retryTimer = 0;
        maybeRefill();
    });
}

void Subscription::pump() {
    sio::Socket* s = session_.socket;
    if (!s || session_.closed) return;
    // Stop at the engine's high watermark; its onDrain is guaranteed to call pumpAll again
    // (docs/message-path.md, Backpressure).
    std::weak_ptr<bool> alive = alive_;
    uint64_t& delivered = session_.shard.deliveredCounter(ns_.index, topic_);  // the shard outlives this
    if (ns_.ackRequired) {
        net::EventLoop& loop = session_.shard.loop();
        while (lane_.inFlight() < ns_.maxInFlight) {
            long i = lane_.firstSendable();
            if (i < 0 && backlog_) {  // restored messages go before the log's (docs/recovery.md)
                restoreMore(kRestoreChunk);
                continue;
            }
            if (i < 0 && cursor_ == end_) break;
            if (s->backpressured()) break;
            if (i < 0) {  // next from the log: it needs its own entry to wait for the ack
                lane_.append(LaneEntry{log_.at(cursor_++).msg});
                i = static_cast<long>(lane_.size() - 1);
            }
            LaneEntry& e = lane_.at(static_cast<size_t>(i));
            const uint64_t due = loop.nowMs() + static_cast<uint64_t>(ns_.ackTimeoutMs);
            lane_.markInFlight(static_cast<size_t>(i), due);
            armAckTimer(due);
            metrics_.inflight.fetch_add(1, std::memory_order_relaxed);
            sio::FramePtr f = e.msg->frame;
            s->sendFrame(f);
            ++delivered;
            if (alive.expired()) return;  // the send closed the socket
        }
    } else {
        while (!lane_.empty() || cursor_ < end_) {
            if (s->backpressured()) break;
            MessagePtr m = !lane_.empty() ? lane_.take(0).msg  // BEST_EFFORT leaves the lane when handed over
                                          : log_.at(cursor_++).msg;
            s->sendFrame(m->frame);
            if (!session_.pid.empty()) session_.recordSent(m);
            ++delivered;
            if (alive.expired()) return;
        }
    }
    maybeRefill();
}

void Subscription::armAckTimer(uint64_t at) {
    if (ackTimer_ && ackTimerAt_ <= at) return;  // fires first anyway
    net::EventLoop& loop = session_.shard.loop();
    if (ackTimer_) loop.cancelTimer(ackTimer_);
    const uint64_t now = loop.nowMs();
    std::weak_ptr<bool> alive = alive_;
    ackTimerAt_ = at;
    ackTimer_ = loop.addTimer(at > now ? at - now : 0, [this, alive] {
        if (alive.expired()) return;
        ackTimer_ = 0;
        onAckTimer();
    });
}

// Acks are usually in time, so this runs about once per ackTimeoutMs per lane: one scan of
// the in-flight entries for those due, then the timer moves to the earliest one left.
void Subscription::onAckTimer() {
    const uint64_t now = session_.shard.loop().nowMs();
    std::vector<std::string> due;
    for (size_t i = 0; i < lane_.size(); ++i) {
        const LaneEntry& e = lane_.at(i);
        if (e.inFlight && e.deadline <= now) due.push_back(e.msg->messageId);
    }
    std::weak_ptr<bool> alive = alive_;
    for (const std::string& id : due) {
        onAckTimeout(id);
        if (alive.expired()) return;
    }
    uint64_t next = 0;
    for (size_t i = 0; i < lane_.size(); ++i) {
        const LaneEntry& e = lane_.at(i);
        if (e.inFlight && (next == 0 || e.deadline < next)) next = e.deadline;
    }
    if (next) armAckTimer(next);
}

void Subscription::onAckTimeout(const std::string& messageId) {
    long i = lane_.find(messageId);
    if (i < 0 || !lane_.at(static_cast<size_t>(i)).inFlight) return;
    LaneEntry& e = lane_.at(static_cast<size_t>(i));
    const std::string& topic = ns_.topic(topic_);
    if (e.retries < ns_.maxRetries) {
        int attempt = static_cast<int>(++e.retries);
        lane_.clearInFlight(static_cast<size_t>(i));
        metrics_.inflight.fetch_sub(1, std::memory_order_relaxed);
        metrics_.retries.fetch_add(1, std::memory_order_relaxed);
        session_.core->notify([&](Listener& l) { l.onRetry(RetryEvent{ns_.path(), session_.id, topic, messageId, attempt}); });
    } else {
        const int retries = static_cast<int>(e.retries);
        durable::recordDone(session_, topic_, e.msg->logOffset, e.msg->logOffset);
        lane_.take(static_cast<size_t>(i));  // exhausted: frees the slot
        metrics_.inflight.fetch_sub(1, std::memory_order_relaxed);
        metrics_.retriesExhausted.fetch_add(1, std::memory_order_relaxed);
        session_.core->notify([&](Listener& l) { l.onRetryExhausted(RetryExhaustedEvent{ns_.path(), session_.id, topic, messageId, retries}); });
    }
    pump();  // re-sends the same frame (oldest sendable) or the next message
}

bool Subscription::ack(const std::string& messageId) {
    long i = lane_.find(messageId);
    if (i < 0) return false;
    LaneEntry& e = lane_.at(static_cast<size_t>(i));
    if (e.sends == 0) return false;  // never sent: an ack cannot skip a message (Java semantics)
    durable::recordDone(session_, topic_, e.msg->logOffset, e.msg->logOffset);
    if (e.inFlight) {  // its deadline goes with it; the lane's timer finds nothing due
        metrics_.inflight.fetch_sub(1, std::memory_order_relaxed);
    }
    if (!e.msg->streamId.empty() && streamIdLess(lastAckedStream_, e.msg->streamId)) lastAckedStream_ = e.msg->streamId;
    lane_.take(static_cast<size_t>(i));
    pump();
    return true;
}

std::string Subscription::replayFloor() const {
    const std::string* oldest = nullptr;
    auto consider = [&](const MessagePtr& m) {
        if (!m->streamId.empty() && (!oldest || streamIdLess(m->streamId, *oldest))) oldest = &m->streamId;
    };
    for (size_t i = 0; i < lane_.size(); ++i) consider(lane_.at(i).msg);
    for (uint64_t p = std::max(cursor_, log_.base()); p < end_ && p < log_.head(); ++p) consider(log_.at(p).msg);
    if (oldest) return *oldest;
    if (!lastAckedStream_.empty()) return "(" + lastAckedStream_;
    return "t" + std::to_string(subscribedWallMs_);
}

std::vector<LaneEntry> Subscription::handOut() {
    pause();
    materialize();
    std::deque<LaneEntry> all = lane_.takeAll();
    return std::vector<LaneEntry>(std::make_move_iterator(all.begin()), std::make_move_iterator(all.end()));
}

void Subscription::pause() {
    net::EventLoop& loop = session_.shard.loop();
    if (ackTimer_) loop.cancelTimer(ackTimer_);
    ackTimer_ = 0;
    for (size_t i = 0; i < lane_.size(); ++i) {
        LaneEntry& e = lane_.at(i);
        if (!e.inFlight) continue;
        lane_.clearInFlight(i);  // not a retry: the re-send after recovery is the same delivery
        metrics_.inflight.fetch_sub(1, std::memory_order_relaxed);
    }
}

void Subscription::restore(const std::vector<MessagePtr>& pending) {
    for (const MessagePtr& m : pending) lane_.append(LaneEntry{m});
}

Subscription::Moved Subscription::moveOut(uint64_t upTo) {
    pause();
    materialize();
    Moved out;
    for (auto& e : lane_.takeAll()) {
        const uint64_t off = e.msg->logOffset;
        if (off != 0 && off >= upTo) continue;  // the new lane took it from its own loop's log
        out.entries.push_back(std::move(e));
    }
    out.spillPending = spill_.pending;
    // Else the new lane reads them again (duplicates). Not while a remove of them is under
    // way: its outcome is unknown here, and removing twice would lose unread records.
    out.removeOwed = spill_.reading ? 0 : spill_.removeOwed;
    out.everSpilled = spill_.everSpilled;
    keepSpill_ = true;
    return out;
}

void Subscription::moveIn(Moved&& m) {
    materialize();
    std::deque<LaneEntry> newer = lane_.takeAll();
    std::unordered_set<std::string> movedIds(m.alsoHave.begin(), m.alsoHave.end());  // a message moved between nodes may be here too
    for (auto& e : m.entries) {
        movedIds.insert(e.msg->messageId);
        lane_.append(std::move(e));
    }
    spill_.pending += m.spillPending;
    spill_.removeOwed += m.removeOwed;
    spill_.everSpilled = spill_.everSpilled || m.everSpilled;
    for (auto& e : newer) {
        if (movedIds.count(e.msg->messageId)) continue;
        if (spill_.pending > 0 && ns_.storage) spill(e.msg, reasons::kSpilled);  // behind the older spilled ones
        else lane_.append(std::move(e));
    }
    // Two lanes' worth may not fit in one: the oldest not in flight go, counted as drops
    // (what DROP_OLDEST would do; docs/recovery.md).
    const LaneLimits& lim = lane_.limits();
    uint64_t dropped = 0;
    for (size_t i = 0; (lane_.size() > lim.maxMessages || lane_.bytes() > lim.maxBytes) && i < lane_.size();) {
        if (lane_.at(i).inFlight) {
            ++i;
            continue;
        }
        const uint64_t off = lane_.take(i).msg->logOffset;
        refused(off, off);
        ++dropped;
    }
    if (dropped) {
        metrics_.dropped.fetch_add(dropped, std::memory_order_relaxed);
        overflow("recovery: moved lane over its limits", dropped);
    }
}

// ------------------------------------------------------------------ Session

Session::Session(std::shared_ptr<Core> c, NamespaceRuntime& n, LoopShard& sh, sio::Socket& s)
    : core(std::move(c)), ns(n), shard(sh), socket(&s), id(s.id()), remote(s.remoteAddress()) {
    subs.resize(ns.cfg.topics.size());
}

Session::Session(std::shared_ptr<Core> c, NamespaceRuntime& n, LoopShard& sh, std::string sid)
    : core(std::move(c)), ns(n), shard(sh), socket(nullptr), id(std::move(sid)) {
    subs.resize(ns.cfg.topics.size());
}

Session::~Session() { close("session destroyed"); }

SessionHolder::~SessionHolder() {
    if (!session || session->closed || session->detached) return;  // detached: HeldSessions owns it
    net::EventLoop& loop = session->shard.loop();
    if (loop.inLoopThread()) {
        session->close("socket released");
        return;
    }
    loop.post([s = std::move(session)] { s->close("socket released"); });
}

void Session::runDeferred() {
    while (!busy && !deferred.empty() && !closed) {
        auto fn = std::move(deferred.front());
        deferred.pop_front();
        fn();
    }
}

Subscription& Session::subscribe(size_t topic) {
    if (!subs[topic]) {
        subs[topic] = std::make_unique<Subscription>(*this, topic);
        ++topicCount;
        shard.add(ns.index, subs[topic].get());
        core->markSubscribed(ns.index, id, topic, true);
        if (!pid.empty()) shard.sessionsChanged();
    }
    return *subs[topic];
}

bool Session::unsubscribe(size_t topic) {
    if (topic >= subs.size() || !subs[topic]) return false;
    auto sub = std::move(subs[topic]);
    --topicCount;
    sub.reset();  // destructor: timers, spill clear, topic index
    core->markSubscribed(ns.index, id, topic, false);
    if (!pid.empty()) shard.sessionsChanged();
    durable::recordUnsubscribe(*this, topic);
    return true;
}

void Session::pumpAll() {
    for (auto& s : subs) {
        if (closed) return;
        if (s) s->pump();
    }
}

void Session::close(const std::string& reason) {
    if (closed) return;
    closed = true;
    // Moved: the same pid lives on elsewhere. Stopping: kept for the next start (docs/recovery.md).
    if (reason != "moved" && !core->stopping.load(std::memory_order_relaxed)) {
        durable::recordEnd(*this);
        // Other nodes could recover it from its record (docs/cluster.md); a shutdown keeps
        // the record, so clients of a stopped node recover elsewhere.
        if (core->bus && !pid.empty() && !syncedRecord.empty()) core->bus->dropSession(pid);
    }
    deferred.clear();
    if (expiryTimer) {
        shard.loop().cancelTimer(expiryTimer);
        expiryTimer = 0;
    }
    if (holdTimer) {
        shard.loop().cancelTimer(holdTimer);
        holdTimer = 0;
    }
    uncountHeld();
    for (auto& s : subs) s.reset();
    topicCount = 0;
    shard.removeSession(this);
    core->unregisterClient(ns.index, id, &shard);
    if (!pid.empty()) core->held.forget(pid, this);
    socket = nullptr;
}

void Session::uncountHeld() {
    if (!heldCounted) return;
    heldCounted = false;
    ns.nsMetrics->detached.fetch_sub(1, std::memory_order_relaxed);
}

void Session::closeMoved() {
    for (auto& s : subs) s.reset();  // moveOut marked them: their spill stays for the new lanes
    topicCount = 0;
    close("moved");
}

void Session::recordSent(const MessagePtr& m) {
    if (!socket) return;
    const uint64_t k = std::max<size_t>(1, topicCount);  // a lane's worth per subscribed topic
    history.confirm(socket->messagesConfirmed());
    history.record(m, socket->messagesSent(), uint64_t(ns.limits.maxMessages) * k, ns.limits.maxBytes * k);
}

void Session::detach(uint64_t confirmedMark) {
    history.confirm(confirmedMark);
    deferred.clear();
    busy = false;
    socket = nullptr;
    detached = true;
    detachedAtMs = net::monotonicMs();
    for (auto& s : subs)
        if (s) s->pause();
}

}  // namespace sf::delivery
