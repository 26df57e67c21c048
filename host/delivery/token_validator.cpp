#include "delivery/token_validator.hpp"

#include "plugins/text_writer.hpp"

#include <cctype>
#include <chrono>
#include <cstring>
#include <strings.h>

namespace sf::delivery {

namespace {

std::string trim(std::string_view s) {
    size_t b = 0, e = s.size();
    while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
    while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
    return std::string(s.substr(b, e - b));
}

sf_str str(std::string_view s) { return sf_str{s.data(), s.size()}; }

}  // namespace

TokenValidator::TokenValidator(plugins::PluginInstancePtr inst) : vt_(nullptr), instance_(nullptr), keepAlive_(inst) {
    if (!inst) throw plugins::PluginError("token validator: no plugin instance");
    if (inst->descriptor().kind != SF_KIND_TOKEN_VALIDATOR)
        throw plugins::PluginError("plugin " + inst->name() + " is not a token-validator plugin");
    vt_ = inst->vtable<sf_token_validator_vtable>();
    if (!vt_ || !vt_->validate) throw plugins::PluginError("token-validator plugin " + inst->name() + " has no validate");
    instance_ = inst->handle();
    name_ = inst->name();
}

TokenValidator::TokenValidator(const sf_token_validator_vtable* vt, void* instance, std::string name,
                               std::shared_ptr<void> keepAlive)
    : vt_(vt), instance_(instance), name_(std::move(name)), keepAlive_(std::move(keepAlive)) {
    if (!vt_ || !vt_->validate) throw plugins::PluginError("token validator " + name_ + " has no validate");
}

TokenCheck TokenValidator::validate(std::string_view token, std::string_view ns, std::string_view topic,
                                    std::string_view action, std::string_view remote) const {
    sf_token_request req{};
    req.struct_size = sizeof req;
    req.token = str(token);
    req.ns = str(ns);
    req.topic = str(topic);
    req.action = str(action);
    req.remote_addr = str(remote);
    // Principal and reason come back through writers of any length; the cap only bounds
    // what a faulty plugin can make the host hold (plugin.h, sf_token_result).
    plugins::TextWriter principal(kMaxTokenTextBytes), reason(kMaxTokenTextBytes);
    sf_token_result res{};
    res.struct_size = sizeof res;
    res.principal = principal.raw();
    res.reason = reason.raw();
    int rc = vt_->validate(instance_, &req, &res);
    TokenCheck out;
    if (rc != SF_OK) {
        out.reason = reason.text().empty() ? "Token validation failed" : reason.take();
        return out;
    }
    out.accepted = res.accepted == 1;
    out.expiresAtMs = res.expires_at_ms;
    out.principal = principal.take();
    out.reason = !reason.text().empty() ? reason.take() : (out.accepted ? "" : "Invalid token");
    return out;
}

std::string connectToken(const sio::Socket& s) {
    if (const json::Value* t = s.auth().find("token")) {
        if (t->isString()) {
            std::string v = trim(t->asString());
            if (!v.empty()) return v;
        }
    }
    std::string h = trim(s.header("authorization"));
    if (h.size() > 7 && strncasecmp(h.c_str(), "bearer", 6) == 0 && std::isspace(static_cast<unsigned char>(h[6]))) {
        std::string v = trim(std::string_view(h).substr(7));
        if (!v.empty()) return v;
    }
    return trim(s.query("token"));
}

std::string payloadToken(const json::Value& payload) {
    if (const json::Value* t = payload.find("token")) {
        if (t->isString()) return trim(t->asString());
    }
    return "";
}

uint64_t wallClockMs() {
    return static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count());
}

}  // namespace sf::delivery
