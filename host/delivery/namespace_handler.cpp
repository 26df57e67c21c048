#include "delivery/namespace_handler.hpp"

#include <cctype>

#include "common/log.hpp"
#include "common/log_throttle.hpp"
#include "delivery/durable_journal.hpp"
#include "delivery/durable_namespace.hpp"
#include "delivery/loop_shard.hpp"
#include "delivery/recovery.hpp"
#include "delivery/recovery_remote.hpp"
#include "delivery/session.hpp"

namespace sf::delivery {

namespace {

using json::Value;
using Obj = json::Value::Object;

constexpr const char* kUnknownTopic = "UNKNOWN_TOPIC";
constexpr const char* kAuthRejected = "AUTH_REJECTED";
constexpr const char* kAuthExpired = "AUTH_EXPIRED";
constexpr const char* kTransportRejected = "TRANSPORT_REJECTED";
constexpr const char* kInvalidPayload = "INVALID_PAYLOAD";
constexpr const char* kOverloaded = "OVERLOADED";
constexpr const char* kRateLimited = "RATE_LIMITED";
constexpr const char* kClusterUnavailable = "CLUSTER_UNAVAILABLE";
constexpr const char* kHandlerFailed = "HANDLER_FAILED";
constexpr const char* kSubscriptionLimit = "SUBSCRIPTION_LIMIT";
log::Throttle gSubscriptionLimitLog;

// A client-supplied name as it appears in an error text: long names are cut, so a client
// cannot make the server echo back a megabyte.
std::string shown(const std::string& name) {
    constexpr size_t kMax = 128;
    if (name.size() <= kMax) return name;
    size_t cut = kMax;
    // Never split a UTF-8 sequence: clients reject text frames with invalid UTF-8.
    while (cut > 0 && (static_cast<unsigned char>(name[cut]) & 0xC0) == 0x80) --cut;
    return name.substr(0, cut) + "... (" + std::to_string(name.size()) + " bytes)";
}

// A client that keeps earning errors (100,000 subscribes to unknown topics, say) costs an
// answer each; past maxClientErrorsPerMinute in one window it is disconnected, logged and
// counted (conf/README.md).
void countError(Session& s) {
    const int cap = s.core->cfg.maxClientErrorsPerMinute;
    if (cap <= 0 || s.closed || !s.socket) return;
    constexpr uint64_t kWindowMs = 60000;
    const uint64_t now = net::monotonicMs();
    if (s.errorsInWindow == 0 || now - s.errorWindowStartMs >= kWindowMs) {
        s.errorWindowStartMs = now;
        s.errorsInWindow = 0;
    }
    if (++s.errorsInWindow <= static_cast<uint64_t>(cap)) return;
    s.ns.nsMetrics->errorLimited.fetch_add(1, std::memory_order_relaxed);
    log::warn("client_error_limit", {{"namespace", s.ns.path()}, {"client", s.id}, {"remote", s.remote},
                                     {"errors", std::to_string(s.errorsInWindow)},
                                     {"limitPerMinute", std::to_string(cap)},
                                     {"count", std::to_string(s.ns.nsMetrics->errorLimited.load(std::memory_order_relaxed))}});
    s.socket->disconnect();
}

void fail(Session& s, const sio::AckFn& ack, const std::string& code, const std::string& message) {
    if (ack) {
        ack(sio::Args{Value(Obj{{"ok", Value(false)}, {"code", Value(code)}, {"message", Value(message)}})});
    } else if (s.socket) {
        s.socket->emit("error", sio::Args{Value(Obj{{"code", Value(code)}, {"message", Value(message)}})});
    }
    countError(s);
}

// Confirmations go out as events whether or not the client asked for an ack (clients of
// the streamfence-js protocol listen for them); the ack, when asked for, comes first.
void succeed(Session& s, const sio::AckFn& ack, const char* confirmEvent, const std::string& topic) {
    if (ack) ack(sio::Args{Value(Obj{{"ok", Value(true)}})});
    if (confirmEvent && s.socket) s.socket->emit(confirmEvent, sio::Args{Value(Obj{{"topic", Value(topic)}})});
}

bool blank(const std::string& s) {
    for (char c : s)
        if (!std::isspace(static_cast<unsigned char>(c))) return false;
    return true;
}

// The `topic` of an event payload; false (with the message for INVALID_PAYLOAD) otherwise.
bool readTopic(const Value& p, const char* event, std::string& topic, std::string& error) {
    if (!p.isObject()) {
        error = std::string(event) + " payload must be an object";
        return false;
    }
    const Value* t = p.find("topic");
    if (!t || !t->isString() || blank(t->asString())) {
        error = "topic must be a non-empty string";
        return false;
    }
    if (const Value* tok = p.find("token")) {
        if (!tok->isString() && !tok->isNull()) {
            error = "token must be a string";
            return false;
        }
    }
    topic = t->asString();
    return true;
}

Value connectError(const std::string& code, const std::string& reason) {
    return Value(Obj{{"message", Value(code + ": " + reason)}, {"data", Value(Obj{{"code", Value(code)}, {"message", Value(reason)}})}});
}

uint64_t delayUntil(int64_t wallMs) {
    int64_t now = static_cast<int64_t>(wallClockMs());
    return wallMs > now ? static_cast<uint64_t>(wallMs - now) : 0;
}

}  // namespace

DeliveryNamespaceHandler::DeliveryNamespaceHandler(std::shared_ptr<Core> core, NamespaceRuntime& ns)
    : core_(std::move(core)), ns_(ns) {}

// ------------------------------------------------------------------ connect / disconnect

void DeliveryNamespaceHandler::onConnect(const sio::SocketPtr& s, std::function<void(bool, json::Value)> done) {
    if (!core_->shardFor(s->loop())) {
        log::error("delivery_unknown_loop", {{"namespace", ns_.path()}, {"loop", s->loop().name()}});
        done(false, Value(Obj{{"message", Value("Server not ready")}}));
        return;
    }
    if (!ns_.authRequired) {
        accept(s, "", TokenCheck{true, 0, "", ""}, done);
        return;
    }
    const std::string remote = s->remoteAddress();
    const std::string ip = AuthRateLimiter::ipOf(remote);
    if (core_->limiter.isLimited(ip, net::monotonicMs())) {
        ns_.nsMetrics->authRateLimited.fetch_add(1, std::memory_order_relaxed);
        core_->notify([&](Listener& l) { l.onAuthRejected(AuthRejectedEvent{ns_.path(), s->id(), remote, kRateLimited}); });
        done(false, connectError(kRateLimited, "Too many authentication failures"));
        return;
    }
    auto rejectConnect = [core = core_, &ns = ns_, id = s->id(), remote, ip, done](const std::string& reason) {
        core->limiter.recordFailure(ip, net::monotonicMs());
        ns.nsMetrics->authRejected.fetch_add(1, std::memory_order_relaxed);
        core->notify([&](Listener& l) { l.onAuthRejected(AuthRejectedEvent{ns.path(), id, remote, reason}); });
        done(false, connectError(kAuthRejected, reason));
    };
    std::string token = connectToken(*s);
    if (token.empty()) {
        rejectConnect("Missing token");
        return;
    }
    auto self = shared_from_this();
    core_->validate(s->loop(), token, ns_, "", "connect", remote, [self, s, token, done, rejectConnect](TokenCheck r) {
        if (r.accepted && r.expiresAtMs > 0 && delayUntil(r.expiresAtMs) == 0) {
            r.accepted = false;
            r.reason = "Token expired";
        }
        if (!r.accepted) rejectConnect(r.reason);
        else self->accept(s, token, r, done);
    });
}

void DeliveryNamespaceHandler::accept(const sio::SocketPtr& s, const std::string& token, const TokenCheck& check,
                                      const std::function<void(bool, json::Value)>& done) {
    // A reconnect naming a session still known gets it back (docs/recovery.md), from
    // another node in a cluster (docs/cluster.md); the token was checked above like any
    // connect's.
    if (core_->cfg.recovery.enabled) {
        if (recovery::restore(core_, ns_, s, done)) return;
        auto self = shared_from_this();
        if (recovery::restoreRemote(core_, ns_, s, token, done, [self, s, token, check, done] { self->acceptFresh(s, token, check, done); }))
            return;
    }
    acceptFresh(s, token, check, done);
}

void DeliveryNamespaceHandler::acceptFresh(const sio::SocketPtr& s, const std::string& token, const TokenCheck& check,
                                           const std::function<void(bool, json::Value)>& done) {
    LoopShard* shard = core_->shardFor(s->loop());
    auto session = std::make_shared<Session>(core_, ns_, *shard, *s);
    session->connectToken = token;
    session->principal = check.principal;
    s->userData = std::make_shared<SessionHolder>(session);
    shard->addSession(session.get());
    core_->registerClient(ns_.index, session->id, shard);
    Value answer = Value::object();
    if (core_->cfg.recovery.enabled) {
        session->pid = recovery::newPid();
        core_->held.add(session->pid, session, shard, ns_.index, session->id, session->principal, token);
        answer.set("pid", session->pid);
        durable::recordOpen(*session);
        shard->sessionsChanged();
    }
    done(true, std::move(answer));
    if (!s->connected()) {
        // The client left while an async token check ran: the protocol dropped our answer
        // and will not report a disconnect, so undo quietly.
        s->userData.reset();
        session->close("left before connect");
        return;
    }
    ns_.nsMetrics->connections.fetch_add(1, std::memory_order_relaxed);
    ns_.nsMetrics->active.fetch_add(1, std::memory_order_relaxed);
    if (check.expiresAtMs > 0) {
        // No "valid forever" sockets: the connect token's expiry ends the connection.
        std::weak_ptr<Session> weak = session;
        session->expiryTimer = shard->loop().addTimer(delayUntil(check.expiresAtMs), [weak] {
            auto ss = weak.lock();
            if (!ss || ss->closed || !ss->socket) return;
            ss->expiryTimer = 0;
            ss->socket->emit("error", sio::Args{Value(Obj{{"code", Value(kAuthExpired)}, {"message", Value("Token expired")}})});
            ss->socket->disconnect();
        });
    }
    const std::string transport = s->isWebsocket() ? "websocket" : "polling";
    core_->notify([&](Listener& l) {
        l.onClientConnected(ClientConnectedEvent{ns_.path(), session->id, transport, session->principal, session->remote});
    });
}

void DeliveryNamespaceHandler::onDisconnect(const sio::SocketPtr& s, const std::string& reason) {
    auto session = SessionHolder::of(*s);
    if (!session) return;  // never accepted
    const bool wasOpen = !session->closed;
    if (wasOpen && !session->pid.empty() && recovery::isAbnormal(reason) && !core_->stopping.load()) {
        // Held for the client's return (docs/recovery.md): lanes keep taking publishes.
        recovery::hold(*core_, session, s->messagesConfirmed());
        s->userData.reset();  // the holder lets a detached session be
        ns_.nsMetrics->disconnections.fetch_add(1, std::memory_order_relaxed);
        ns_.nsMetrics->active.fetch_sub(1, std::memory_order_relaxed);
        core_->notify([&](Listener& l) { l.onSessionDetached(SessionDetachedEvent{ns_.path(), session->id, reason}); });
        return;
    }
    session->close(reason);
    s->userData.reset();
    if (!wasOpen) return;
    ns_.nsMetrics->disconnections.fetch_add(1, std::memory_order_relaxed);
    ns_.nsMetrics->active.fetch_sub(1, std::memory_order_relaxed);
    core_->notify([&](Listener& l) { l.onClientDisconnected(ClientDisconnectedEvent{ns_.path(), session->id, reason}); });
}

void DeliveryNamespaceHandler::onDrain(const sio::SocketPtr& s) {
    auto session = SessionHolder::of(*s);
    if (session && !session->closed) session->pumpAll();
}

// ------------------------------------------------------------------ events

void DeliveryNamespaceHandler::onEvent(const sio::SocketPtr& s, const std::string& event, sio::Args& args, sio::AckFn ack) {
    auto session = SessionHolder::of(*s);
    if (!session || session->closed) return;
    Value payload = args.empty() ? Value() : std::move(args[0]);
    if (session->busy) {
        // An async token check is pending: keep this event behind it.
        auto self = shared_from_this();
        session->deferred.push_back([self, session, event, payload = std::move(payload), ack] {
            self->handle(session, event, payload, ack);
        });
        return;
    }
    handle(session, event, payload, ack);
}

void DeliveryNamespaceHandler::handle(const std::shared_ptr<Session>& session, const std::string& event,
                                      const json::Value& payload, const sio::AckFn& ack) {
    if (event == "subscribe") onSubscribe(session, payload, ack);
    else if (event == "unsubscribe") onUnsubscribe(session, payload, ack);
    else if (event == "ack") onAck(session, payload, ack);
    else if (event == "publish") onPublish(session, payload, ack);
    else log::debug("client_event_ignored", {{"namespace", ns_.path()}, {"client", session->id}, {"event", event}});
}

void DeliveryNamespaceHandler::authorize(const std::shared_ptr<Session>& session, const json::Value& p,
                                         const std::string& topic, const char* action, const sio::AckFn& ack,
                                         std::function<void(const TokenCheck&, bool fromPayload)> then) {
    if (!ns_.authRequired) {
        then(TokenCheck{true, 0, session->principal, ""}, false);
        return;
    }
    const bool isPublish = std::string(action) == "publish";
    auto reject = [self = shared_from_this(), session, ack, topic, isPublish](const char* code, const std::string& reason) {
        fail(*session, ack, code, reason);
        if (isPublish)
            self->core_->notify([&](Listener& l) { l.onPublishRejected(PublishRejectedEvent{self->ns_.path(), session->id, topic, code, reason}); });
    };
    const std::string ip = AuthRateLimiter::ipOf(session->remote);
    if (core_->limiter.isLimited(ip, net::monotonicMs())) {
        ns_.nsMetrics->authRateLimited.fetch_add(1, std::memory_order_relaxed);
        core_->notify([&](Listener& l) { l.onAuthRejected(AuthRejectedEvent{ns_.path(), session->id, session->remote, kRateLimited}); });
        reject(kRateLimited, "Too many authentication failures");
        return;
    }
    auto failed = [self = shared_from_this(), session, ip, reject](const std::string& reason) {
        self->core_->limiter.recordFailure(ip, net::monotonicMs());
        self->ns_.nsMetrics->authRejected.fetch_add(1, std::memory_order_relaxed);
        self->core_->notify([&](Listener& l) { l.onAuthRejected(AuthRejectedEvent{self->ns_.path(), session->id, session->remote, reason}); });
        reject(kAuthRejected, reason);
    };
    std::string ptoken = payloadToken(p);
    const bool fromPayload = !ptoken.empty();
    std::string token = fromPayload ? ptoken : session->connectToken;
    if (token.empty()) {
        failed("Missing token");
        return;
    }
    session->busy = true;
    core_->validate(session->shard.loop(), token, ns_, topic, action, session->remote,
                    [session, fromPayload, failed, then = std::move(then)](TokenCheck r) {
                        session->busy = false;
                        if (session->closed) return;
                        if (r.accepted && r.expiresAtMs > 0 && delayUntil(r.expiresAtMs) == 0) {
                            r.accepted = false;
                            r.reason = "Token expired";
                        }
                        if (!r.accepted) failed(r.reason);
                        else then(r, fromPayload);
                        session->runDeferred();
                    });
}

void DeliveryNamespaceHandler::onSubscribe(const std::shared_ptr<Session>& session, const json::Value& p, const sio::AckFn& ack) {
    std::string topic, err;
    if (!readTopic(p, "subscribe", topic, err)) return fail(*session, ack, kInvalidPayload, err);
    long idx = ns_.findTopic(topic);
    if (idx < 0) return fail(*session, ack, kUnknownTopic, "Unknown topic: " + shown(topic));
    if (!ns_.cfg.allowPolling && !(session->socket && session->socket->isWebsocket()))
        return fail(*session, ack, kTransportRejected, "Topic requires websocket-capable transport");
    // limits.maxSubscriptionsPerClient: a new topic past the cap is refused (and counts as an
    // error answer toward maxClientErrorsPerMinute).
    const size_t cap = static_cast<size_t>(core_->cfg.limits.maxSubscriptionsPerClient);
    if (!session->subscription(static_cast<size_t>(idx)) && session->topicCount >= cap) {
        const uint64_t n = ns_.nsMetrics->subscriptionLimited.fetch_add(1, std::memory_order_relaxed) + 1;
        uint64_t suppressed = 0;
        if (gSubscriptionLimitLog.allow(suppressed))
            log::warn("subscription_limit", {{"namespace", ns_.path()}, {"client", session->id}, {"remote", session->remote},
                                             {"limit", std::to_string(cap)}, {"count", std::to_string(n)},
                                             {"suppressed", std::to_string(suppressed)}});
        return fail(*session, ack, kSubscriptionLimit,
                    "Too many subscriptions (at most " + std::to_string(cap) + " topics per client)");
    }
    auto self = shared_from_this();
    authorize(session, p, topic, "subscribe", ack, [self, session, idx, topic, ack](const TokenCheck& check, bool fromPayload) {
        const size_t t = static_cast<size_t>(idx);
        const bool isNew = session->subscription(t) == nullptr;
        Subscription& sub = session->subscribe(t);
        if (isNew) durable::recordSubscribe(*session, t);
        if (sub.expiryTimer) {
            session->shard.loop().cancelTimer(sub.expiryTimer);
            sub.expiryTimer = 0;
        }
        // A payload token authorizes this subscription only until it expires; the connect
        // token's expiry is handled by the connection itself.
        if (fromPayload && check.expiresAtMs > 0) self->armSubscriptionExpiry(*session, t, check.expiresAtMs);
        if (isNew) self->core_->notify([&](Listener& l) { l.onSubscribed(SubscribedEvent{self->ns_.path(), session->id, topic}); });
        if (!isNew || !self->core_->bus) return succeed(*session, ack, "subscribed", topic);
        // Cluster: confirmed once this node receives what any node publishes to the topic
        // (docs/cluster.md, "Subscribing"), so a publish made after `subscribed` reaches it.
        std::weak_ptr<Core> wc = self->core_;
        net::EventLoop* loop = &session->shard.loop();
        self->core_->bus->whenReceiving(self->ns_.path(), topic, [wc, loop, session, ack, topic] {
            loop->post([wc, session, ack, topic] {
                if (!wc.lock() || session->closed) return;
                succeed(*session, ack, "subscribed", topic);
            });
        });
    });
}

void DeliveryNamespaceHandler::armSubscriptionExpiry(Session& session, size_t topic, int64_t expiresAtMs) {
    Subscription* sub = session.subscription(topic);
    if (!sub) return;
    std::weak_ptr<Session> weak = session.shared_from_this();
    auto self = shared_from_this();
    sub->expiryTimer = session.shard.loop().addTimer(delayUntil(expiresAtMs), [weak, self, topic] {
        auto s = weak.lock();
        if (!s || s->closed) return;
        Subscription* sb = s->subscription(topic);
        if (!sb) return;
        sb->expiryTimer = 0;
        const std::string& name = self->ns_.topic(topic);
        if (s->socket) {
            s->socket->emit("error", sio::Args{Value(Obj{{"code", Value(kAuthExpired)}, {"message", Value("Token expired for topic: " + name)}})});
            s->socket->emit("unsubscribed", sio::Args{Value(Obj{{"topic", Value(name)}})});
        }
        s->unsubscribe(topic);
        self->core_->notify([&](Listener& l) { l.onUnsubscribed(UnsubscribedEvent{self->ns_.path(), s->id, name}); });
    });
}

void DeliveryNamespaceHandler::onUnsubscribe(const std::shared_ptr<Session>& session, const json::Value& p, const sio::AckFn& ack) {
    std::string topic, err;
    if (!readTopic(p, "unsubscribe", topic, err)) return fail(*session, ack, kInvalidPayload, err);
    long idx = ns_.findTopic(topic);
    if (idx < 0) return fail(*session, ack, kUnknownTopic, "Unknown topic: " + shown(topic));
    if (session->unsubscribe(static_cast<size_t>(idx)))
        core_->notify([&](Listener& l) { l.onUnsubscribed(UnsubscribedEvent{ns_.path(), session->id, topic}); });
    succeed(*session, ack, "unsubscribed", topic);  // idempotent: not subscribed is fine
}

void DeliveryNamespaceHandler::onAck(const std::shared_ptr<Session>& session, const json::Value& p, const sio::AckFn& ack) {
    std::string topic, err;
    if (!readTopic(p, "ack", topic, err)) return fail(*session, ack, kInvalidPayload, err);
    const Value* id = p.find("messageId");
    if (!id || !id->isString() || id->asString().empty())
        return fail(*session, ack, kInvalidPayload, "messageId must be a non-empty string");
    long idx = ns_.findTopic(topic);
    if (idx < 0) return fail(*session, ack, kUnknownTopic, "Unknown topic: " + shown(topic));
    // Unknown, unsent or already acked ids are ignored: nothing counted, nothing answered
    // but the (optional) ack callback.
    if (Subscription* sub = session->subscription(static_cast<size_t>(idx))) sub->ack(id->asString());
    succeed(*session, ack, nullptr, topic);
}

void DeliveryNamespaceHandler::onPublish(const std::shared_ptr<Session>& session, const json::Value& p, const sio::AckFn& ack) {
    std::string topic, err;
    if (!readTopic(p, "publish", topic, err)) return fail(*session, ack, kInvalidPayload, err);
    auto rejected = [&](const char* code, const std::string& reason) {
        fail(*session, ack, code, reason);
        core_->notify([&](Listener& l) { l.onPublishRejected(PublishRejectedEvent{ns_.path(), session->id, topic, code, reason}); });
    };
    const Value* payload = p.find("payload");
    if (!payload) return rejected(kInvalidPayload, "payload is required");
    long idx = ns_.findTopic(topic);
    if (idx < 0) return rejected(kUnknownTopic, "Unknown topic: " + shown(topic));
    auto self = shared_from_this();
    authorize(session, p, topic, "publish", ack,
              [self, session, idx, topic, ack, body = *payload](const TokenCheck& check, bool) {
                  NamespaceRuntime& ns = self->ns_;
                  const size_t t = static_cast<size_t>(idx);
                  ClientMessage msg{ns.path(), topic, session->id, check.principal.empty() ? session->principal : check.principal,
                                    "", {}, self->core_->nextMessageId(), wallClockMs()};
                  msg.payloadJson = wirePayload(body, msg.binary);
                  uint64_t bytes = msg.payloadJson.size();
                  for (auto& b : msg.binary) bytes += b.size();
                  Metrics::TopicCounters& m = *ns.topicMetrics[t];
                  m.received.fetch_add(1, std::memory_order_relaxed);
                  m.receivedBytes.fetch_add(bytes, std::memory_order_relaxed);
                  std::string handlerError;
                  if (!self->runHandlers(t, msg, handlerError) &&
                      ns.cfg.inboundAckPolicy == config::InboundAckPolicy::ACK_AFTER_HANDLER_SUCCESS) {
                      // The handlers gate this message: not fanned out, the publisher is told.
                      fail(*session, ack, kHandlerFailed, handlerError);
                      self->core_->notify([&](Listener& l) {
                          l.onPublishRejected(PublishRejectedEvent{ns.path(), session->id, topic, kHandlerFailed, handlerError});
                      });
                      return;
                  }
                  // In cluster mode (docs/cluster.md) the message also goes to the other nodes,
                  // and an AT_LEAST_ONCE publish is answered once Redis holds it; otherwise the
                  // answer comes right away.
                  auto answer = [self, session, ack, topic](PublishStatus st) {
                      NamespaceRuntime& ns = self->ns_;
                      if (st != PublishStatus::Ok) {
                          // The topic's log is full, the server is stopping or the other nodes
                          // cannot be reached: the client is told (docs/client-protocol.md).
                          const bool cluster = st == PublishStatus::ClusterUnavailable;
                          const char* code = cluster ? kClusterUnavailable : kOverloaded;
                          const std::string reason = cluster ? "cluster unavailable: the other nodes cannot be reached, retry later"
                                                     : st == PublishStatus::Overloaded
                                                         ? "server overloaded: topic buffer full, retry later"
                                                         : "server is stopping";
                          fail(*session, ack, code, reason);
                          self->core_->notify([&](Listener& l) { l.onPublishRejected(PublishRejectedEvent{ns.path(), session->id, topic, code, reason}); });
                          return;
                      }
                      self->core_->notify([&](Listener& l) { l.onPublishAccepted(PublishAcceptedEvent{ns.path(), session->id, topic}); });
                      succeed(*session, ack, nullptr, topic);
                  };
                  if (ns.journal && !self->core_->stopping.load(std::memory_order_relaxed)) {
                      // Durable: the ack waits for the disk, the loop does not (docs/recovery.md).
                      // The journal keeps JSON payloads only: binary parts are refused, not dropped.
                      if (!msg.binary.empty()) {
                          const std::string reason = "binary payloads are not stored by durable namespaces yet";
                          fail(*session, ack, kInvalidPayload, reason);
                          self->core_->notify([&](Listener& l) { l.onPublishRejected(PublishRejectedEvent{ns.path(), session->id, topic, kInvalidPayload, reason}); });
                          return;
                      }
                      std::string key = coalesceKeyOf(body, ns.cfg.coalesceKey, topic);
                      net::EventLoop* loop = &session->shard.loop();
                      Core* core = self->core_.get();
                      ns.journal->publishAsync(t, std::move(msg.payloadJson), std::move(key), [core, &ns, t, loop, answer](PublishStatus st) {
                          if (st != PublishStatus::Ok) core->refused(ns, t, st);
                          loop->post([answer, st] { answer(st); });
                      });
                      return;
                  }
                  if (self->core_->bus) {
                      if (!msg.binary.empty()) {
                          // Binary parts do not cross nodes yet (docs/cluster.md): refused, not
                          // delivered on this node alone.
                          const std::string reason = "binary payloads do not cross cluster nodes yet";
                          fail(*session, ack, kInvalidPayload, reason);
                          self->core_->notify([&](Listener& l) { l.onPublishRejected(PublishRejectedEvent{ns.path(), session->id, topic, kInvalidPayload, reason}); });
                          return;
                      }
                      self->core_->publishAcross(ns, t, body, &session->shard.loop(), answer);
                      return;
                  }
                  // The split the handlers saw is the one that goes out (not done twice).
                  answer(self->core_->publishParsed(ns, t, body, msg.messageId, std::move(msg.payloadJson), std::move(msg.binary)));
              });
}

bool DeliveryNamespaceHandler::runHandlers(size_t topic, const ClientMessage& msg, std::string& error) {
    std::shared_ptr<const std::vector<MessageHandler>> handlers;
    {
        std::lock_guard<std::mutex> lk(ns_.handlersMu);
        handlers = ns_.handlers[topic];
    }
    if (!handlers) return true;
    bool ok = true;
    for (auto& h : *handlers) {
        std::string why;
        try {
            HandlerResult r = h(msg);
            if (r.ok) continue;
            why = r.message.empty() ? "onMessage handler failed" : r.message;
        } catch (const std::exception& e) {
            why = e.what();
        } catch (...) {
            why = "onMessage handler threw";
        }
        log::warn("on_message_handler_failed", {{"namespace", ns_.path()}, {"topic", msg.topic}, {"client", msg.clientId}, {"error", why}});
        if (ok) error = why;  // the first failure is what the publisher is told
        ok = false;
    }
    return ok;
}

}  // namespace sf::delivery
