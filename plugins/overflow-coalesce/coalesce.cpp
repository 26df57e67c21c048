// COALESCE: keep only the latest pending message per key. Consulted on every enqueue; the
// host passes the key (the canonical text of the payload's coalesceKey field, else the
// topic). An empty key is a message without the key field: it matches nothing.
#include <streamfence/plugin.hpp>

using namespace streamfence;

class Coalesce : public OverflowPolicy {
public:
    static constexpr uint32_t when = SF_POLICY_ON_EVERY;
    Coalesce(const Host&, const Options&) {}
    Verdict onEnqueue(Lane& lane, const Message& in, bool fits) override {
        Message m;
        // From the tail, like streamfence-js: the newest pending entry of the key is replaced.
        for (uint32_t i = in.key.empty() ? 0 : lane.count(); i-- > 0;) {
            if (!lane.entry(i, m) || m.inFlight || m.key != in.key) continue;
            if (lane.bytes() - m.bytes + in.bytes > lane.maxBytes()) break;  // would break the byte limit
            if (lane.replaceWithIncoming(i)) return Verdict::coalesced("coalesced by key");
            break;
        }
        return fits ? Verdict::accept() : Verdict::reject("queue full and no coalesce match");
    }
};

STREAMFENCE_OVERFLOW_POLICY(Coalesce, "COALESCE", "1.0.0", "Replace the pending message with the same coalesce key")
