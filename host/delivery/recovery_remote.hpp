// Connection-state recovery across cluster nodes (docs/cluster.md "Recovery across
// nodes"): a reconnect naming a pid this node does not hold claims the session's record
// from Redis, opens its lanes here, and gathers what the client missed — the previous
// node's lanes and replay history when that node is alive, the AT_LEAST_ONCE stream
// entries after each topic's floor either way — before answering the CONNECT.
#pragma once
#include <functional>
#include <memory>
#include <string>

#include "delivery/recovery.hpp"

namespace sf::delivery::recovery {

// Cluster mode only. True: the claim is under way and ends in `done` (recovered) or in
// `fresh` (no record: the caller's usual new session), both on s's loop. False: nothing to
// claim (no bus, no pid), call fresh yourself.
bool restoreRemote(const std::shared_ptr<Core>& core, NamespaceRuntime& ns, const sio::SocketPtr& s,
                   const std::string& token, const Done& done, std::function<void()> fresh);

}  // namespace sf::delivery::recovery
