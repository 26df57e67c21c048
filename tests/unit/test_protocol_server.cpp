// SioServer in-process, driven by a raw blocking websocket client: the NamespaceHandler
// contract delivery relies on (async onConnect, events with acks, emitWithAck timeouts,
// shared frames, server disconnect, disconnect reasons, handshake data).
#include <cppunit/extensions/HelperMacros.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "net/event_loop.hpp"
#include "protocol/sio_server.hpp"
#include "protocol/websocket.hpp"
#include "raw_ws.hpp"

using namespace sf;
using sf::test::RawWs;

namespace {

// Records what the server side saw; thread-safe since the loops call it.
struct Recorder : sio::NamespaceHandler {
    std::mutex mu;
    std::condition_variable cv;
    std::vector<std::string> log;
    // Weak: the socket holds this handler, so a strong reference here would be a cycle that
    // outlives the server (LeakSanitizer in make test-sanitize).
    std::vector<std::weak_ptr<sio::Socket>> sockets;
    bool asyncConnect = false;
    bool refuse = false;

    void add(std::string s) {
        std::lock_guard<std::mutex> g(mu);
        log.push_back(std::move(s));
        cv.notify_all();
    }
    bool waitFor(const std::string& prefix, int ms = 3000) {
        std::unique_lock<std::mutex> l(mu);
        return cv.wait_for(l, std::chrono::milliseconds(ms), [&] {
            for (auto& e : log)
                if (e.rfind(prefix, 0) == 0) return true;
            return false;
        });
    }
    void onConnect(const sio::SocketPtr& s, std::function<void(bool, json::Value)> done) override {
        {
            std::lock_guard<std::mutex> g(mu);
            sockets.push_back(s);
        }
        add("connect " + s->nsp() + " auth=" + s->auth().dump() + " ua=" + s->header("user-agent") + " q=" + s->query("q"));
        if (refuse) {
            json::Value e = json::Value::object();
            e.set("message", "nope");
            done(false, std::move(e));
        } else if (asyncConnect) {
            // Answer later, from a timer on the socket's loop (what async auth does).
            s->loop().addTimer(50, [done] { done(true, {}); });
        } else {
            done(true, {});
        }
    }
    void onEvent(const sio::SocketPtr& s, const std::string& event, sio::Args& args, sio::AckFn ack) override {
        std::string a;
        for (auto& v : args) a += (v.isBinary() ? "<bin:" + v.asBinary() + ">" : v.dump()) + ";";
        add("event " + event + " " + a + (ack ? " ack" : ""));
        if (event == "ack-me" && ack) ack(sio::Args{json::Value("done"), json::Value::binary("\x01\x02")});
        if (event == "frame") s->sendFrame(sio::encodeEvent(s->nsp(), "shared", {"{\"p\":1}"}));
        if (event == "kick") s->disconnect();
        if (event == "flood") {
            // Queue until the socket reports full, as delivery does; onDrain must follow.
            auto f = sio::encodeEvent(s->nsp(), "big", {json::quote(std::string(3000, 'x'))});
            int n = 0;
            while (!s->backpressured() && n < 1000) {
                s->sendFrame(f);
                ++n;
            }
            add("flooded " + std::to_string(n));
        }
        if (event == "ask") {
            s->emitWithAck("question", {json::Value(1)}, 300, [this](bool timedOut, sio::Args reply) {
                add(std::string("answer timedOut=") + (timedOut ? "1" : "0") + " " + json::Value(std::move(reply)).dump());
            });
        }
    }
    void onDrain(const sio::SocketPtr& s) override { add("drain " + s->nsp()); }
    void onDisconnect(const sio::SocketPtr& s, const std::string& reason) override {
        add("disconnect " + s->nsp() + " " + reason);
    }
};

}  // namespace

class ProtocolServerTest : public CppUnit::TestFixture {
    CPPUNIT_TEST_SUITE(ProtocolServerTest);
    CPPUNIT_TEST(namespaceContract);
    CPPUNIT_TEST(asyncConnectAndRefusal);
    CPPUNIT_TEST(startStopRestart);
    CPPUNIT_TEST_SUITE_END();

    std::unique_ptr<sio::SioServer> make(std::shared_ptr<Recorder> main, std::shared_ptr<Recorder> other) {
        config::ServerConfig c;
        c.name = "unit";
        c.host = "127.0.0.1";
        c.port = 0;
        c.ioThreads = 2;
        c.pingIntervalMs = 5000;
        c.pingTimeoutMs = 5000;
        auto s = std::make_unique<sio::SioServer>(c);
        s->addNamespace("/", main);
        if (other) s->addNamespace("/other", other);
        s->start();
        return s;
    }

public:
    void namespaceContract() {
        auto rec = std::make_shared<Recorder>();
        auto srv = make(rec, nullptr);
        CPPUNIT_ASSERT(srv->port() > 0);
        CPPUNIT_ASSERT_EQUAL(size_t(2), srv->loops().size());
        RawWs c(srv->port(), "EIO=4&transport=websocket&q=hello%20there");
        CPPUNIT_ASSERT(c.status().find("101") != std::string::npos);
        std::string open = c.next();
        CPPUNIT_ASSERT(open.rfind("0{\"sid\":\"", 0) == 0);
        c.send("40{\"token\":\"t\"}");
        std::string ok = c.next();
        CPPUNIT_ASSERT_MESSAGE(ok, ok.rfind("40{\"sid\":\"", 0) == 0);
        CPPUNIT_ASSERT(rec->waitFor("connect / auth={\"token\":\"t\"} ua=unit q=hello there"));
        CPPUNIT_ASSERT_EQUAL(size_t(1), srv->sessionCount());

        c.send("42[\"hi\",1,{\"a\":[true]}]");
        CPPUNIT_ASSERT(rec->waitFor("event hi 1;{\"a\":[true]};"));
        c.send("4212[\"ack-me\"]");
        CPPUNIT_ASSERT_EQUAL(std::string("461-12[\"done\",{\"_placeholder\":true,\"num\":0}]"), c.next());
        CPPUNIT_ASSERT_EQUAL(std::string("\x01\x02"), c.next());
        c.send("451-[\"bin\",{\"_placeholder\":true,\"num\":0}]");
        c.send("xyz", true);
        CPPUNIT_ASSERT(rec->waitFor("event bin <bin:xyz>;"));
        c.send("42[\"frame\"]");
        CPPUNIT_ASSERT_EQUAL(std::string("42[\"shared\",{\"p\":1}]"), c.next());
        // Server -> client ack, answered.
        c.send("42[\"ask\"]");
        CPPUNIT_ASSERT_EQUAL(std::string("420[\"question\",1]"), c.next());
        c.send("430[\"yes\"]");
        CPPUNIT_ASSERT(rec->waitFor("answer timedOut=0 [\"yes\"]"));
        // ... and not answered: times out.
        c.send("42[\"ask\"]");
        CPPUNIT_ASSERT_EQUAL(std::string("421[\"question\",1]"), c.next());
        CPPUNIT_ASSERT(rec->waitFor("answer timedOut=1 []", 2000));
        // Backpressure: full, then drained once the bytes have left.
        c.send("42[\"flood\"]");
        CPPUNIT_ASSERT(rec->waitFor("flooded"));
        int frames = 0;
        {
            std::lock_guard<std::mutex> g(rec->mu);
            for (auto& e : rec->log)
                if (e.rfind("flooded ", 0) == 0) frames = std::stoi(e.substr(8));
        }
        CPPUNIT_ASSERT(frames >= 4);
        for (int i = 0; i < frames; ++i) CPPUNIT_ASSERT(c.next().rfind("42[\"big\"", 0) == 0);
        CPPUNIT_ASSERT(rec->waitFor("drain /"));
        // Server-side disconnect sends DISCONNECT and tells the handler.
        c.send("42[\"kick\"]");
        CPPUNIT_ASSERT_EQUAL(std::string("41"), c.next());
        CPPUNIT_ASSERT(rec->waitFor("disconnect / server namespace disconnect"));
        // Unknown namespace.
        c.send("40/nope,");
        CPPUNIT_ASSERT_EQUAL(std::string("44/nope,{\"message\":\"Invalid namespace\"}"), c.next());
        // Malformed packet closes the client; the handler hears nothing more.
        c.send("40");
        CPPUNIT_ASSERT(c.next().rfind("40{", 0) == 0);
        c.send("42{}");
        CPPUNIT_ASSERT_EQUAL(std::string(), c.next());
        CPPUNIT_ASSERT(rec->waitFor("disconnect / parse error"));
        srv->stop();
    }

    void asyncConnectAndRefusal() {
        auto rec = std::make_shared<Recorder>();
        auto other = std::make_shared<Recorder>();
        rec->asyncConnect = true;
        other->refuse = true;
        auto srv = make(rec, other);
        RawWs c(srv->port());
        c.next();
        c.send("40");
        c.send("42[\"early\"]");  // before the async accept: dropped, not delivered
        std::string ok = c.next();
        CPPUNIT_ASSERT_MESSAGE(ok, ok.rfind("40{\"sid\":\"", 0) == 0);
        c.send("40/other,");
        CPPUNIT_ASSERT_EQUAL(std::string("44/other,{\"message\":\"nope\"}"), c.next());
        c.send("42[\"late\"]");
        CPPUNIT_ASSERT(rec->waitFor("event late"));
        CPPUNIT_ASSERT(!rec->waitFor("event early", 10));
        CPPUNIT_ASSERT(!other->waitFor("disconnect", 10));  // refused sockets never "disconnect"
        // Transport close reaches the handler with Node's reason.
        c.send("1");
        CPPUNIT_ASSERT(rec->waitFor("disconnect / transport close"));
        srv->stop();
    }

    void startStopRestart() {
        for (int i = 0; i < 3; ++i) {
            auto rec = std::make_shared<Recorder>();
            auto srv = make(rec, nullptr);
            RawWs c(srv->port());
            c.next();
            c.send("40");
            c.next();
            srv->stop();
            CPPUNIT_ASSERT(rec->waitFor("disconnect / server shutting down"));
            srv->stop();  // idempotent
        }
    }
};

CPPUNIT_TEST_SUITE_REGISTRATION(ProtocolServerTest);
