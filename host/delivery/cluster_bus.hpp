// The delivery layer's view of the other nodes (docs/cluster.md): what a publish on this
// node owes them. Implemented by host/cluster (Redis); the delivery layer knows nothing of
// Redis. Without a bus (no `cluster` in the config) every publish stays on this node.
#pragma once
#include <cstdint>
#include <functional>
#include <string>

namespace sf::delivery {

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
    virtual void send(const std::string& ns, const std::string& topic, const std::string& payloadJson, bool durable,
                      std::function<void(ClusterSend)> done) = 0;

    // publishTo a client this node does not hold: the node that holds it delivers.
    // `done` runs within sendTimeoutMs() (on the bus's thread).
    virtual void sendTo(const std::string& ns, const std::string& clientId, const std::string& topic,
                        const std::string& payloadJson, std::function<void(ClusterSend)> done) = 0;

    // A publish refused because of the link (counted and logged by the bus).
    virtual void refused(const std::string& ns, const std::string& topic, const std::string& why) = 0;

    virtual uint64_t sendTimeoutMs() const = 0;
};

}  // namespace sf::delivery
