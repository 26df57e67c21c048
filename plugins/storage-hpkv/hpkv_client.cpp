#include "hpkv_client.hpp"

#include "hpkv_codec.hpp"

#include <Poco/Buffer.h>
#include <Poco/Exception.h>
#include <Poco/JSON/Parser.h>
#include <Poco/Net/Context.h>
#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/Net/HTTPSClientSession.h>
#include <Poco/Net/NetException.h>
#include <Poco/Net/RejectCertificateHandler.h>
#include <Poco/Net/SSLManager.h>
#include <Poco/Net/WebSocket.h>

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <stdexcept>

namespace sfhpkv {

namespace {

constexpr int64_t kMaxMessageId = (int64_t(1) << 53) - 1000;  // JS clients' safe-integer range

int jitterMs(int upTo) {
    thread_local std::mt19937 rng{std::random_device{}()};
    if (upTo <= 0) return 0;
    return std::uniform_int_distribution<int>(0, upTo)(rng);
}

std::string lower(std::string s) {
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return s;
}

void initSslOnce() {
    static std::once_flag once;
    std::call_once(once, [] {
        Poco::Net::initializeSSL();
        // Without an explicit handler Poco would look for an Application config; a bad
        // certificate must simply fail the connect.
        Poco::Net::Context::Ptr ctx = new Poco::Net::Context(Poco::Net::Context::TLS_CLIENT_USE, "",
                                                             Poco::Net::Context::VERIFY_RELAXED, 9, true);
        Poco::Net::SSLManager::instance().initializeClient(nullptr, new Poco::Net::RejectCertificateHandler(false), ctx);
    });
}

}  // namespace

WsEndpoint normaliseBaseUrl(const std::string& baseUrl) {
    std::string u = baseUrl;
    while (!u.empty() && u.back() == '/') u.pop_back();  // the official client's "//ws" quirk
    WsEndpoint ep;
    auto sep = u.find("://");
    if (sep == std::string::npos) throw std::invalid_argument("baseUrl must start with http://, https://, ws:// or wss://");
    std::string scheme = lower(u.substr(0, sep));
    if (scheme == "http" || scheme == "ws") ep.tls = false;
    else if (scheme == "https" || scheme == "wss") ep.tls = true;
    else throw std::invalid_argument("baseUrl: unsupported scheme \"" + scheme + "\"");
    std::string rest = u.substr(sep + 3);
    auto slash = rest.find('/');
    std::string hostport = rest.substr(0, slash);
    std::string path = slash == std::string::npos ? "" : rest.substr(slash);
    if (path.find('?') != std::string::npos) throw std::invalid_argument("baseUrl must not contain a query");
    if (path.size() < 3 || path.compare(path.size() - 3, 3, "/ws") != 0) path += "/ws";
    ep.port = ep.tls ? 443 : 80;
    std::string host = hostport;
    if (!hostport.empty() && hostport[0] == '[') {  // [v6]:port
        auto close = hostport.find(']');
        if (close == std::string::npos) throw std::invalid_argument("baseUrl: bad IPv6 host");
        host = hostport.substr(1, close - 1);
        if (close + 1 < hostport.size() && hostport[close + 1] == ':') {
            ep.port = static_cast<uint16_t>(std::stoi(hostport.substr(close + 2)));
        }
    } else if (auto colon = hostport.rfind(':'); colon != std::string::npos) {
        host = hostport.substr(0, colon);
        int p = std::stoi(hostport.substr(colon + 1));
        if (p <= 0 || p > 65535) throw std::invalid_argument("baseUrl: bad port");
        ep.port = static_cast<uint16_t>(p);
    }
    if (host.empty()) throw std::invalid_argument("baseUrl: missing host");
    ep.host = host;
    ep.path = path;
    ep.url = std::string(ep.tls ? "wss://" : "ws://") + hostport + path;
    return ep;
}

struct Client::ConnectResult {
    std::unique_ptr<Poco::Net::WebSocket> ws;
    std::string error;
    int httpStatus = 0;
};

Client::Client(ClientOptions opts) : opts_(std::move(opts)) {
    WsEndpoint ep = normaliseBaseUrl(opts_.baseUrl);
    wsUrl_ = ep.url;
    host_ = ep.host;
    path_ = ep.path;
    port_ = ep.port;
    tls_ = ep.tls;
    if (tls_) initSslOnce();
    if (::pipe(wakeFds_) != 0) throw std::runtime_error("hpkv client: pipe() failed");
    for (int fd : wakeFds_) ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
    io_ = std::thread([this] { run(); });
}

Client::~Client() {
    stop();
    for (int fd : wakeFds_)
        if (fd >= 0) ::close(fd);
}

void Client::stop() {
    {
        std::lock_guard<std::mutex> lk(mu_);
        stopping_ = true;
    }
    wake();
    if (io_.joinable()) io_.join();
}

Client::Stats Client::stats() const {
    std::lock_guard<std::mutex> lk(mu_);
    return stats_;
}

void Client::wake() {
    if (!wakePending_.exchange(true)) {
        char c = 1;
        ssize_t n = ::write(wakeFds_[1], &c, 1);
        (void)n;  // a full pipe already means "wake up"
    }
}

// ---------------------------------------------------------------- request builders

void Client::get(const std::string& key, int timeoutMs, Callback cb) {
    std::string b = "{\"op\":1,\"key\":";
    appendJsonString(b, key);
    submit(std::move(b), true, timeoutMs, std::move(cb));
}

void Client::set(const std::string& key, const std::string& value, int timeoutMs, Callback cb) {
    std::string b;
    b.reserve(key.size() + value.size() + value.size() / 8 + 48);
    b = "{\"op\":2,\"key\":";
    appendJsonString(b, key);
    b += ",\"value\":";
    appendJsonString(b, value);
    submit(std::move(b), true, timeoutMs, std::move(cb));
}

void Client::patch(const std::string& key, const std::string& value, int timeoutMs, Callback cb) {
    std::string b = "{\"op\":3,\"key\":";
    appendJsonString(b, key);
    b += ",\"value\":";
    appendJsonString(b, value);
    submit(std::move(b), false, timeoutMs, std::move(cb));  // appends: not safe to repeat
}

void Client::del(const std::string& key, int timeoutMs, Callback cb) {
    std::string b = "{\"op\":4,\"key\":";
    appendJsonString(b, key);
    submit(std::move(b), true, timeoutMs, std::move(cb));
}

void Client::range(const std::string& key, const std::string& endKey, int limit, int timeoutMs, Callback cb) {
    std::string b = "{\"op\":5,\"key\":";
    appendJsonString(b, key);
    b += ",\"endKey\":";
    appendJsonString(b, endKey);
    if (limit > 0) b += ",\"limit\":" + std::to_string(limit);
    submit(std::move(b), true, timeoutMs, std::move(cb));
}

void Client::atomic(const std::string& key, int64_t delta, int timeoutMs, Callback cb) {
    std::string b = "{\"op\":6,\"key\":";
    appendJsonString(b, key);
    b += ",\"value\":" + std::to_string(delta);
    submit(std::move(b), false, timeoutMs, std::move(cb));
}

void Client::submit(std::string body, bool resendable, int timeoutMs, Callback cb) {
    auto p = std::make_shared<Pending>();
    p->body = std::move(body);
    p->resendable = resendable;
    p->timeoutMs = timeoutMs > 0 ? timeoutMs : 5000;
    p->deadline = Clock::now() + std::chrono::milliseconds(p->timeoutMs);
    p->cb = std::move(cb);
    {
        std::lock_guard<std::mutex> lk(mu_);
        if (!stopping_) {
            incoming_.push_back(std::move(p));
            p = nullptr;
        }
    }
    if (p) {  // after stop(): still exactly one callback, never on the caller's stack frame's lock
        Result r;
        r.code = kShutdown;
        r.error = "hpkv client stopped";
        if (p->cb) p->cb(r);
        return;
    }
    wake();
}

// ---------------------------------------------------------------- I/O thread

void Client::finish(const PendingPtr& p, Result r) {
    if (r.code == kTimeout) {
        std::lock_guard<std::mutex> lk(mu_);
        ++stats_.timeouts;
    }
    if (p->cb) {
        Callback cb = std::move(p->cb);
        p->cb = nullptr;
        cb(r);
    }
}

void Client::requeue(const PendingPtr& p) {
    auto it = std::lower_bound(queue_.begin(), queue_.end(), p->order,
                               [](const PendingPtr& a, uint64_t o) { return a->order < o; });
    queue_.insert(it, p);
}

void Client::dropConnection(const std::string& why) {
    if (ws_) {
        try {
            ws_->close();
        } catch (...) {
        }
        ws_.reset();
    }
    {
        std::lock_guard<std::mutex> lk(mu_);
        ++stats_.disconnects;
        stats_.connected = false;
        stats_.lastError = why;
    }
    log(2, "hpkv_disconnected", "connection to " + wsUrl_ + " lost: " + why + "; " + std::to_string(inflight_.size()) +
                                    " unanswered request(s) will be retried after reconnecting");
    // Re-send what was unanswered (idempotent ops), in original order, after the reconnect.
    std::map<int64_t, PendingPtr> lost;
    lost.swap(inflight_);
    for (auto& kv : lost) {
        PendingPtr p = kv.second;
        if (p->resendable) {
            p->lastError = why;
            requeue(p);
        } else {
            Result r;
            r.code = kConnectionLost;
            r.error = "connection lost while the request was in flight (" + why + "); it may or may not have applied";
            finish(p, std::move(r));
        }
    }
    int delay = std::min(opts_.reconnectMaxMs, opts_.reconnectMinMs << std::min(reconnectAttempt_, 16));
    nextConnectAt_ = Clock::now() + std::chrono::milliseconds(delay / 2 + jitterMs(delay / 2));
    reportedDown_ = false;
}

void Client::startConnect() {
    if (connectThread_.joinable()) connectThread_.join();
    connecting_ = true;
    connectThread_ = std::thread([this] {
        auto r = std::make_unique<ConnectResult>();
        Poco::Net::HTTPResponse resp;
        try {
            std::unique_ptr<Poco::Net::HTTPClientSession> session;
            if (tls_) {
                Poco::Net::Context::Ptr ctx = new Poco::Net::Context(
                    Poco::Net::Context::TLS_CLIENT_USE, "",
                    opts_.tlsVerify ? Poco::Net::Context::VERIFY_RELAXED : Poco::Net::Context::VERIFY_NONE, 9, true);
                session = std::make_unique<Poco::Net::HTTPSClientSession>(host_, port_, ctx);
            } else {
                session = std::make_unique<Poco::Net::HTTPClientSession>(host_, port_);
            }
            session->setTimeout(Poco::Timespan(static_cast<Poco::Timespan::TimeDiff>(opts_.connectTimeoutMs) * 1000));
            Poco::Net::HTTPRequest req(Poco::Net::HTTPRequest::HTTP_GET, path_ + "?apiKey=" + urlEncode(opts_.apiKey),
                                       Poco::Net::HTTPMessage::HTTP_1_1);
            auto ws = std::make_unique<Poco::Net::WebSocket>(*session, req, resp);
            // Bounded reads and writes: a half-received frame or a stuck peer becomes a
            // reconnect, never a hang of the I/O thread.
            Poco::Timespan io(static_cast<Poco::Timespan::TimeDiff>(std::max(opts_.connectTimeoutMs, 2000)) * 1000);
            ws->setReceiveTimeout(io);
            ws->setSendTimeout(io);
            ws->setNoDelay(true);
            ws->setMaxPayloadSize(opts_.maxFrameBytes);
            r->ws = std::move(ws);
        } catch (const Poco::Net::WebSocketException& e) {
            r->httpStatus = static_cast<int>(resp.getStatus());
            if (r->httpStatus == 401 || r->httpStatus == 403)
                r->error = "HPKV refused the API key (HTTP " + std::to_string(r->httpStatus) + ")";
            else
                r->error = "WebSocket upgrade failed: " + e.displayText() +
                           (r->httpStatus ? " (HTTP " + std::to_string(r->httpStatus) + ")" : "");
        } catch (const Poco::Exception& e) {
            r->error = e.displayText();
        } catch (const std::exception& e) {
            r->error = e.what();
        }
        {
            std::lock_guard<std::mutex> lk(mu_);
            connectResult_ = std::move(r);
        }
        wake();
    });
}

bool Client::sendSome(Clock::time_point now) {
    const double conf = opts_.rateLimitPerSecond;
    // Recover the adaptive cap gradually (+10 % per 429-free second of actual traffic, never
    // during a back-off); the official client never recovers.
    if (adaptiveRate_ > 0 && now >= backoffUntil_ && now - last429_ > std::chrono::seconds(1) &&
        now - lastRecover_ > std::chrono::seconds(1) && !recentSends_.empty()) {
        adaptiveRate_ += std::max(1.0, adaptiveRate_ * 0.1);
        lastRecover_ = now;
        if ((conf > 0 && adaptiveRate_ >= conf) || adaptiveRate_ > 1e5) adaptiveRate_ = 0;
    }
    // The back-off exponent decays once 429s stop, so an occasional 429 costs a short pause.
    if (backoffExp_ > 0 && now >= backoffUntil_ && now - last429_ > std::max(std::chrono::milliseconds(2000), 2 * lastBackoff_))
        backoffExp_ = 0;
    double rate = conf > 0 ? (adaptiveRate_ > 0 ? std::min(conf, adaptiveRate_) : conf) : adaptiveRate_;
    if (rate > 0) {
        double burst = std::max(1.0, rate);
        double dt = std::chrono::duration<double>(now - tokensAt_).count();
        tokens_ = std::min(burst, tokens_ + dt * rate);
        tokensAt_ = now;
    }
    bool sent = false;
    while (ws_ && !queue_.empty() && inflight_.size() < opts_.maxInFlight) {
        if (now < backoffUntil_) break;
        if (rate > 0) {
            if (tokens_ < 1.0) break;
            tokens_ -= 1.0;
        }
        PendingPtr p = queue_.front();
        queue_.pop_front();
        int64_t id = nextMessageId_++;
        if (nextMessageId_ > kMaxMessageId) nextMessageId_ = 1;
        std::string frame;
        frame.reserve(p->body.size() + 32);
        frame = p->body;
        frame += ",\"messageId\":";
        frame += std::to_string(id);
        frame += '}';
        try {
            ws_->sendFrame(frame.data(), static_cast<int>(frame.size()), Poco::Net::WebSocket::FRAME_TEXT);
        } catch (const Poco::Exception& e) {
            requeue(p);
            dropConnection("send failed: " + e.displayText());
            return sent;
        }
        p->sentOnce = true;
        inflight_[id] = p;
        recentSends_.push_back(now);
        sent = true;
        std::lock_guard<std::mutex> lk(mu_);
        ++stats_.sent;
    }
    while (!recentSends_.empty() && now - recentSends_.front() > std::chrono::seconds(1)) recentSends_.pop_front();
    return sent;
}

void Client::on429(const Poco::JSON::Object::Ptr& body, Clock::time_point now) {
    {
        std::lock_guard<std::mutex> lk(mu_);
        ++stats_.rateLimited;
    }
    last429_ = now;
    if (now < backoffUntil_) return;  // one retreat per episode, as the official client does
    const double conf = opts_.rateLimitPerSecond;
    // Halve what was actually achieved, not a cap that was never reached.
    double achieved = double(std::max<size_t>(1, recentSends_.size()));
    double current = conf > 0 ? (adaptiveRate_ > 0 ? std::min(conf, adaptiveRate_) : conf) : adaptiveRate_;
    current = current > 0 ? std::min(current, achieved) : achieved;
    double floor = conf > 0 ? conf * 0.1 : 1.0;
    adaptiveRate_ = std::max(floor, current * 0.5);
    lastRecover_ = now;
    int delay = std::min(opts_.backoffMaxMs, opts_.backoffBaseMs << std::min(backoffExp_, 16));
    delay += jitterMs(delay / 4);
    // Honour a retry hint if the server gives one (not documented for HPKV, but cheap to respect).
    if (body) {
        try {
            if (body->has("retryAfterMs")) delay = std::max(delay, int(body->getValue<double>("retryAfterMs")));
            else if (body->has("retryAfter")) delay = std::max(delay, int(body->getValue<double>("retryAfter") * 1000));
            else if (body->has("retry_after")) delay = std::max(delay, int(body->getValue<double>("retry_after") * 1000));
        } catch (...) {
        }
    }
    delay = std::min(delay, opts_.backoffMaxMs);
    backoffUntil_ = now + std::chrono::milliseconds(delay);
    lastBackoff_ = std::chrono::milliseconds(delay);
    ++backoffExp_;
    tokens_ = 0;
    log(2, "hpkv_rate_limited",
        "HPKV answered 429; backing off " + std::to_string(delay) + " ms, send rate capped at " +
            std::to_string(static_cast<long>(adaptiveRate_)) + "/s");
}

void Client::handleMessage(const char* data, size_t len) {
    Poco::JSON::Object::Ptr obj;
    try {
        Poco::JSON::Parser parser;
        Poco::Dynamic::Var v = parser.parse(std::string(data, len));
        obj = v.extract<Poco::JSON::Object::Ptr>();
    } catch (...) {
        log(0, "hpkv_bad_frame", "ignoring a frame that is not a JSON object");
        return;
    }
    if (!obj) return;
    if (obj->has("type") && obj->getValue<std::string>("type") == "notification") return;  // API-key conns get none
    int64_t id = 0;
    try {
        if (obj->has("messageId")) id = obj->getValue<int64_t>("messageId");
    } catch (...) {
        id = 0;
    }
    if (!id) return;  // like the official client: unmatched answers are ignored
    auto it = inflight_.find(id);
    if (it == inflight_.end()) return;  // late answer after a timeout
    PendingPtr p = it->second;
    inflight_.erase(it);
    {
        std::lock_guard<std::mutex> lk(mu_);
        ++stats_.answered;
    }
    int code = 500;
    try {
        if (obj->has("code")) code = obj->getValue<int>("code");
    } catch (...) {
    }
    auto now = Clock::now();
    if (code == 429) {  // not executed by the server: always safe to send again
        p->lastError = "rate limited by HPKV (429)";
        on429(obj, now);
        requeue(p);
        return;
    }
    if (code >= 500 && p->resendable && now < p->deadline) {
        // "nothing was changed": retry shortly instead of failing the caller on a blip.
        p->lastError = "HPKV error " + std::to_string(code);
        backoffUntil_ = std::max(backoffUntil_, now + std::chrono::milliseconds(100));
        requeue(p);
        return;
    }
    Result r;
    r.code = code;
    r.body = obj;
    if (code != 200) {
        std::string text;
        try {
            if (obj->has("error")) text = obj->getValue<std::string>("error");
            else if (obj->has("message")) text = obj->getValue<std::string>("message");
        } catch (...) {
        }
        r.error = "HPKV " + std::to_string(code) + ": " + (text.empty() ? "Unknown error" : text);
    }
    finish(p, std::move(r));
}

void Client::readFrames() {
    Poco::Buffer<char> buf(0);
    do {
        buf.resize(0);
        int flags = 0;
        int n = 0;
        try {
            n = ws_->receiveFrame(buf, flags);
        } catch (const Poco::Exception& e) {
            dropConnection("receive failed: " + e.displayText());
            return;
        }
        int op = flags & Poco::Net::WebSocket::FRAME_OP_BITMASK;
        if ((n == 0 && flags == 0) || op == Poco::Net::WebSocket::FRAME_OP_CLOSE) {
            dropConnection("closed by the server");
            return;
        }
        if (op == Poco::Net::WebSocket::FRAME_OP_PING) {
            try {
                ws_->sendFrame(buf.begin(), n, Poco::Net::WebSocket::FRAME_FLAG_FIN | Poco::Net::WebSocket::FRAME_OP_PONG);
            } catch (const Poco::Exception& e) {
                dropConnection("send failed: " + e.displayText());
                return;
            }
            continue;
        }
        if (op == Poco::Net::WebSocket::FRAME_OP_PONG) continue;
        if (op == Poco::Net::WebSocket::FRAME_OP_TEXT || op == Poco::Net::WebSocket::FRAME_OP_BINARY ||
            op == Poco::Net::WebSocket::FRAME_OP_CONT) {
            // HPKV does not fragment; if a server does, reassemble before parsing.
            thread_local std::string partial;
            if (!(flags & Poco::Net::WebSocket::FRAME_FLAG_FIN)) {
                partial.append(buf.begin(), n);
                continue;
            }
            if (!partial.empty()) {
                partial.append(buf.begin(), n);
                std::string whole;
                whole.swap(partial);
                handleMessage(whole.data(), whole.size());
            } else {
                handleMessage(buf.begin(), static_cast<size_t>(n));
            }
        }
    } while (ws_ && ws_->available() > 0);
}

void Client::expire(Clock::time_point now) {
    auto timeoutResult = [&](const PendingPtr& p) {
        Result r;
        r.code = kTimeout;
        std::string why = p->lastError;
        if (!ws_) {
            std::lock_guard<std::mutex> lk(mu_);
            why = "HPKV unreachable at " + wsUrl_ + (stats_.lastError.empty() ? "" : ": " + stats_.lastError);
        } else if (now < backoffUntil_) {
            why = "rate limited by HPKV (429), backing off";
        }
        r.error = "HPKV request timed out after " + std::to_string(p->timeoutMs) + " ms" + (why.empty() ? "" : " (" + why + ")");
        return r;
    };
    std::vector<PendingPtr> done;
    for (auto it = queue_.begin(); it != queue_.end();) {
        if ((*it)->deadline <= now) {
            done.push_back(*it);
            it = queue_.erase(it);
        } else {
            ++it;
        }
    }
    for (auto it = inflight_.begin(); it != inflight_.end();) {
        if (it->second->deadline <= now) {
            done.push_back(it->second);
            it = inflight_.erase(it);
        } else {
            ++it;
        }
    }
    for (auto& p : done) finish(p, timeoutResult(p));
}

void Client::run() {
    bool initial = true;
    for (;;) {
        std::unique_ptr<ConnectResult> cr;
        bool stopping;
        {
            std::lock_guard<std::mutex> lk(mu_);
            stopping = stopping_;
            while (!incoming_.empty()) {
                PendingPtr p = std::move(incoming_.front());
                incoming_.pop_front();
                p->order = nextOrder_++;
                queue_.push_back(std::move(p));
            }
            cr = std::move(connectResult_);
        }
        auto now = Clock::now();
        if (cr) {
            connecting_ = false;
            if (connectThread_.joinable()) connectThread_.join();
            if (cr->ws && !stopping) {
                ws_ = std::move(cr->ws);
                reconnectAttempt_ = 0;
                {
                    std::lock_guard<std::mutex> lk(mu_);
                    ++stats_.connects;
                    stats_.connected = true;
                }
                log(1, "hpkv_connected", (everConnected_ ? "reconnected to " : "connected to ") + wsUrl_ + "; " +
                                             std::to_string(queue_.size()) + " request(s) queued");
                everConnected_ = true;
                reportedDown_ = false;
            } else if (!cr->ws) {
                {
                    std::lock_guard<std::mutex> lk(mu_);
                    ++stats_.connectFailures;
                    stats_.lastError = cr->error;
                }
                // One warning per outage (then debug), so a dead server does not flood the log.
                log(reportedDown_ ? 0 : (cr->httpStatus == 401 || cr->httpStatus == 403 ? 3 : 2), "hpkv_unreachable",
                    "cannot connect to " + wsUrl_ + ": " + cr->error + " (attempt " + std::to_string(reconnectAttempt_ + 1) + ")");
                reportedDown_ = true;
                int delay = std::min(opts_.reconnectMaxMs, opts_.reconnectMinMs << std::min(reconnectAttempt_, 16));
                ++reconnectAttempt_;
                nextConnectAt_ = now + std::chrono::milliseconds(delay / 2 + jitterMs(delay / 2));
            }
        }
        if (stopping) break;
        if (!ws_ && !connecting_ && (initial || !queue_.empty()) && now >= nextConnectAt_) {
            initial = false;
            startConnect();
        }
        if (ws_) sendSome(now);
        if (now - lastExpireScan_ >= std::chrono::milliseconds(10)) {
            lastExpireScan_ = now;
            expire(now);
        }

        // Sleep until the socket, a submission or the next timer (deadline scan, back-off,
        // rate-limit token, reconnect) needs us.
        int timeout = 20;
        if (!queue_.empty() && ws_ && backoffUntil_ > now)
            timeout = std::min<int>(timeout, int(std::chrono::duration_cast<std::chrono::milliseconds>(backoffUntil_ - now).count()) + 1);
        if (!queue_.empty() && ws_ && (opts_.rateLimitPerSecond > 0 || adaptiveRate_ > 0)) timeout = std::min(timeout, 5);
        if (!ws_ && !connecting_ && !queue_.empty())
            timeout = std::max<int>(0, std::min<int>(timeout, int(std::chrono::duration_cast<std::chrono::milliseconds>(nextConnectAt_ - now).count()) + 1));
        if (ws_ && ws_->available() > 0) timeout = 0;  // TLS may hold decrypted bytes the fd does not show
        pollfd fds[2];
        int nfds = 1;
        fds[0] = {wakeFds_[0], POLLIN, 0};
        if (ws_) {
            fds[1] = {ws_->impl()->sockfd(), POLLIN, 0};
            nfds = 2;
        }
        int rc = ::poll(fds, nfds, timeout);
        if (rc > 0 && (fds[0].revents & POLLIN)) {
            char tmp[64];
            while (::read(wakeFds_[0], tmp, sizeof tmp) > 0) {
            }
            wakePending_.store(false);
        }
        if (ws_ && ((nfds == 2 && rc > 0 && (fds[1].revents & (POLLIN | POLLHUP | POLLERR))) || ws_->available() > 0))
            readFrames();
    }

    // Shutdown: exactly one callback for everything still pending.
    if (ws_) {
        try {
            ws_->shutdown();
        } catch (...) {
        }
        ws_.reset();
    }
    if (connectThread_.joinable()) connectThread_.join();  // bounded by connectTimeoutMs
    std::vector<PendingPtr> all(queue_.begin(), queue_.end());
    queue_.clear();
    for (auto& kv : inflight_) all.push_back(kv.second);
    inflight_.clear();
    {
        std::lock_guard<std::mutex> lk(mu_);
        for (auto& p : incoming_) all.push_back(p);
        incoming_.clear();
        stats_.connected = false;
    }
    for (auto& p : all) {
        Result r;
        r.code = kShutdown;
        r.error = "hpkv client stopped";
        finish(p, std::move(r));
    }
}

}  // namespace sfhpkv
