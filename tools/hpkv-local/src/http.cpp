#include "http.hpp"

#include "app.hpp"
#include "common/log.hpp"
#include "json_util.hpp"
#include "ws_session.hpp"

#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <Poco/Net/HTTPRequestHandler.h>
#include <Poco/Net/HTTPServerRequest.h>
#include <Poco/Net/HTTPServerResponse.h>
#include <Poco/Net/NetException.h>
#include <Poco/URI.h>

#include <algorithm>
#include <chrono>
#include <thread>
#include <istream>

namespace hpkv {
namespace {

using Poco::Net::HTTPRequestHandler;
using Poco::Net::HTTPResponse;
using Poco::Net::HTTPServerRequest;
using Poco::Net::HTTPServerResponse;

constexpr std::size_t kMaxTokenBody = 64 * 1024;

void sendJson(HTTPServerResponse& resp, HTTPResponse::HTTPStatus status, const std::string& body) {
    resp.setStatusAndReason(status);
    resp.setContentType("application/json");
    resp.setContentLength(static_cast<std::streamsize>(body.size()));
    resp.send() << body;
}

void sendError(HTTPServerResponse& resp, HTTPResponse::HTTPStatus status, const std::string& text) {
    sendJson(resp, status, "{\"error\":" + jsonString(text) + "}");
}

// Query values, both as sent and percent-decoded: the official client puts the
// key/token into the URL without encoding, so either form may be the real one.
std::vector<std::string> queryValues(const std::string& uri, const std::string& name) {
    std::vector<std::string> out;
    auto q = uri.find('?');
    if (q == std::string::npos) return out;
    std::string query = uri.substr(q + 1);
    std::size_t pos = 0;
    while (pos <= query.size()) {
        auto amp = query.find('&', pos);
        std::string part = query.substr(pos, amp == std::string::npos ? std::string::npos : amp - pos);
        auto eq = part.find('=');
        if (eq != std::string::npos && part.compare(0, eq, name) == 0 && eq == name.size()) {
            std::string raw = part.substr(eq + 1), decoded;
            out.push_back(raw);
            try {
                Poco::URI::decode(raw, decoded, false);
                if (decoded != raw) out.push_back(decoded);
            } catch (const std::exception&) {
            }
        }
        if (amp == std::string::npos) break;
        pos = amp + 1;
    }
    return out;
}

std::string pathOf(const std::string& uri) { return uri.substr(0, uri.find('?')); }

class PingHandler : public HTTPRequestHandler {
public:
    void handleRequest(HTTPServerRequest&, HTTPServerResponse& resp) override { sendJson(resp, HTTPResponse::HTTP_OK, "{\"status\":\"ok\"}"); }
};

class NotFoundHandler : public HTTPRequestHandler {
public:
    void handleRequest(HTTPServerRequest&, HTTPServerResponse& resp) override { sendError(resp, HTTPResponse::HTTP_NOT_FOUND, "Not found"); }
};

// Reads a string array member (absent/null = empty). Throws on wrong shape.
void readPatterns(const Poco::JSON::Object::Ptr& obj, const std::string& name, std::vector<std::string>& out) {
    if (!obj->has(name) || obj->isNull(name)) return;
    auto arr = obj->getArray(name);
    if (!arr) throw std::invalid_argument(name + " must be an array of strings");
    for (std::size_t i = 0; i < arr->size(); ++i) {
        auto v = arr->get(static_cast<unsigned>(i));
        if (!v.isString()) throw std::invalid_argument(name + " must be an array of strings");
        std::string p = v.convert<std::string>();
        if (p.empty() || p.size() > 512 || !isValidUtf8(p)) throw std::invalid_argument(name + " entries must be 1..512 bytes of UTF-8");
        if (std::find(out.begin(), out.end(), p) == out.end()) out.push_back(p);
    }
}

class TokenHandler : public HTTPRequestHandler {
public:
    explicit TokenHandler(App& app) : app_(app) {}
    void handleRequest(HTTPServerRequest& req, HTTPServerResponse& resp) override {
        if (req.getMethod() != "POST") return sendError(resp, HTTPResponse::HTTP_METHOD_NOT_ALLOWED, "Use POST");
        auto keyId = app_.apiKeys->check(req.get("x-api-key", ""));
        if (!keyId) return sendError(resp, HTTPResponse::HTTP_UNAUTHORIZED, "Invalid or missing API key");
        if (!app_.limiter->allow(*keyId)) return sendError(resp, HTTPResponse::HTTP_TOO_MANY_REQUESTS, "Rate limit exceeded");

        std::string body;
        char buf[4096];
        auto& in = req.stream();
        while (in.read(buf, sizeof buf) || in.gcount() > 0) {
            body.append(buf, static_cast<std::size_t>(in.gcount()));
            if (body.size() > kMaxTokenBody) return sendError(resp, HTTPResponse::HTTP_REQUEST_ENTITY_TOO_LARGE, "Body too large");
        }
        std::vector<std::string> patterns;
        std::optional<std::string> access;
        try {
            Poco::JSON::Object::Ptr obj = new Poco::JSON::Object;
            if (body.find_first_not_of(" \t\r\n") != std::string::npos) {
                if (jsonNestingDepth(body) > 8) throw std::invalid_argument("body nested too deeply");
                Poco::JSON::Parser parser;
                auto v = parser.parse(body);
                if (v.type() != typeid(Poco::JSON::Object::Ptr)) throw std::invalid_argument("body must be a JSON object");
                obj = v.extract<Poco::JSON::Object::Ptr>();
            }
            // 1.4.x clients send subscribePatterns, older ones subscribeKeys: accept the union.
            readPatterns(obj, "subscribePatterns", patterns);
            readPatterns(obj, "subscribeKeys", patterns);
            if (obj->has("accessPattern") && !obj->isNull("accessPattern")) {
                auto ap = obj->get("accessPattern");
                if (!ap.isString()) throw std::invalid_argument("accessPattern must be a string");
                access = ap.convert<std::string>();
                if (access->size() > 1024 || !isValidUtf8(*access)) throw std::invalid_argument("accessPattern too long");
                std::regex check(*access);  // throws std::regex_error if invalid
            }
        } catch (const std::regex_error&) {
            return sendError(resp, HTTPResponse::HTTP_BAD_REQUEST, "accessPattern is not a valid regular expression");
        } catch (const std::invalid_argument& e) {
            return sendError(resp, HTTPResponse::HTTP_BAD_REQUEST, e.what());
        } catch (const std::exception&) {
            return sendError(resp, HTTPResponse::HTTP_BAD_REQUEST, "Invalid JSON body");
        }
        std::string token = app_.tokens->issue(*keyId, patterns, access);
        sf::log::debug("token_issued", {{"key_id", *keyId}, {"patterns", std::to_string(patterns.size())}});
        sendJson(resp, HTTPResponse::HTTP_OK, "{\"token\":" + jsonString(token) + "}");
    }

private:
    App& app_;
};

class WsHandler : public HTTPRequestHandler {
public:
    explicit WsHandler(App& app) : app_(app) {}
    void handleRequest(HTTPServerRequest& req, HTTPServerResponse& resp) override {
        const std::string& uri = req.getURI();
        std::optional<std::string> keyId;
        std::optional<TokenClaims> claims;
        bool offered = false;
        for (const auto& k : queryValues(uri, "apiKey")) {
            offered = true;
            if (!keyId) keyId = app_.apiKeys->check(k);
        }
        if (req.has("x-api-key")) {
            offered = true;
            if (!keyId) keyId = app_.apiKeys->check(req.get("x-api-key"));
        }
        if (!keyId) {
            for (const auto& t : queryValues(uri, "token")) {
                offered = true;
                auto c = app_.tokens->verify(t);
                // A token dies with the API key that issued it.
                if (c && app_.apiKeys->hasId(c->keyId)) {
                    claims = std::move(c);
                    break;
                }
            }
        }
        if (!offered) return refuse(resp, HTTPResponse::HTTP_UNAUTHORIZED, "API key or token required");
        if (!keyId && !claims) return refuse(resp, HTTPResponse::HTTP_FORBIDDEN, "Invalid API key or token");

        std::optional<std::regex> access;
        if (claims && claims->accessPattern) {
            try {
                access.emplace(*claims->accessPattern);
            } catch (const std::regex_error&) {
                return refuse(resp, HTTPResponse::HTTP_FORBIDDEN, "Token access pattern invalid");
            }
        }
        // A token connection is registered for notifications before its 101 goes out.
        std::shared_ptr<EarlySubscriber> early;
        if (claims) {
            early = std::make_shared<EarlySubscriber>(claims->subscribePatterns);
            app_.hub.add(early);
        }
        struct Unregister {
            SubscriptionHub& hub;
            const Subscriber* s;
            ~Unregister() {
                if (s) hub.remove(s);
            }
        } unregister{app_.hub, early.get()};
        std::unique_ptr<Poco::Net::WebSocket> ws;
        try {
            ws = std::make_unique<Poco::Net::WebSocket>(req, resp);
        } catch (const Poco::Net::WebSocketException& e) {
            if (!resp.sent()) sendError(resp, HTTPResponse::HTTP_BAD_REQUEST, "WebSocket upgrade required");
            return;
        }
        if (app_.options.upgradeDelayMs > 0)
            std::this_thread::sleep_for(std::chrono::milliseconds(app_.options.upgradeDelayMs));
        SessionContext ctx{*app_.store, *app_.limiter, app_.limits, claims ? claims->keyId : *keyId, std::move(access)};
        std::vector<std::string> patterns;
        if (claims) patterns = claims->subscribePatterns;
        auto session = std::make_shared<WsSession>(app_, std::move(*ws), std::move(ctx), std::move(patterns), claims ? "token" : "api_key");
        if (early) {
            early->attach(session);
            app_.hub.replace(early.get(), session);
            unregister.s = nullptr;  // the session removes itself when it ends
        }
        session->run();
    }

private:
    void refuse(HTTPServerResponse& resp, HTTPResponse::HTTPStatus status, const std::string& why) {
        sf::log::debug("ws_refused", {{"status", std::to_string(static_cast<int>(status))}, {"reason", why}});
        sendError(resp, status, why);
    }
    App& app_;
};

}  // namespace

Poco::Net::HTTPRequestHandler* RequestHandlerFactory::createRequestHandler(const HTTPServerRequest& request) {
    const std::string path = pathOf(request.getURI());
    if (path == "/ws") return new WsHandler(app_);
    if (path == "/token/websocket") return new TokenHandler(app_);
    if (path == "/ping" && request.getMethod() == "GET") return new PingHandler;
    return new NotFoundHandler;
}

}  // namespace hpkv
