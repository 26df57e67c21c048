// One epoll loop per I/O thread. Everything a loop owns (connections, lanes, timers) is
// touched only on its thread; other threads talk to it with post(), which wakes the loop
// through an eventfd. Timers live in a per-loop heap: no periodic scans of connections.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>

namespace sf::net {

using TimerId = uint64_t;  // 0 = no timer

class EventLoop {
public:
    explicit EventLoop(std::string name = "io");
    ~EventLoop();
    EventLoop(const EventLoop&) = delete;
    EventLoop& operator=(const EventLoop&) = delete;

    // Run on the calling thread until stop(); or start()/join() a thread of its own.
    void run();
    void start();
    void stop();  // thread-safe; run() returns after the current turn
    void join();

    // The owner's final stop, in two steps so loops that post to each other stop first.
    // shutdown() (thread-safe, returns at once): on the loop thread every watcher's
    // onShutdown hook runs (a connection aborts, which breaks its handler<->connection
    // cycle), then the loop stops; join() waits for that. clear() (loop not running): drops
    // every timer, watcher, posted and deferred function and what they keep alive. Those
    // hold sessions and connections, and through them the loop's own owner: a cycle that
    // would outlive the owner. The loop is not run again after clear().
    void shutdown();
    void clear();

    // Thread-safe: fn runs on the loop thread, in posting order.
    void post(std::function<void()> fn);
    bool inLoopThread() const;

    // Loop thread only. Callbacks run on the loop thread.
    TimerId addTimer(uint64_t delayMs, std::function<void()> fn);
    void cancelTimer(TimerId id);
    uint64_t nowMs() const;  // monotonic, cached per loop turn

    // Loop thread only: watch an fd. events = EPOLLIN/EPOLLOUT/... bits; the callback
    // receives the ready bits. One watcher per fd. onShutdown runs once at shutdown() if
    // the fd is still watched then.
    using FdCallback = std::function<void(uint32_t events)>;
    void watch(int fd, uint32_t events, FdCallback cb, std::function<void()> onShutdown = {});
    void modify(int fd, uint32_t events);
    void unwatch(int fd);

    // Loop thread only: run fn at the end of this loop turn (after all I/O callbacks),
    // used to flush every connection written to in this turn with one writev each.
    void deferToEndOfTurn(std::function<void()> fn);

    const std::string& name() const { return name_; }

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
    std::string name_;
};

// Monotonic milliseconds (steady clock).
uint64_t monotonicMs();

}  // namespace sf::net
