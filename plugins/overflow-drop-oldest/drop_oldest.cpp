// DROP_OLDEST: make room by removing the oldest entries, never one that is in flight
// (awaiting an ack). Unlike streamfence-js, an ack-pending entry is kept: dropping it would
// lose the retry state of a message the client may already be processing.
#include <streamfence/plugin.hpp>

using namespace streamfence;

class DropOldest : public OverflowPolicy {
public:
    static constexpr uint32_t when = SF_POLICY_ON_OVERFLOW | SF_POLICY_BATCH_DROP_OLDEST;
    DropOldest(const Host&, const Options&) {}
    Verdict onEnqueue(Lane& lane, const Message& in, bool fits) override {
        if (fits) return Verdict::accept();
        // Decide before touching the lane: if even removing every removable entry cannot
        // make room, reject without dropping anything.
        uint32_t keep = 0;
        uint64_t keepBytes = 0;
        Message m;
        for (uint32_t i = 0; lane.entry(i, m); ++i)
            if (m.inFlight) { ++keep; keepBytes += m.bytes; }
        if (keep + 1 > lane.maxMessages() || keepBytes + in.bytes > lane.maxBytes())
            return Verdict::reject("queue full after drop-oldest attempts");
        uint32_t dropped = 0, i = 0;
        while (!lane.fits(in.bytes) && lane.entry(i, m)) {
            if (m.inFlight || !lane.remove(i)) { ++i; continue; }  // the next entry slid into i
            ++dropped;
        }
        if (!lane.fits(in.bytes)) {  // a lane view that refused removals: report what happened
            Verdict v = Verdict::reject("queue full after drop-oldest attempts");
            v.dropped = dropped;
            return v;
        }
        return Verdict::accept(dropped, "dropped oldest entries to accept new message");
    }
};

STREAMFENCE_OVERFLOW_POLICY(DropOldest, "DROP_OLDEST", "1.0.0", "Drop the oldest queued (not in-flight) messages to make room")
