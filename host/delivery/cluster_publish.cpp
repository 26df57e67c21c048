// The delivery side of cluster mode (docs/cluster.md): every publish is delivered on this
// node directly and handed to the ClusterBus for the others. Refusals are visible: while the
// bus cannot reach the other nodes nothing is queued for later.
#include <chrono>
#include <future>

#include "common/log.hpp"
#include "delivery/core.hpp"
#include "delivery/delivery.hpp"
#include "delivery/loop_shard.hpp"

namespace sf::delivery {

bool Core::onLoopThread() const {
    for (auto& s : shards)
        if (s->loop().inLoopThread()) return true;
    return false;
}

void Core::publishAcross(NamespaceRuntime& ns, size_t topic, const json::Value& payload, net::EventLoop* replyOn,
                         std::function<void(PublishStatus)> done) {
    if (!bus) {
        done(publishParsed(ns, topic, payload));
        return;
    }
    if (!bus->linkUp()) {
        refused(ns, topic, PublishStatus::ClusterUnavailable);
        bus->refused(ns.path(), ns.topic(topic), "redis link down");
        done(PublishStatus::ClusterUnavailable);
        return;
    }
    // One messageId on every node (docs/cluster.md): a session moved between nodes tells
    // by it what it already has.
    std::string id = nextMessageId();
    if (!ns.ackRequired || ns.journal) {
        // This node first: its subscribers never wait for Redis. A refusal here (Overloaded,
        // Stopping) sends nothing anywhere.
        PublishStatus st = publishParsed(ns, topic, payload, id);
        if (st != PublishStatus::Ok) {
            done(st);
            return;
        }
        if (!ns.ackRequired) {
            bus->send(ns.path(), ns.topic(topic), payload.dump(), id, false, true, nullptr);
            done(PublishStatus::Ok);
            return;
        }
    } else if (stopping.load(std::memory_order_relaxed)) {
        refused(ns, topic, PublishStatus::Stopping);
        done(PublishStatus::Stopping);
        return;
    }
    // AT_LEAST_ONCE: accepted only once the topic's stream holds it. Every node, this one
    // included, delivers it from the stream, so each delivery knows its stream entry: the
    // replay floor a session recovering on another node starts from (docs/cluster.md).
    std::weak_ptr<Core> weak = weak_from_this();
    NamespaceRuntime* nsp = &ns;
    bus->send(ns.path(), ns.topic(topic), payload.dump(), id, true, ns.journal != nullptr,
              [weak, nsp, topic, replyOn, done = std::move(done)](ClusterSend r) mutable {
                  auto core = weak.lock();
                  const PublishStatus s = r == ClusterSend::Ok ? PublishStatus::Ok : PublishStatus::ClusterUnavailable;
                  if (core && s != PublishStatus::Ok) {
                      core->refused(*nsp, topic, s);
                      if (core->bus) core->bus->refused(nsp->path(), nsp->topic(topic), "stream append failed");
                  }
                  if (replyOn) replyOn->post([done = std::move(done), s] { done(s); });
                  else done(s);
              });
}

namespace {

// Wait for a bus answer at most its own timeout plus a margin: the bus answers every send
// within its timeout, the margin only covers thread hand-offs.
template <class T>
bool waitFor(std::future<T>& f, uint64_t busTimeoutMs) {
    return f.wait_for(std::chrono::milliseconds(busTimeoutMs + 1000)) == std::future_status::ready;
}

}  // namespace

PublishStatus Core::publishAcrossSync(NamespaceRuntime& ns, size_t topic, const json::Value& payload) {
    if (!bus) return publishParsed(ns, topic, payload);
    if (ns.ackRequired && onLoopThread()) {
        // Waiting for Redis here would stall every connection of this loop.
        log::warn("cluster_publish_on_loop_thread", {{"namespace", ns.path()}, {"topic", ns.topic(topic)},
                                                     {"effect", "refused: an AT_LEAST_ONCE publish must wait for Redis"}});
        refused(ns, topic, PublishStatus::ClusterUnavailable);
        return PublishStatus::ClusterUnavailable;
    }
    auto p = std::make_shared<std::promise<PublishStatus>>();
    auto f = p->get_future();
    publishAcross(ns, topic, payload, nullptr, [p](PublishStatus s) { p->set_value(s); });
    if (!waitFor(f, bus->sendTimeoutMs())) return PublishStatus::ClusterUnavailable;
    return f.get();
}

PublishStatus Core::sendToSync(NamespaceRuntime& ns, size_t topic, const std::string& clientId, const json::Value& payload) {
    if (!bus->linkUp()) {
        refused(ns, topic, PublishStatus::ClusterUnavailable);
        bus->refused(ns.path(), ns.topic(topic), "redis link down");
        return PublishStatus::ClusterUnavailable;
    }
    if (stopping.load(std::memory_order_relaxed)) return PublishStatus::Stopping;
    if (onLoopThread()) {
        log::warn("cluster_publish_on_loop_thread", {{"namespace", ns.path()}, {"topic", ns.topic(topic)},
                                                     {"effect", "refused: publishTo another node must wait for Redis"}});
        refused(ns, topic, PublishStatus::ClusterUnavailable);
        return PublishStatus::ClusterUnavailable;
    }
    auto p = std::make_shared<std::promise<ClusterSend>>();
    auto f = p->get_future();
    bus->sendTo(ns.path(), clientId, ns.topic(topic), payload.dump(), [p](ClusterSend r) { p->set_value(r); });
    ClusterSend r = waitFor(f, bus->sendTimeoutMs()) ? f.get() : ClusterSend::Unavailable;
    switch (r) {
        case ClusterSend::Ok: return PublishStatus::Ok;
        case ClusterSend::UnknownClient: return PublishStatus::UnknownClient;
        case ClusterSend::NotSubscribed: return PublishStatus::NotSubscribed;
        case ClusterSend::Refused: return PublishStatus::Overloaded;
        case ClusterSend::Unavailable: break;
    }
    refused(ns, topic, PublishStatus::ClusterUnavailable);
    bus->refused(ns.path(), ns.topic(topic), "publishTo another node failed");
    return PublishStatus::ClusterUnavailable;
}

void Delivery::setClusterBus(std::shared_ptr<ClusterBus> bus) {
    if (bus) core_->messageIdPrefix = "msg-" + bus->messageIdTag() + "-";
    core_->bus = std::move(bus);
}

PublishStatus Delivery::publishLocal(const std::string& ns, const std::string& topic, const std::string& payloadJson,
                                     const std::string& messageId, const std::string& streamId) {
    NamespaceRuntime* n = core_->findNamespace(ns);
    if (!n) return PublishStatus::UnknownNamespace;
    long t = n->findTopic(topic);
    if (t < 0) return PublishStatus::UnknownTopic;
    json::Value v;
    std::string err;
    if (!json::tryParse(payloadJson, v, err)) return PublishStatus::InvalidPayload;
    std::vector<std::string> attachments;
    std::string body = wirePayload(v, attachments);
    return core_->publishParsed(*n, static_cast<size_t>(t), v, messageId, std::move(body), std::move(attachments), streamId);
}

}  // namespace sf::delivery
