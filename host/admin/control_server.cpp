#include "admin/control_server.hpp"

#include <Poco/Net/HTTPRequestHandler.h>
#include <Poco/Net/HTTPRequestHandlerFactory.h>
#include <Poco/Net/HTTPServer.h>
#include <Poco/Net/HTTPServerParams.h>
#include <Poco/Net/HTTPServerRequest.h>
#include <Poco/Net/HTTPServerRequestImpl.h>
#include <Poco/Net/HTTPServerResponse.h>
#include <Poco/Net/ServerSocket.h>
#include <Poco/Net/SocketAddress.h>
#include <Poco/ThreadPool.h>
#include <Poco/URI.h>

#include "admin/dashboard_page.hpp"
#include "admin/stats_hub.hpp"
#include "common/secret_compare.hpp"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <vector>

#include "admin/binary_markers.hpp"
#include "common/json.hpp"
#include "common/log.hpp"
#include "common/log_throttle.hpp"
#include "net/address_limiter.hpp"

namespace sf::admin {
namespace {

using Poco::Net::HTTPResponse;
using Poco::Net::HTTPServerRequest;
using Poco::Net::HTTPServerResponse;

void reply(HTTPServerResponse& res, int status, const std::string& body,
           const std::string& type = "application/json") {
    res.setStatusAndReason(static_cast<HTTPResponse::HTTPStatus>(status));
    res.setContentType(type);
    res.setContentLength(static_cast<std::streamsize>(body.size()));
    res.send() << body;
}

std::string errorBody(const std::string& msg) {
    return "{\"error\":" + json::quote(msg) + "}";
}

// One message of a publish request, validated: {namespace, topic, payload, clientId?}.
// Checks one message of a request; a good one goes to send(ns, topic, payload, clientId).
template <class Send>
PublishOutcome withMessage(const json::Value& m, Send&& send) {
    if (!m.isObject()) return {400, "each message must be a JSON object"};
    const json::Value* ns = m.find("namespace");
    const json::Value* topic = m.find("topic");
    const json::Value* payload = m.find("payload");
    const json::Value* client = m.find("clientId");
    if (!ns || !ns->isString() || ns->asString().empty() || ns->asString()[0] != '/')
        return {400, "\"namespace\" must be a string starting with '/'"};
    if (!topic || !topic->isString() || topic->asString().empty()) return {400, "\"topic\" must be a non-empty string"};
    if (!payload) return {400, "\"payload\" is required"};
    if (client && !client->isString()) return {400, "\"clientId\" must be a string"};
    if (hasBinaryMarker(*payload)) {
        // Copied only when there is binary in it: the common JSON payload goes through as parsed.
        json::Value converted = *payload;
        std::string err;
        if (!resolveBinaryMarkers(converted, err)) return {400, err};
        return send(ns->asString(), topic->asString(), converted, client ? client->asString() : "");
    }
    return send(ns->asString(), topic->asString(), *payload, client ? client->asString() : "");
}

PublishOutcome publishOne(const json::Value& m, const ControlHooks& hooks) {
    return withMessage(m, hooks.publish);
}

// A batch through hooks.publishAsync: every message is handed over before any answer is
// awaited, then the outcomes are collected in order.
std::vector<PublishOutcome> publishBatch(const json::Value::Array& msgs, const ControlHooks& hooks) {
    std::vector<PublishOutcome> out(msgs.size());
    std::mutex mu;
    std::condition_variable cv;
    size_t waiting = 0;
    for (size_t i = 0; i < msgs.size(); ++i) {
        PublishOutcome refused = withMessage(msgs[i], [&](const std::string& ns, const std::string& topic, const json::Value& payload,
                                          const std::string& client) {
            {
                std::lock_guard<std::mutex> lk(mu);
                ++waiting;
            }
            hooks.publishAsync(ns, topic, payload, client, [&, i](PublishOutcome r) {
                std::lock_guard<std::mutex> lk(mu);
                out[i] = std::move(r);
                if (--waiting == 0) cv.notify_one();
            });
            return PublishOutcome{0, ""};  // out[i] is done's
        });
        if (refused.status != 0) {
            std::lock_guard<std::mutex> lk(mu);
            out[i] = std::move(refused);
        }
    }
    std::unique_lock<std::mutex> lk(mu);
    cv.wait(lk, [&] { return waiting == 0; });
    return out;
}

// The media type of a Content-Type header, lower-cased, without parameters.
std::string mediaType(const std::string& contentType) {
    std::string t = contentType.substr(0, contentType.find(';'));
    while (!t.empty() && (t.back() == ' ' || t.back() == '\t')) t.pop_back();
    for (auto& c : t) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return t;
}

log::Throttle gRateLimitLog;

class Handler : public Poco::Net::HTTPRequestHandler {
public:
    Handler(const ControlHooks& h, const config::ControlConfig& c, const std::string& server, StatsHub* hub,
            net::AddressLimiter* rate)
        : hooks_(h), cfg_(c), server_(server), hub_(hub), rate_(rate) {}

    void handleRequest(HTTPServerRequest& req, HTTPServerResponse& res) override {
        try {
            if (!withinRate(req, res)) return;
            // Read the whole body before any answer: an unread body left on a keep-alive
            // connection would be parsed as the next request.
            if (!readBody(req, res)) return;
            route(req, res);
        } catch (const std::exception& e) {
            log::warn("control_request_failed", {{"server", server_}, {"uri", req.getURI()}, {"error", e.what()}});
            if (!res.sent()) reply(res, 500, errorBody("internal error"));
        }
    }

private:
    const ControlHooks& hooks_;
    const config::ControlConfig& cfg_;
    const std::string& server_;
    StatsHub* hub_;  // null: no stats hook
    net::AddressLimiter* rate_;  // null: no request-rate cap

    // control.maxRequestsPerSecond, per remote address (a token bucket of one second's
    // worth): past it, 429 with Retry-After, and the connection is closed without reading
    // the body. Every path counts, /health too: a flood of cheap requests is still a flood.
    bool withinRate(HTTPServerRequest& req, HTTPServerResponse& res) {
        if (!rate_) return true;
        const uint64_t now = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                                       std::chrono::steady_clock::now().time_since_epoch())
                                                       .count());
        uint64_t retryMs = 0;
        if (rate_->takeToken(net::AddressLimiter::keyOf(req.clientAddress().addr()), now, retryMs)) return true;
        const uint64_t n = hooks_.rateLimited ? hooks_.rateLimited() : 0;
        uint64_t suppressed = 0;
        if (gRateLimitLog.allow(suppressed))
            log::warn("control_rate_limited", {{"server", server_}, {"remote", req.clientAddress().toString()},
                                               {"limitPerSecond", std::to_string(cfg_.maxRequestsPerSecond)},
                                               {"count", std::to_string(n)}, {"suppressed", std::to_string(suppressed)}});
        res.setKeepAlive(false);
        res.set("Retry-After", std::to_string(std::max<uint64_t>(1, (retryMs + 999) / 1000)));
        reply(res, 429, errorBody("too many requests from this address (at most " +
                                  std::to_string(cfg_.maxRequestsPerSecond) + " a second); retry later"));
        return false;
    }

    bool authorized(HTTPServerRequest& req) {
        if (cfg_.token.empty()) return true;
        const std::string h = req.get("Authorization", "");  // by value: the default is a temporary
        const std::string prefix = "Bearer ";
        if (h.size() <= prefix.size() || h.compare(0, prefix.size(), prefix) != 0) return false;
        return secretEquals(std::string_view(h).substr(prefix.size()), cfg_.token);
    }

    void route(HTTPServerRequest& req, HTTPServerResponse& res) {
        std::string path = req.getURI();
        if (auto q = path.find('?'); q != std::string::npos) path.resize(q);
        const std::string& method = req.getMethod();
        if (path == "/health") {
            // Health stays open without a token: load balancers probe it.
            if (method != "GET" && method != "HEAD") return methodNotAllowed(res, "GET");
            return reply(res, 200, hooks_.healthJson ? hooks_.healthJson() : "{\"status\":\"UP\"}");
        }
        if (path == "/dashboard" && hub_) {
            // The page holds no data, so it needs no token; it asks for one when the stats
            // endpoints answer 401 (docs/dashboard.md).
            if (method != "GET" && method != "HEAD") return methodNotAllowed(res, "GET");
            res.set("Cache-Control", "no-store");
            res.set("X-Frame-Options", "DENY");
            res.set("Content-Security-Policy",
                    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src data:");
            return reply(res, 200, dashboardPage(), "text/html; charset=utf-8");
        }
        const bool stats = hub_ && (path == "/v1/stats" || path == "/v1/stats/stream");
        if (path != "/metrics" && path != "/v1/publish" && !stats) return reply(res, 404, errorBody("not found: " + path));
        if (!authorized(req)) {
            res.set("WWW-Authenticate", "Bearer");
            return reply(res, 401, errorBody("missing or wrong bearer token"));
        }
        if (path == "/metrics") {
            if (method != "GET") return methodNotAllowed(res, "GET");
            std::string body, type;
            if (!hooks_.metrics || !hooks_.metrics(body, type))
                return reply(res, 503, errorBody("no metrics sink renders /metrics (configure metrics.sinks: [prometheus])"));
            return reply(res, 200, body, type);
        }
        if (stats) {
            if (method != "GET") return methodNotAllowed(res, "GET");
            res.set("Cache-Control", "no-store");
            if (path == "/v1/stats") {
                StatsHub::View v = hub_->current();
                if (!v.json) return reply(res, 503, errorBody("server is stopping"));
                return reply(res, 200, *v.json);
            }
            return stream(req, res);
        }
        if (method != "POST") return methodNotAllowed(res, "POST");
        publish(req, res);
    }

    // Server-Sent Events: one `data: <snapshot>` per snapshot the hub takes (about one a
    // second) until the viewer goes or the listener stops. Capped (kMaxStatsStreams); past
    // the cap, 503 and the page polls GET /v1/stats instead.
    void stream(HTTPServerRequest& req, HTTPServerResponse& res) {
        const int max = ControlServer::maxStatsStreams(cfg_.maxConnections);
        if (!hub_->openStream(static_cast<size_t>(max))) {
            res.set("Retry-After", "5");
            return reply(res, 503, errorBody("too many dashboard streams (at most " + std::to_string(max) +
                                             "); poll GET /v1/stats instead"));
        }
        struct Close {
            StatsHub* h;
            ~Close() { h->closeStream(); }
        } closeOnExit{hub_};
        // A viewer that stops reading must not hold this thread: writes give up after a while.
        static_cast<Poco::Net::HTTPServerRequestImpl&>(req).socket().setSendTimeout(
            Poco::Timespan(ControlServer::kFirstRequestMs * 1000));
        res.setKeepAlive(false);
        res.setChunkedTransferEncoding(false);
        res.setContentType("text/event-stream");
        std::ostream& out = res.send();
        out << "retry: 2000\n\n";
        out.flush();
        uint64_t seen = 0;
        while (out.good()) {
            StatsHub::View v = hub_->next(seen);
            if (!v.json) break;  // stopping
            seen = v.version;
            out << "data: " << *v.json << "\n\n";
            out.flush();
        }
    }

    void methodNotAllowed(HTTPServerResponse& res, const char* allow) {
        res.set("Allow", allow);
        reply(res, 405, errorBody(std::string("method not allowed (use ") + allow + ")"));
    }

    std::string body_;

    // False (after answering 413 and closing) when the body is over the limit.
    bool readBody(HTTPServerRequest& req, HTTPServerResponse& res) {
        const std::string tooBig = "body larger than " + std::to_string(ControlServer::kMaxBodyBytes) + " bytes";
        if (req.hasContentLength() && req.getContentLength64() > static_cast<Poco::Int64>(ControlServer::kMaxBodyBytes)) {
            res.setKeepAlive(false);
            reply(res, 413, errorBody(tooBig));
            return false;
        }
        std::istream& in = req.stream();
        char buf[16384];
        while (in.read(buf, sizeof buf) || in.gcount() > 0) {
            body_.append(buf, static_cast<size_t>(in.gcount()));
            if (body_.size() > ControlServer::kMaxBodyBytes) {
                res.setKeepAlive(false);
                reply(res, 413, errorBody(tooBig));
                return false;
            }
        }
        return true;
    }

    // Content-Type application/octet-stream: the body is one binary payload, the target in
    // the query (?namespace=/feed&topic=prices[&clientId=<id>]).
    void publishBytes(HTTPServerRequest& req, HTTPServerResponse& res) {
        std::string ns, topic, client;
        bool hasClient = false;
        try {
            for (auto& [k, v] : Poco::URI(req.getURI()).getQueryParameters()) {
                if (k == "namespace") ns = v;
                else if (k == "topic") topic = v;
                else if (k == "clientId") client = v, hasClient = true;
            }
        } catch (const std::exception&) {
            return reply(res, 400, errorBody("malformed query string"));
        }
        if (ns.empty() || ns[0] != '/')
            return reply(res, 400, errorBody("query parameter \"namespace\" must start with '/' (octet-stream body)"));
        if (topic.empty()) return reply(res, 400, errorBody("query parameter \"topic\" is required (octet-stream body)"));
        if (hasClient && client.empty()) return reply(res, 400, errorBody("query parameter \"clientId\" must not be empty"));
        PublishOutcome r = hooks_.publish(ns, topic, json::Value::binary(std::move(body_)), client);
        if (r.retryAfterSeconds > 0) res.set("Retry-After", std::to_string(r.retryAfterSeconds));
        if (r.status != 200) return reply(res, r.status, errorBody(r.error));
        reply(res, 200, "{\"status\":200}");
    }

    void publish(HTTPServerRequest& req, HTTPServerResponse& res) {
        if (mediaType(req.getContentType()) == "application/octet-stream") return publishBytes(req, res);
        json::Value doc;
        std::string err;
        if (!json::tryParse(body_, doc, err)) return reply(res, 400, errorBody("malformed JSON: " + err));
        if (doc.isArray()) {
            // A batch: one status per message, in order; the request itself succeeded.
            // Refused ones (429/503) carry the Retry-After of the whole answer.
            std::string out = "{\"results\":[";
            size_t ok = 0;
            int retryAfter = 0;
            std::vector<PublishOutcome> batch;
            if (hooks_.publishAsync) batch = publishBatch(doc.asArray(), hooks_);
            for (size_t i = 0; i < doc.asArray().size(); ++i) {
                PublishOutcome r = hooks_.publishAsync ? std::move(batch[i]) : publishOne(doc.asArray()[i], hooks_);
                if (r.status == 200) ++ok;
                retryAfter = std::max(retryAfter, r.retryAfterSeconds);
                if (i) out.push_back(',');
                out += "{\"status\":" + std::to_string(r.status);
                if (!r.error.empty()) out += ",\"error\":" + json::quote(r.error);
                out.push_back('}');
            }
            out += "],\"published\":" + std::to_string(ok) + "}";
            if (retryAfter > 0) res.set("Retry-After", std::to_string(retryAfter));
            return reply(res, 200, out);
        }
        PublishOutcome r = publishOne(doc, hooks_);
        if (r.retryAfterSeconds > 0) res.set("Retry-After", std::to_string(r.retryAfterSeconds));
        if (r.status != 200) return reply(res, r.status, errorBody(r.error));
        reply(res, 200, "{\"status\":200}");
    }
};

class Factory : public Poco::Net::HTTPRequestHandlerFactory {
public:
    Factory(const ControlHooks& h, const config::ControlConfig& c, const std::string& s, StatsHub* hub,
            net::AddressLimiter* rate)
        : h_(h), c_(c), s_(s), hub_(hub), rate_(rate) {}
    Poco::Net::HTTPRequestHandler* createRequestHandler(const HTTPServerRequest&) override {
        return new Handler(h_, c_, s_, hub_, rate_);
    }

private:
    const ControlHooks& h_;
    const config::ControlConfig& c_;
    const std::string& s_;
    StatsHub* hub_;
    net::AddressLimiter* rate_;
};

}  // namespace

struct ControlServer::Impl {
    config::ControlConfig cfg;
    std::string server;
    ControlHooks hooks;
    std::unique_ptr<StatsHub> hub;              // outlives http: its threads wait on it
    std::unique_ptr<net::AddressLimiter> rate;  // outlives http: control.maxRequestsPerSecond
    std::unique_ptr<Poco::ThreadPool> pool;     // outlives http (declared first, destroyed last)
    std::unique_ptr<Poco::Net::HTTPServer> http;
    int port = 0;
};

ControlServer::ControlServer(const config::ControlConfig& cfg, std::string serverName, ControlHooks hooks)
    : impl_(std::make_unique<Impl>()) {
    impl_->cfg = cfg;
    impl_->server = std::move(serverName);
    impl_->hooks = std::move(hooks);
    if (impl_->hooks.stats) impl_->hub = std::make_unique<StatsHub>(impl_->hooks.stats);
    if (cfg.maxRequestsPerSecond > 0) {
        net::AddressLimiter::Limits l;
        l.ratePerSecond = cfg.maxRequestsPerSecond;
        l.burst = cfg.maxRequestsPerSecond;
        l.maxIdleEntries = 4096;  // addresses remembered; the oldest is forgotten first
        impl_->rate = std::make_unique<net::AddressLimiter>(l);
    }
}

int ControlServer::maxStatsStreams(int maxConnections) { return std::min(kMaxStatsStreams, maxConnections / 4); }

ControlServer::~ControlServer() { stop(); }

void ControlServer::start() {
    Poco::Net::ServerSocket sock(Poco::Net::SocketAddress(impl_->cfg.host, static_cast<Poco::UInt16>(impl_->cfg.port)), 64);
    impl_->port = sock.address().port();
    // Poco serves one connection per thread, and an idle keep-alive connection keeps its
    // thread: with 4 threads, 200 idle connections left a publish unanswered for seconds.
    // So: a thread per connection up to maxConnections (created on demand, reaped when idle),
    // and idle connections let go soon (kKeepAliveIdleMs after a request, kFirstRequestMs
    // before the first one); past maxConnections + kMaxQueued, connections are refused
    // (conf/README.md, control.maxConnections).
    const int maxConn = std::max(1, impl_->cfg.maxConnections);
    impl_->pool = std::make_unique<Poco::ThreadPool>(2, maxConn, 60);
    auto* params = new Poco::Net::HTTPServerParams;
    params->setMaxThreads(maxConn);
    params->setMaxQueued(kMaxQueued);
    params->setKeepAlive(true);
    params->setKeepAliveTimeout(Poco::Timespan(kKeepAliveIdleMs * 1000));
    params->setTimeout(Poco::Timespan(kFirstRequestMs * 1000));
    impl_->http = std::make_unique<Poco::Net::HTTPServer>(new Factory(impl_->hooks, impl_->cfg, impl_->server, impl_->hub.get(), impl_->rate.get()),
                                                          *impl_->pool, sock, params);
    impl_->http->start();
    log::info("control_listening",
              {{"server", impl_->server}, {"host", impl_->cfg.host}, {"port", std::to_string(impl_->port)},
               {"auth", impl_->cfg.token.empty() ? "none" : "bearer"}, {"maxConnections", std::to_string(maxConn)}});
}

void ControlServer::stop() {
    if (impl_ && impl_->http) {
        if (impl_->hub) impl_->hub->stop();  // dashboard streams end instead of waiting for the next snapshot
        impl_->http->stopAll(true);
        // Connections refused because every thread and queue slot was taken (one line per run).
        const int refused = impl_->http->refusedConnections();
        if (refused > 0)
            log::warn("control_connections_refused", {{"server", impl_->server}, {"count", std::to_string(refused)},
                                                      {"maxConnections", std::to_string(impl_->cfg.maxConnections)}});
        impl_->http.reset();
        impl_->pool->joinAll();
        impl_->pool.reset();
    }
}

int ControlServer::port() const { return impl_->port; }

}  // namespace sf::admin
