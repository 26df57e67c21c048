// Connection-state recovery's directory (docs/recovery.md): every session of a server with
// recovery on, by its pid, so a reconnecting client finds its session on whichever loop
// holds it. While a session is detached (its client gone abnormally) this directory owns
// it; while attached, its socket does and the entry is only a reference, so a client that
// noticed a dead connection before the server did can still take its session over.
// Any thread (one mutex); the sessions themselves are touched only on their own loops.
#pragma once
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace sf::delivery {

class Session;
class LoopShard;

class HeldSessions {
public:
    struct Claim {
        std::shared_ptr<Session> session;  // kept alive by the claim until moved or reattached
        LoopShard* shard = nullptr;         // its loop
        std::string principal, connectToken, id;
        bool wasDetached = false;
    };

    // A new session (accepted on its loop, recovery on).
    void add(const std::string& pid, const std::shared_ptr<Session>& s, LoopShard* shard, size_t ns,
             const std::string& id, const std::string& principal, const std::string& token);
    // The session's client left abnormally: the directory keeps it alive from now on.
    void hold(const std::string& pid, const std::shared_ptr<Session>& s);
    // A reconnect named pid in namespace ns: the first claimant wins and the entry leaves the
    // directory (the winner re-adds it once attached). False: unknown, other namespace, or
    // already claimed.
    bool claim(const std::string& pid, size_t ns, Claim& out);
    // The hold timer fired: true (and the entry gone) only if it is still held by s.
    bool expire(const std::string& pid, const Session* s);
    // The session closed for good.
    void forget(const std::string& pid, const Session* s);
    // Shutdown: every held session, entries removed (the caller closes them on their loops).
    std::vector<std::shared_ptr<Session>> takeAllHeld();

    size_t heldCount() const;

private:
    struct Entry {
        std::weak_ptr<Session> ref;
        std::shared_ptr<Session> owner;  // set while detached
        LoopShard* shard = nullptr;
        size_t ns = 0;
        std::string id, principal, token;
    };
    mutable std::mutex mu_;
    std::unordered_map<std::string, Entry> entries_;
};

}  // namespace sf::delivery
