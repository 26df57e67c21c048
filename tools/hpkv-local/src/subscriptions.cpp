#include "subscriptions.hpp"

#include "json_util.hpp"
#include "tokens.hpp"

#include <algorithm>
#include <chrono>

namespace hpkv {

void SubscriptionHub::add(const std::shared_ptr<Subscriber>& s) {
    std::lock_guard<std::mutex> lk(mu_);
    subs_.push_back(s);
}

void SubscriptionHub::remove(const Subscriber* s) {
    std::lock_guard<std::mutex> lk(mu_);
    subs_.erase(std::remove_if(subs_.begin(), subs_.end(), [s](const auto& p) { return p.get() == s; }), subs_.end());
}

void SubscriptionHub::replace(const Subscriber* old, const std::shared_ptr<Subscriber>& now) {
    std::lock_guard<std::mutex> lk(mu_);
    for (auto& p : subs_)
        if (p.get() == old) p = now;
}

void EarlySubscriber::deliver(const std::string& frame) {
    std::lock_guard<std::mutex> lk(mu_);
    if (target_) return target_->deliver(frame);
    // The gap lasts one upgrade answer; the cap only guards against a stuck write.
    if (heldBytes_ + frame.size() > kMaxHeldBytes) return;
    heldBytes_ += frame.size();
    held_.push_back(frame);
}

void EarlySubscriber::attach(const std::shared_ptr<Subscriber>& s) {
    std::lock_guard<std::mutex> lk(mu_);
    for (const auto& f : held_) s->deliver(f);
    held_.clear();
    heldBytes_ = 0;
    target_ = s;
}

std::size_t SubscriptionHub::count() const {
    std::lock_guard<std::mutex> lk(mu_);
    return subs_.size();
}

void SubscriptionHub::notify(const std::string& key, const std::string* value) {
    std::lock_guard<std::mutex> lk(mu_);
    if (subs_.empty()) return;
    std::string frame;  // built lazily: most writes match nobody
    for (const auto& s : subs_) {
        bool match = false;
        for (const auto& p : s->patterns())
            if (globMatch(p, key)) { match = true; break; }
        if (!match) continue;
        if (frame.empty()) {
            using namespace std::chrono;
            auto ms = duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
            frame = "{\"type\":\"notification\",\"key\":" + jsonString(key) + ",\"value\":" +
                    (value ? jsonString(*value) : std::string("null")) + ",\"timestamp\":" + std::to_string(ms) + "}";
        }
        s->deliver(frame);
    }
}

}  // namespace hpkv
