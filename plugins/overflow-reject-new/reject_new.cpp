// REJECT_NEW: when the lane is full, the incoming message is dropped for this subscriber.
#include <streamfence/plugin.hpp>

using namespace streamfence;

class RejectNew : public OverflowPolicy {
public:
    static constexpr uint32_t when = SF_POLICY_ON_OVERFLOW | SF_POLICY_BATCH_REJECT_NEW;
    RejectNew(const Host&, const Options&) {}
    Verdict onEnqueue(Lane&, const Message&, bool fits) override {
        return fits ? Verdict::accept() : Verdict::reject("queue full with REJECT_NEW");
    }
};

STREAMFENCE_OVERFLOW_POLICY(RejectNew, "REJECT_NEW", "1.0.0", "Reject the incoming message when the lane is full")
