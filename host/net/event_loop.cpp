#include "net/event_loop.hpp"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <unordered_map>
#include <vector>

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "common/log.hpp"

namespace sf::net {

uint64_t monotonicMs() {
    using namespace std::chrono;
    return static_cast<uint64_t>(duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count());
}

namespace {
constexpr int kMaxEvents = 256;

struct Watcher {
    int fd;
    uint32_t seq;  // tells a stale epoll event from a reused fd number
    EventLoop::FdCallback cb;
    std::function<void()> onShutdown;
};

// A throwing callback must not take the whole loop (and every connection on it) down.
template <class F>
void guarded(const char* what, F&& fn) {
    try {
        fn();
    } catch (const std::exception& e) {
        sf::log::error("loop_callback_threw", {{"where", what}, {"error", e.what()}});
    } catch (...) {
        sf::log::error("loop_callback_threw", {{"where", what}, {"error", "unknown exception"}});
    }
}

struct HeapEntry {
    uint64_t when;
    TimerId id;
    // std heap is a max-heap: "greater" puts the earliest (then lowest id) on top.
    bool operator>(const HeapEntry& o) const { return when != o.when ? when > o.when : id > o.id; }
};
}  // namespace

struct EventLoop::Impl {
    int epfd = -1;
    int wakefd = -1;
    std::atomic<bool> stopping{false};
    // shutdown(): the hooks run once, on the loop thread if it runs, else on the caller's.
    std::atomic<bool> running{false};
    std::atomic<bool> shutdownRequested{false};
    std::atomic<bool> hooksClaimed{false};
    std::atomic<std::thread::id> loopThread{};
    std::thread thread;
    uint64_t now = monotonicMs();

    // fd -> watcher; shared_ptr so a callback that unwatches itself stays alive while it runs
    std::vector<std::shared_ptr<Watcher>> watchers;
    uint32_t nextSeq = 1;

    std::mutex postMu;
    std::vector<std::function<void()>> posted;
    bool wakePending = false;  // guarded by postMu: one eventfd write per batch of posts

    // Timers: heap entries are never removed on cancel (no scan); the map is the truth and
    // a stale entry is skipped when it reaches the top. Compacted if stale ones pile up.
    std::vector<HeapEntry> heap;
    std::unordered_map<TimerId, std::function<void()>> timers;
    TimerId nextTimer = 1;

    std::vector<std::function<void()>> endOfTurn;

    void wake() {
        uint64_t one = 1;
        ssize_t r;
        do r = ::write(wakefd, &one, sizeof one); while (r < 0 && errno == EINTR);
    }
    void drainWake() {
        uint64_t v;
        while (::read(wakefd, &v, sizeof v) > 0) {}
    }
    void compactHeap() {
        heap.erase(std::remove_if(heap.begin(), heap.end(), [&](const HeapEntry& e) { return !timers.count(e.id); }),
                   heap.end());
        std::make_heap(heap.begin(), heap.end(), std::greater<HeapEntry>());
    }
    // Top of the heap after dropping cancelled entries; nullptr if no timers.
    const HeapEntry* nextLive() {
        while (!heap.empty() && !timers.count(heap.front().id)) {
            std::pop_heap(heap.begin(), heap.end(), std::greater<HeapEntry>());
            heap.pop_back();
        }
        return heap.empty() ? nullptr : &heap.front();
    }
    int epollTimeout() {
        {
            std::lock_guard<std::mutex> g(postMu);
            if (!posted.empty()) return 0;
        }
        if (!endOfTurn.empty()) return 0;
        const HeapEntry* e = nextLive();
        if (!e) return -1;
        uint64_t t = monotonicMs();
        if (e->when <= t) return 0;
        uint64_t d = e->when - t;
        return d > 60000 ? 60000 : static_cast<int>(d);
    }
    void runTimers() {
        // Collect first, then run: a timer that adds a 0 ms timer must not spin this turn.
        std::vector<std::function<void()>> due;
        std::vector<TimerId> dueIds;
        for (const HeapEntry* e = nextLive(); e && e->when <= now; e = nextLive()) {
            dueIds.push_back(e->id);
            std::pop_heap(heap.begin(), heap.end(), std::greater<HeapEntry>());
            heap.pop_back();
        }
        for (TimerId id : dueIds) {
            auto it = timers.find(id);
            if (it == timers.end()) continue;  // cancelled by an earlier timer of this batch
            auto fn = std::move(it->second);
            timers.erase(it);
            guarded("timer", fn);
        }
    }
    void runShutdownHooks() {
        if (hooksClaimed.exchange(true)) return;
        std::vector<std::shared_ptr<Watcher>> hooked;
        for (auto& w : watchers)
            if (w && w->onShutdown) hooked.push_back(w);
        for (auto& w : hooked)
            if (watchers[static_cast<size_t>(w->fd)] == w) guarded("shutdown", w->onShutdown);  // not unwatched by an earlier hook
        runEndOfTurn();
    }
    void runEndOfTurn() {
        // Callbacks may defer more (a flush that triggers another); run until empty.
        while (!endOfTurn.empty()) {
            std::vector<std::function<void()>> batch;
            batch.swap(endOfTurn);
            for (auto& fn : batch) guarded("end_of_turn", fn);
        }
    }
};

EventLoop::EventLoop(std::string name) : impl_(std::make_unique<Impl>()), name_(std::move(name)) {
    impl_->epfd = ::epoll_create1(EPOLL_CLOEXEC);
    if (impl_->epfd < 0) throw std::runtime_error(std::string("epoll_create1: ") + std::strerror(errno));
    impl_->wakefd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (impl_->wakefd < 0) {
        ::close(impl_->epfd);
        throw std::runtime_error(std::string("eventfd: ") + std::strerror(errno));
    }
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = ~0ull;  // marks the wake fd
    ::epoll_ctl(impl_->epfd, EPOLL_CTL_ADD, impl_->wakefd, &ev);
}

EventLoop::~EventLoop() {
    stop();
    join();
    clear();  // callbacks (and the connections they keep alive) go before the fds
    ::close(impl_->wakefd);
    ::close(impl_->epfd);
}

void EventLoop::run() {
    Impl& m = *impl_;
    m.running.store(true);
    m.loopThread = std::this_thread::get_id();
    epoll_event events[kMaxEvents];
    while (!m.stopping.load(std::memory_order_acquire)) {
        int timeout = m.epollTimeout();
        int n = ::epoll_wait(m.epfd, events, kMaxEvents, timeout);
        if (n < 0) {
            if (errno != EINTR) sf::log::error("epoll_wait_failed", {{"loop", name_}, {"error", std::strerror(errno)}});
            n = 0;
        }
        m.now = monotonicMs();

        // 1. fd callbacks
        for (int i = 0; i < n; ++i) {
            uint64_t tag = events[i].data.u64;
            if (tag == ~0ull) {
                m.drainWake();
                continue;
            }
            int fd = static_cast<int>(tag & 0xffffffffu);
            uint32_t seq = static_cast<uint32_t>(tag >> 32);
            if (fd < 0 || static_cast<size_t>(fd) >= m.watchers.size()) continue;
            std::shared_ptr<Watcher> w = m.watchers[fd];  // copy: survives unwatch inside cb
            if (!w || w->seq != seq) continue;  // unwatched (or fd reused) earlier in this turn
            guarded("fd", [&] { w->cb(events[i].events); });
        }

        // 2. posted functions (only those present now; new posts wait for the next turn)
        std::vector<std::function<void()>> batch;
        {
            std::lock_guard<std::mutex> g(m.postMu);
            batch.swap(m.posted);
            m.wakePending = false;
        }
        for (auto& fn : batch) guarded("post", fn);
        batch.clear();

        // 3. expired timers
        m.runTimers();

        // 4. end of turn: connection flushes
        m.runEndOfTurn();
    }
    // Store running, then read shutdownRequested; shutdown() does the reverse: one of the
    // two sees the other, so the hooks run (once, hooksClaimed) even if stop() came first.
    m.running.store(false);
    if (m.shutdownRequested.load()) m.runShutdownHooks();
    m.stopping.store(false, std::memory_order_release);  // allows run() again after stop()
    m.loopThread = std::thread::id();
}

void EventLoop::start() {
    if (impl_->thread.joinable()) return;
    impl_->running.store(true);  // before the thread: a shutdown() right after start() waits for it
    impl_->thread = std::thread([this] { run(); });
}

void EventLoop::stop() {
    impl_->stopping.store(true, std::memory_order_release);
    impl_->wake();
}

void EventLoop::shutdown() {
    Impl& m = *impl_;
    m.shutdownRequested.store(true);
    if (m.running.load()) stop();  // run() runs the hooks on its way out
    else m.runShutdownHooks();     // not running: this is the only thread touching it
}

void EventLoop::clear() {
    Impl& m = *impl_;
    // Destroying a callback may destroy an object that cancels a timer, unwatches, defers or
    // posts: each container is moved out before its contents die, until all stay empty.
    for (;;) {
        auto watchers = std::move(m.watchers);
        m.watchers.clear();
        auto timers = std::move(m.timers);
        m.timers.clear();
        m.heap.clear();
        auto endOfTurn = std::move(m.endOfTurn);
        m.endOfTurn.clear();
        std::vector<std::function<void()>> posted;
        {
            std::lock_guard<std::mutex> g(m.postMu);
            posted.swap(m.posted);
        }
        bool any = !timers.empty() || !endOfTurn.empty() || !posted.empty() ||
                   std::any_of(watchers.begin(), watchers.end(), [](const auto& w) { return w != nullptr; });
        if (!any) return;
    }
}

void EventLoop::join() {
    if (impl_->thread.joinable() && impl_->thread.get_id() != std::this_thread::get_id()) impl_->thread.join();
}

void EventLoop::post(std::function<void()> fn) {
    bool needWake;
    {
        std::lock_guard<std::mutex> g(impl_->postMu);
        impl_->posted.push_back(std::move(fn));
        needWake = !impl_->wakePending;
        impl_->wakePending = true;
    }
    if (needWake) impl_->wake();
}

bool EventLoop::inLoopThread() const { return impl_->loopThread.load() == std::this_thread::get_id(); }

TimerId EventLoop::addTimer(uint64_t delayMs, std::function<void()> fn) {
    Impl& m = *impl_;
    TimerId id = m.nextTimer++;
    // Outside a turn (setup before run()) the cached time may be stale: use a fresh one.
    uint64_t base = inLoopThread() ? m.now : monotonicMs();
    m.timers.emplace(id, std::move(fn));
    m.heap.push_back({base + delayMs, id});
    std::push_heap(m.heap.begin(), m.heap.end(), std::greater<HeapEntry>());
    if (m.heap.size() > 1024 && m.heap.size() > 2 * m.timers.size()) m.compactHeap();
    return id;
}

void EventLoop::cancelTimer(TimerId id) {
    if (id) impl_->timers.erase(id);
}

uint64_t EventLoop::nowMs() const { return inLoopThread() ? impl_->now : monotonicMs(); }

void EventLoop::watch(int fd, uint32_t events, FdCallback cb, std::function<void()> onShutdown) {
    Impl& m = *impl_;
    if (fd < 0) throw std::invalid_argument("EventLoop::watch: negative fd");
    if (static_cast<size_t>(fd) >= m.watchers.size()) m.watchers.resize(static_cast<size_t>(fd) + 64);
    if (m.watchers[fd]) throw std::logic_error("EventLoop::watch: fd already watched");
    auto w = std::make_shared<Watcher>();
    w->fd = fd;
    w->seq = m.nextSeq++;
    if (m.nextSeq == 0) m.nextSeq = 1;
    w->cb = std::move(cb);
    w->onShutdown = std::move(onShutdown);
    epoll_event ev{};
    ev.events = events;
    ev.data.u64 = (static_cast<uint64_t>(w->seq) << 32) | static_cast<uint32_t>(fd);
    if (::epoll_ctl(m.epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
        throw std::runtime_error(std::string("epoll_ctl(ADD): ") + std::strerror(errno));
    m.watchers[fd] = std::move(w);
}

void EventLoop::modify(int fd, uint32_t events) {
    Impl& m = *impl_;
    if (fd < 0 || static_cast<size_t>(fd) >= m.watchers.size() || !m.watchers[fd]) return;
    epoll_event ev{};
    ev.events = events;
    ev.data.u64 = (static_cast<uint64_t>(m.watchers[fd]->seq) << 32) | static_cast<uint32_t>(fd);
    if (::epoll_ctl(m.epfd, EPOLL_CTL_MOD, fd, &ev) < 0)
        sf::log::warn("epoll_mod_failed", {{"loop", name_}, {"fd", std::to_string(fd)}, {"error", std::strerror(errno)}});
}

void EventLoop::unwatch(int fd) {
    Impl& m = *impl_;
    if (fd < 0 || static_cast<size_t>(fd) >= m.watchers.size() || !m.watchers[fd]) return;
    ::epoll_ctl(m.epfd, EPOLL_CTL_DEL, fd, nullptr);  // may fail if already closed: harmless
    // Move out before destroying: the callback may own the object calling us.
    std::shared_ptr<Watcher> w = std::move(m.watchers[fd]);
    m.watchers[fd].reset();
    w.reset();
}

void EventLoop::deferToEndOfTurn(std::function<void()> fn) { impl_->endOfTurn.push_back(std::move(fn)); }

}  // namespace sf::net
