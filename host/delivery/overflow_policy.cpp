#include "delivery/overflow_policy.hpp"

namespace sf::delivery {

OverflowPolicy::OverflowPolicy(plugins::PluginInstancePtr inst)
    : vt_(nullptr), instance_(nullptr), keepAlive_(inst) {
    if (!inst) throw plugins::PluginError("overflow policy: no plugin instance");
    if (inst->descriptor().kind != SF_KIND_OVERFLOW_POLICY)
        throw plugins::PluginError("plugin " + inst->name() + " is not an overflow-policy plugin");
    vt_ = inst->vtable<sf_overflow_policy_vtable>();
    if (!vt_ || vt_->struct_size < offsetof(sf_overflow_policy_vtable, on_enqueue) + sizeof(vt_->on_enqueue) ||
        !vt_->on_enqueue)
        throw plugins::PluginError("overflow-policy plugin " + inst->name() + " has no on_enqueue");
    instance_ = inst->handle();
    name_ = inst->name();
}

OverflowPolicy::OverflowPolicy(const sf_overflow_policy_vtable* vt, void* instance, std::string name,
                               std::shared_ptr<void> keepAlive)
    : vt_(vt), instance_(instance), name_(std::move(name)), keepAlive_(std::move(keepAlive)) {
    if (!vt_ || !vt_->on_enqueue) throw plugins::PluginError("overflow policy " + name_ + " has no on_enqueue");
}

int OverflowPolicy::onEnqueue(const sf_lane_view* lane, const sf_message_view* incoming, bool fits,
                              sf_policy_result* out) const {
    return vt_->on_enqueue(instance_, lane, incoming, fits ? 1 : 0, out);
}

}  // namespace sf::delivery
