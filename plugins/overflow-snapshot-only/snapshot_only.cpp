// SNAPSHOT_ONLY: every message is a full snapshot, so only the newest one matters: clear
// what is pending (in-flight entries stay, they await an ack) and keep the incoming one.
#include <streamfence/plugin.hpp>

using namespace streamfence;

class SnapshotOnly : public OverflowPolicy {
public:
    static constexpr uint32_t when = SF_POLICY_ON_EVERY | SF_POLICY_BATCH_KEEP_NEWEST;
    SnapshotOnly(const Host&, const Options&) {}
    Verdict onEnqueue(Lane& lane, const Message& in, bool) override {
        uint32_t dropped = 0, i = 0;
        Message m;
        while (lane.entry(i, m)) {
            if (m.inFlight || !lane.remove(i)) ++i;
            else ++dropped;
        }
        if (lane.fits(in.bytes)) return Verdict::accept(dropped, "replaced by snapshot");
        Verdict v = Verdict::reject("snapshot does not fit beside in-flight entries");
        v.dropped = dropped;
        return v;
    }
};

STREAMFENCE_OVERFLOW_POLICY(SnapshotOnly, "SNAPSHOT_ONLY", "1.0.0", "Keep only the newest message")
