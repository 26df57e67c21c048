// embedded_pub: streamfenced's embedded-API publish path for the benchmarks. Starts one server
// of a JSON config through sf::StreamFenceServerBuilder (the same code streamfenced runs), waits
// for --expect subscribers, then calls server->publish() at --rate messages/s with the payload
// loadgen measures ({"ts": CLOCK_MONOTONIC ns, "seq", "pad"}). No HTTP, no control thread: the
// difference to the control-API rows is the cost of that path.
//
//   embedded_pub --config FILE [--server b] [--ns /feed] [--topic t] --rate R [--expect N] [--payload B]
//
// --rate 0 --threads T is the open-loop flood: T threads call publish() back to back for
// --seconds D (then keep serving until SIGTERM), counting Accepted and Overloaded answers.
//
// --window W (with --rate 0): each thread uses publishAsync() and keeps up to W publishes in
// flight instead of blocking in publish() (a durable namespace answers once on disk).
//
// Logs `event=listening server=embedded host=127.0.0.1 port=N` on stderr; at exit one line
// `RESULT accepted=N overloaded=N not_running=N seconds=S stop_ms=M` on stdout.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <cinttypes>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <time.h>

#include "embed/streamfence.hpp"

namespace {

std::atomic<bool> g_stop{false};
void onSignal(int) { g_stop = true; }

uint64_t nowNs() {
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return uint64_t(ts.tv_sec) * 1000000000ull + uint64_t(ts.tv_nsec);
}

struct SubCounter : sf::ServerListener {
    std::atomic<int> subs{0};
    void onSubscribed(const sf::delivery::SubscribedEvent&) override { ++subs; }
    void onUnsubscribed(const sf::delivery::UnsubscribedEvent&) override { --subs; }
};

}  // namespace

int main(int argc, char** argv) {
    std::string config, server = "b", ns = "/feed", topic = "t";
    double rate = 1000;
    int expect = 1, payload = 100, threads = 1, window = 0;
    double seconds = 1e9;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        auto next = [&]() -> std::string {
            if (i + 1 >= argc) {
                std::fprintf(stderr, "missing value for %s\n", a.c_str());
                std::exit(2);
            }
            return argv[++i];
        };
        if (a == "--config") config = next();
        else if (a == "--server") server = next();
        else if (a == "--ns") ns = next();
        else if (a == "--topic") topic = next();
        else if (a == "--rate") rate = std::atof(next().c_str());
        else if (a == "--expect") expect = std::atoi(next().c_str());
        else if (a == "--payload") payload = std::atoi(next().c_str());
        else if (a == "--threads") threads = std::atoi(next().c_str());
        else if (a == "--seconds") seconds = std::atof(next().c_str());
        else if (a == "--window") window = std::atoi(next().c_str());
        else {
            std::fprintf(stderr, "usage: embedded_pub --config FILE [--server b] [--ns /feed] [--topic t] --rate R "
                                 "[--expect N] [--payload B]\n");
            return 2;
        }
    }
    if (config.empty() || rate < 0 || threads <= 0) {
        std::fprintf(stderr, "embedded_pub: --config and a --rate >= 0 (0 = flat out) are required\n");
        return 2;
    }
    std::signal(SIGTERM, onSignal);
    std::signal(SIGINT, onSignal);
    std::signal(SIGPIPE, SIG_IGN);

    auto counter = std::make_shared<SubCounter>();
    std::unique_ptr<sf::StreamFenceServer> s;
    try {
        auto b = sf::StreamFenceServerBuilder::fromJson(config, server);
        b.listener(counter);
        s = b.build();
        s->start();
    } catch (const std::exception& e) {
        std::fprintf(stderr, "embedded_pub: %s\n", e.what());
        return 1;
    }
    std::fprintf(stderr, "event=listening server=embedded host=127.0.0.1 port=%d\n", s->info().port);

    while (!g_stop && counter->subs.load() < expect) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    std::string pad(size_t(payload > 48 ? payload - 48 : 0), 'x');
    const uint64_t start = nowNs(), end = start + uint64_t(seconds * 1e9);
    std::atomic<uint64_t> seq{0}, accepted{0}, overloaded{0}, notRunning{0};
    auto count = [&](sf::PublishResult r) {
        switch (r) {
            case sf::PublishResult::Accepted: ++accepted; break;
            case sf::PublishResult::Overloaded: ++overloaded; break;
            case sf::PublishResult::NotRunning: ++notRunning; break;
            case sf::PublishResult::ClusterUnavailable: ++notRunning; break;
        }
    };
    auto format = [&](char* buf, size_t size, uint64_t n) {
        std::snprintf(buf, size, "{\"ts\":%" PRIu64 ",\"seq\":%" PRIu64 ",\"pad\":\"%s\"}", nowNs(), n, pad.c_str());
    };
    auto publishOne = [&](uint64_t n) {
        char buf[4096];
        format(buf, sizeof buf, n);
        count(s->publish(ns, topic, buf));
    };
    // --window: in-flight publishAsync calls (all threads), each answered on the server's thread.
    std::mutex wmu;
    std::condition_variable wcv;
    int inFlight = 0;
    auto publishWindowed = [&](uint64_t n) {
        {
            std::unique_lock<std::mutex> lk(wmu);
            wcv.wait(lk, [&] { return inFlight < window * threads; });
            ++inFlight;
        }
        char buf[4096];
        format(buf, sizeof buf, n);
        s->publishAsync(ns, topic, buf, [&](sf::PublishResult r) {
            count(r);
            std::lock_guard<std::mutex> lk(wmu);
            --inFlight;
            wcv.notify_all();
        });
    };
    std::vector<std::thread> pubs;
    if (rate == 0) {  // open loop: never waits for anything but publish() itself
        for (int t = 0; t < threads; ++t)
            pubs.emplace_back([&] {
                while (!g_stop && nowNs() < end) {
                    if (window > 0) publishWindowed(seq++);
                    else publishOne(seq++);
                }
            });
    } else {
        pubs.emplace_back([&] {
            uint64_t sent = 0;
            while (!g_stop && nowNs() < end) {
                uint64_t due = uint64_t(double(nowNs() - start) * rate / 1e9);
                for (; sent < due && !g_stop; ++sent) publishOne(sent);
                std::this_thread::sleep_for(std::chrono::microseconds(200));
            }
        });
    }
    while (!g_stop) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    for (auto& t : pubs) t.join();
    {
        std::unique_lock<std::mutex> lk(wmu);
        wcv.wait(lk, [&] { return inFlight == 0; });
    }
    const double secs = double(std::min(nowNs(), end) - start) / 1e9;
    const uint64_t t0 = nowNs();
    s->stop();
    std::fprintf(stderr, "embedded_pub: published %" PRIu64 " messages\n", accepted.load());
    std::printf("RESULT accepted=%" PRIu64 " overloaded=%" PRIu64 " not_running=%" PRIu64 " seconds=%.2f stop_ms=%.0f\n",
                accepted.load(), overloaded.load(), notRunning.load(), secs, double(nowNs() - t0) / 1e6);
    return 0;
}
