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
