#include "delivery/lane.hpp"

#include <cstring>
#include <optional>

namespace sf::delivery {

struct Lane::Call {
    Lane* lane;
    const MessagePtr* incoming;
    uint32_t removed = 0;
    bool replaced = false;
    size_t replacedAt = 0;
    std::optional<LaneEntry> replacedOld;  // to undo a replacement the limits refuse
};

namespace {

void fillView(const OutMessage& m, uint32_t flags, sf_message_view* out) {
    uint32_t size = out->struct_size ? out->struct_size : sizeof(sf_message_view);
    sf_message_view v{};
    v.struct_size = sizeof v;
    v.payload_json = sf_str{m.payload.data(), m.payload.size()};
    v.bytes = m.bytes;
    v.key = sf_str{m.key.data(), m.key.size()};
    v.flags = flags;
    // An older plugin may hand a smaller struct: write only what it has room for.
    std::memcpy(out, &v, size < sizeof v ? size : sizeof v);
    out->struct_size = size < sizeof v ? size : sizeof v;
}

}  // namespace

Lane::Lane(std::string ns, std::string topic, LaneLimits limits, const OverflowPolicy* policy, bool canSpill,
           bool coalesce)
    : ns_(std::move(ns)), topic_(std::move(topic)), limits_(limits), policy_(policy), canSpill_(canSpill), coalesce_(coalesce) {
    if (limits_.maxMessages == 0) limits_.maxMessages = 1;
}

uint32_t Lane::vCount(void* l) { return static_cast<uint32_t>(static_cast<Call*>(l)->lane->entries_.size()); }
uint64_t Lane::vBytes(void* l) { return static_cast<Call*>(l)->lane->bytes_; }

int Lane::vEntry(void* l, uint32_t i, sf_message_view* out) {
    auto* c = static_cast<Call*>(l);
    if (!out || i >= c->lane->entries_.size()) return SF_ERR;
    const LaneEntry& e = c->lane->entries_[i];
    fillView(*e.msg, e.inFlight ? SF_ENTRY_IN_FLIGHT : 0u, out);
    return SF_OK;
}

int Lane::vRemove(void* l, uint32_t i) {
    auto* c = static_cast<Call*>(l);
    Lane& lane = *c->lane;
    if (i >= lane.entries_.size() || lane.entries_[i].inFlight) return SF_ERR;  // in flight: awaits its ack
    if (c->replaced) {
        // Keep the undo record pointing at the right entry.
        if (i == c->replacedAt) return SF_ERR;  // removing what was just put in place makes no sense
        if (i < c->replacedAt) --c->replacedAt;
    }
    lane.take(i);
    ++c->removed;
    return SF_OK;
}

int Lane::vReplace(void* l, uint32_t i) {
    auto* c = static_cast<Call*>(l);
    Lane& lane = *c->lane;
    if (c->replaced || i >= lane.entries_.size() || lane.entries_[i].inFlight) return SF_ERR;
    LaneEntry& e = lane.entries_[i];
    c->replacedOld = e;
    c->replaced = true;
    c->replacedAt = i;
    lane.bytes_ -= e.msg->bytes;
    e = LaneEntry{};
    e.msg = *c->incoming;
    lane.bytes_ += e.msg->bytes;
    return SF_OK;
}

int Lane::vCanSpill(void* l) { return static_cast<Call*>(l)->lane->canSpill_ ? 1 : 0; }

EnqueueOutcome Lane::enqueue(const MessagePtr& m, bool spillFirst) {
    EnqueueOutcome out;
    if (m->bytes > limits_.maxBytes) {  // applies to every policy (docs/client-protocol.md)
        out.verdict = EnqueueVerdict::Rejected;
        out.reason = reasons::kTooLarge;
        return out;
    }
    if (spillFirst && canSpill_) {
        out.verdict = EnqueueVerdict::Spill;
        out.reason = reasons::kSpilled;
        return out;
    }
    if (coalesce_ && coalesceInto(m)) {
        out.verdict = EnqueueVerdict::Coalesced;
        out.reason = "coalesced by key";
        return out;
    }
    const bool fitsNow = fits(m->bytes);
    if (!policy_ || (!policy_->onEvery() && fitsNow)) {
        if (fitsNow) {
            append(LaneEntry{m});
            return out;
        }
        out.verdict = EnqueueVerdict::Rejected;
        out.reason = reasons::kQueueFull;
        return out;
    }

    Call call{this, &m, 0, false, 0, std::nullopt};
    sf_lane_view view{};
    view.struct_size = sizeof view;
    view.lane = &call;
    view.max_messages = limits_.maxMessages;
    view.max_bytes = limits_.maxBytes;
    view.topic = sf_str{topic_.data(), topic_.size()};
    view.ns = sf_str{ns_.data(), ns_.size()};
    view.count = &Lane::vCount;
    view.bytes = &Lane::vBytes;
    view.entry = &Lane::vEntry;
    view.remove = &Lane::vRemove;
    view.replace_with_incoming = &Lane::vReplace;
    view.can_spill = &Lane::vCanSpill;
    sf_message_view in{};
    fillView(*m, 0, &in);
    sf_policy_result res{};
    res.struct_size = sizeof res;

    int rc = policy_->onEnqueue(&view, &in, fitsNow, &res);
    out.dropped = call.removed;
    auto undoReplace = [&] {
        if (!call.replaced) return;
        LaneEntry& e = entries_[call.replacedAt];
        bytes_ -= e.msg->bytes;
        e = *call.replacedOld;
        bytes_ += e.msg->bytes;
    };
    auto reject = [&](const char* why) {
        undoReplace();
        out.verdict = EnqueueVerdict::Rejected;
        out.reason = why;
        return out;
    };
    if (rc != SF_OK) return reject(reasons::kPolicyError);
    const char* reason = res.reason;

    switch (res.verdict) {
        case SF_VERDICT_ACCEPT:
            undoReplace();
            append(LaneEntry{m});
            if (entries_.size() > limits_.maxMessages || bytes_ > limits_.maxBytes) {
                take(entries_.size() - 1);  // the host enforces the limits whatever the verdict
                return reject(reasons::kOverLimits);
            }
            out.reason = reason ? reason : "";
            return out;
        case SF_VERDICT_REJECT:
            return reject(reason ? reason : reasons::kPolicyRejected);
        case SF_VERDICT_COALESCED:
            if (!call.replaced) return reject(reasons::kBadCoalesce);
            if (entries_.size() > limits_.maxMessages || bytes_ > limits_.maxBytes) return reject(reasons::kOverLimits);
            out.verdict = EnqueueVerdict::Coalesced;
            out.reason = reason ? reason : "coalesced by key";
            return out;
        case SF_VERDICT_SPILL:
            undoReplace();
            if (!canSpill_) return reject(reasons::kNoSpill);
            out.verdict = EnqueueVerdict::Spill;
            out.reason = reason ? reason : reasons::kSpilled;
            return out;
        default:
            return reject(reasons::kPolicyError);
    }
}

bool Lane::coalesceInto(const MessagePtr& m) {
    if (m->key.empty()) return false;
    for (size_t i = entries_.size(); i-- > 0;) {
        LaneEntry& e = entries_[i];
        if (e.inFlight || e.msg->key != m->key) continue;
        if (bytes_ - e.msg->bytes + m->bytes > limits_.maxBytes) return false;
        bytes_ = bytes_ - e.msg->bytes + m->bytes;
        e = LaneEntry{m};
        return true;
    }
    return false;
}

void Lane::append(LaneEntry e) {
    bytes_ += e.msg->bytes;
    if (e.inFlight) ++inFlight_;
    entries_.push_back(std::move(e));
}

long Lane::firstSendable() const {
    for (; sendFrom_ < entries_.size(); ++sendFrom_)
        if (!entries_[sendFrom_].inFlight) return static_cast<long>(sendFrom_);
    return -1;
}

long Lane::find(std::string_view messageId) const {
    for (size_t i = 0; i < entries_.size(); ++i)
        if (entries_[i].msg->messageId == messageId) return static_cast<long>(i);
    return -1;
}

void Lane::markInFlight(size_t i, uint64_t deadline) {
    LaneEntry& e = entries_[i];
    if (!e.inFlight) ++inFlight_;
    e.inFlight = true;
    e.deadline = deadline;
    ++e.sends;
}

void Lane::clearInFlight(size_t i) {
    LaneEntry& e = entries_[i];
    if (e.inFlight) --inFlight_;
    e.inFlight = false;
    e.deadline = 0;
    if (i < sendFrom_) sendFrom_ = i;
}

LaneEntry Lane::take(size_t i) {
    LaneEntry e = std::move(entries_[i]);
    entries_.eraseAt(i);
    if (i < sendFrom_) --sendFrom_;
    bytes_ -= e.msg->bytes;
    if (e.inFlight) --inFlight_;
    return e;
}

std::deque<LaneEntry> Lane::takeAll() {
    std::deque<LaneEntry> out = entries_.takeAll();
    sendFrom_ = 0;
    bytes_ = 0;
    inFlight_ = 0;
    return out;
}

}  // namespace sf::delivery
