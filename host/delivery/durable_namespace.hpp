// Durable AT_LEAST_ONCE glue (docs/recovery.md): a namespace with `durable: true` gets a
// DurableJournal whose commits feed the topic logs, and the sessions it replays come back
// as held sessions, detached, their unacked messages in their lanes. The record* calls are
// the session events the journal must know; each is a no-op outside durable namespaces.
#pragma once
#include <cstdint>
#include <memory>

#include "delivery/core.hpp"

namespace sf::delivery {
class Session;
}

namespace sf::delivery::durable {

// Delivery's constructor, after the topic logs and shards exist and before the loops run:
// open and replay the journal under spillRootPath, resume topic offsets and messageIds past
// what it holds, rebuild its sessions as held ones, start the writer. Throws on an unusable
// directory.
void openNamespace(const std::shared_ptr<Core>& core, NamespaceRuntime& ns);
// The directory a namespace's journal lives in.
std::string journalDir(const config::ServerConfig& server, const config::NamespaceConfig& ns);

void recordOpen(const Session& s);
void recordSubscribe(const Session& s, size_t topic);  // call right after the lane is created
void recordUnsubscribe(const Session& s, size_t topic);
// The lane is done with offsets [first, last]: acked, retried out, or refused by its overflow
// policy (never to be sent: the journal can drop them and a restart does not send them).
void recordDone(const Session& s, size_t topic, uint64_t first, uint64_t last);
void recordEnd(const Session& s);

}  // namespace sf::delivery::durable
