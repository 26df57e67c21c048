// SPILL_TO_DISK: what does not fit in memory goes to the lane's storage backend.
#include <streamfence/plugin.hpp>

using namespace streamfence;

class Spill : public OverflowPolicy {
public:
    Spill(const Host&, const Options&) {}
    Verdict onEnqueue(Lane& lane, const Message&, bool fits) override {
        if (fits) return Verdict::accept();
        if (!lane.canSpill()) return Verdict::reject("SPILL_TO_DISK: no spill queue configured");
        return Verdict::spill("spilled to disk");
    }
};

STREAMFENCE_OVERFLOW_POLICY(Spill, "SPILL_TO_DISK", "1.0.0", "Spill messages that do not fit to the storage backend")
