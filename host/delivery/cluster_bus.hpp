// The delivery layer's view of the other nodes (docs/cluster.md): what a publish on this
// node owes them. Implemented by host/cluster (Redis); the delivery layer knows nothing of
// Redis. Without a bus (no `cluster` in the config) every publish stays on this node.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace sf::delivery {

// Recovery across nodes (docs/cluster.md "Recovery across nodes").
// What other nodes need to recover a session whose node is gone: written by the owning
// node, refreshed while the session lives, kept maxDisconnectionDurationMs after that.
struct RemoteSessionRecord {
    std::string pid, node, ns, id, principal;
    // Subscribed topics, each with its AT_LEAST_ONCE replay floor in the topic's stream:
    // "<entry id>" (that entry and after), "(<entry id>" (after it), "t<wall ms>" (entries
    // appended since then); empty for BEST_EFFORT topics.
    std::vector<std::pair<std::string, std::string>> topics;
};

// A message a session held, as it crosses nodes.
struct HandedMessage {
    std::string topic, messageId, streamId, payloadJson;
    std::vector<std::string> attachments;
    uint32_t retries = 0;
};

// What a recovering node gathers for a claimed session: the previous owner's lanes and
// replay history (when that node is alive and answers), and the AT_LEAST_ONCE stream
// entries after each topic's floor.
struct HandOver {
    bool ownerAnswered = false;  // the previous node handed its state over
    bool ownerHeld = false;      // ... and still held the session
    std::vector<HandedMessage> pending;   // lane entries, in lane order per topic
    std::vector<HandedMessage> history;   // BEST_EFFORT sent, not confirmed, oldest first
    std::vector<HandedMessage> replay;    // stream entries after the floors, per topic in stream order
    uint64_t spillLost = 0;               // spilled on the previous node: not carried over
};

enum class ClusterSend {
    Ok,             // handed on (BEST_EFFORT) or appended to the topic's stream (AT_LEAST_ONCE)
    Unavailable,    // the link to the other nodes is down or did not answer in time
    UnknownClient,  // sendTo: no live node holds the client
    NotSubscribed,  // sendTo: the node holding it says it is not subscribed to the topic
    Refused,        // sendTo: the node holding it refused (overloaded, stopping)
};

class ClusterBus {
public:
    virtual ~ClusterBus() = default;

    // False while this node cannot reach the others: a publish that must cross nodes is
    // then refused (PublishStatus::ClusterUnavailable), never queued or lost silently.
    virtual bool linkUp() const = 0;

    // A message this node accepted for ns/topic, for the other nodes, in call order.
    // durable (AT_LEAST_ONCE): `done` runs once the append is confirmed or has failed,
    // within sendTimeoutMs() (on the bus's thread). Otherwise `done` may be empty and the
    // message goes out best effort.
    // messageId: the id every node gives the message (one id cluster-wide, so a session
    // moved between nodes can tell what it already has). deliveredHere: this node delivered
    // it already (BEST_EFFORT, durable namespaces); otherwise this node delivers it from
    // the stream like the others.
    virtual void send(const std::string& ns, const std::string& topic, const std::string& payloadJson,
                      const std::string& messageId, bool durable, bool deliveredHere, std::function<void(ClusterSend)> done) = 0;

    // publishTo a client this node does not hold: the node that holds it delivers.
    // `done` runs within sendTimeoutMs() (on the bus's thread).
    virtual void sendTo(const std::string& ns, const std::string& clientId, const std::string& topic,
                        const std::string& payloadJson, std::function<void(ClusterSend)> done) = 0;

    // A publish refused because of the link (counted and logged by the bus).
    virtual void refused(const std::string& ns, const std::string& topic, const std::string& why) = 0;

    virtual uint64_t sendTimeoutMs() const = 0;

    // A short tag unique to this node's run: messageIds are "msg-<tag>-<n>" cluster-wide.
    virtual std::string messageIdTag() const = 0;

    // A local client just subscribed ns/topic (after the Listener's onSubscribed). `ready`
    // runs, on the bus's thread, once this node receives what the other nodes publish to the
    // topic from now on: Redis has confirmed the topic's channel (BEST_EFFORT; AT_LEAST_ONCE
    // streams are read from the subscribe time anyway). At once when the link is down, after
    // sendTimeoutMs() at most. So `subscribed` means "from now on, cluster-wide".
    virtual void whenReceiving(const std::string& ns, const std::string& topic, std::function<void()> ready) = 0;

    // ---- recovery across nodes (docs/cluster.md); `done` callbacks run on the bus's thread.
    // Write (or refresh) these sessions' records, owned by this node, kept ttlMs.
    virtual void storeSessions(std::vector<RemoteSessionRecord> records, uint64_t ttlMs) = 0;
    // How often each loop writes the records of its sessions that changed.
    virtual uint64_t sessionSyncMs() const = 0;
    // The session ended for good here: its record goes (unless another node owns it now).
    virtual void dropSession(const std::string& pid) = 0;
    // A reconnect named a pid this node does not hold: take the record (first claimant wins).
    virtual void claimSession(const std::string& pid, const std::string& ns,
                              std::function<void(bool found, RemoteSessionRecord)> done) = 0;
    // The claimed session's lanes are open here: gather what the client missed (previous
    // owner's hand-over, stream entries after the floors). Bounded by sendTimeoutMs().
    virtual void gatherMissed(const RemoteSessionRecord& record, std::function<void(HandOver)> done) = 0;
};

}  // namespace sf::delivery
