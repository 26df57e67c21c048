// This node's part in a cluster of streamfenced nodes over Redis (docs/cluster.md): the
// ClusterBus the delivery layer publishes through, and a delivery Listener that learns
// which topics have local subscribers and which clients live here.
//
// Threads: every Redis connection lives on the node's own "redis" event loop thread (plus a
// resolver thread for DNS). The delivery layer's calls (send, sendTo, listener callbacks)
// only post there; nothing here blocks an I/O loop. Messages from other nodes are handed to
// Delivery::publishLocal / publishToLocal from the redis thread.
#pragma once
#include <memory>
#include <string>

#include "config/config.hpp"
#include "common/metric_sample.hpp"
#include "delivery/cluster_bus.hpp"
#include "delivery/listener.hpp"

namespace sf::delivery {
class Delivery;
}

namespace sf::cluster {

class ClusterNode : public delivery::ClusterBus, public delivery::Listener {
public:
    // The delivery must outlive stop().
    ClusterNode(const config::ClusterConfig& cfg, const config::ServerConfig& server, delivery::Delivery& delivery);
    ~ClusterNode() override;

    void start();  // connects in the background; publishes are refused until the link is up
    void stop();   // leaves the cluster (best effort, bounded) and joins the threads

    const std::string& nodeId() const;
    std::string healthJson() const;           // the "cluster" object of GET /health
    // Redis link state ("UP", "DOWN", ...) and the node ids seen, for the dashboard.
    std::string linkState(std::vector<std::string>* nodesSeen) const;
    void appendMetrics(MetricSnapshot& out) const;  // streamfence_cluster_*

    // ClusterBus
    bool linkUp() const override;
    void send(const std::string& ns, const std::string& topic, const std::string& payloadJson, const std::string& messageId,
              bool durable, bool deliveredHere, std::function<void(delivery::ClusterSend)> done) override;
    void sendTo(const std::string& ns, const std::string& clientId, const std::string& topic, const std::string& payloadJson,
                std::function<void(delivery::ClusterSend)> done) override;
    void refused(const std::string& ns, const std::string& topic, const std::string& why) override;
    uint64_t sendTimeoutMs() const override;
    std::string messageIdTag() const override;
    void storeSessions(std::vector<delivery::RemoteSessionRecord> records, uint64_t ttlMs) override;
    uint64_t sessionSyncMs() const override;
    void dropSession(const std::string& pid) override;
    void claimSession(const std::string& pid, const std::string& ns,
                      std::function<void(bool, delivery::RemoteSessionRecord)> done) override;
    void gatherMissed(const delivery::RemoteSessionRecord& record, std::function<void(delivery::HandOver)> done) override;
    void whenReceiving(const std::string& ns, const std::string& topic, std::function<void()> ready) override;

    // Listener
    void onClientConnected(const delivery::ClientConnectedEvent& e) override;
    void onClientDisconnected(const delivery::ClientDisconnectedEvent& e) override;
    void onSubscribed(const delivery::SubscribedEvent& e) override;
    // A detached session (docs/recovery.md) keeps its lanes: this node keeps receiving its
    // topics until the session expires.
    void onSessionDetached(const delivery::SessionDetachedEvent&) override {}
    void onSessionExpired(const delivery::SessionExpiredEvent& e) override {
        onClientDisconnected(delivery::ClientDisconnectedEvent{e.ns, e.clientId, "recovery expired"});
    }
    void onUnsubscribed(const delivery::UnsubscribedEvent& e) override;

    struct Impl;

private:
    std::shared_ptr<Impl> impl_;
};

}  // namespace sf::cluster
