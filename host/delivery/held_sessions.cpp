#include "delivery/held_sessions.hpp"

namespace sf::delivery {

void HeldSessions::add(const std::string& pid, const std::shared_ptr<Session>& s, LoopShard* shard, size_t ns,
                       const std::string& id, const std::string& principal, const std::string& token) {
    std::lock_guard<std::mutex> lk(mu_);
    Entry& e = entries_[pid];
    e.ref = s;
    e.owner.reset();
    e.shard = shard;
    e.ns = ns;
    e.id = id;
    e.principal = principal;
    e.token = token;
}

void HeldSessions::hold(const std::string& pid, const std::shared_ptr<Session>& s) {
    std::lock_guard<std::mutex> lk(mu_);
    auto it = entries_.find(pid);
    if (it == entries_.end() || it->second.ref.lock() != s) return;
    it->second.owner = s;
}

bool HeldSessions::claim(const std::string& pid, size_t ns, Claim& out) {
    std::lock_guard<std::mutex> lk(mu_);
    auto it = entries_.find(pid);
    if (it == entries_.end() || it->second.ns != ns) return false;
    Entry& e = it->second;
    out.session = e.owner ? e.owner : e.ref.lock();
    if (!out.session) {
        entries_.erase(it);
        return false;
    }
    out.wasDetached = e.owner != nullptr;
    out.shard = e.shard;
    out.id = e.id;
    out.principal = e.principal;
    out.connectToken = e.token;
    entries_.erase(it);
    return true;
}

bool HeldSessions::expire(const std::string& pid, const Session* s) {
    std::lock_guard<std::mutex> lk(mu_);
    auto it = entries_.find(pid);
    if (it == entries_.end() || !it->second.owner || it->second.owner.get() != s) return false;
    entries_.erase(it);
    return true;
}

void HeldSessions::forget(const std::string& pid, const Session* s) {
    std::lock_guard<std::mutex> lk(mu_);
    auto it = entries_.find(pid);
    if (it == entries_.end()) return;
    auto cur = it->second.ref.lock();
    if (cur.get() == s || !cur) entries_.erase(it);
}

std::vector<std::shared_ptr<Session>> HeldSessions::takeAllHeld() {
    std::lock_guard<std::mutex> lk(mu_);
    std::vector<std::shared_ptr<Session>> out;
    for (auto it = entries_.begin(); it != entries_.end();) {
        if (it->second.owner) {
            out.push_back(std::move(it->second.owner));
            it = entries_.erase(it);
        } else {
            ++it;
        }
    }
    return out;
}

size_t HeldSessions::heldCount() const {
    std::lock_guard<std::mutex> lk(mu_);
    size_t n = 0;
    for (auto& kv : entries_)
        if (kv.second.owner) ++n;
    return n;
}

}  // namespace sf::delivery
