#include "net/file_watch.hpp"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <set>
#include <stdexcept>
#include <thread>

#include "common/log.hpp"

namespace sf::net {

namespace {

using Clock = std::chrono::steady_clock;

std::string parentDir(const std::string& path) {
    size_t slash = path.find_last_of('/');
    if (slash == std::string::npos) return ".";
    return slash == 0 ? "/" : path.substr(0, slash);
}

// Changes that can mean new file contents: a write finished, a file or symlink was moved in,
// created, removed, or changed its metadata.
constexpr uint32_t kMask = IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE | IN_DELETE | IN_ATTRIB;

}  // namespace

struct FileWatch::State {
    uint64_t intervalMs, settleMs;
    Callback onCheck;
    int inotifyFd = -1;
    int wakeFd = -1;  // eventfd: the destructor's "stop"
    std::thread thread;

    void run() {
        auto nextTick = Clock::now() + std::chrono::milliseconds(intervalMs);
        bool settling = false;
        Clock::time_point settleAt;
        char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
        for (;;) {
            auto now = Clock::now();
            auto deadline = settling && settleAt < nextTick ? settleAt : nextTick;
            auto waitMs = deadline > now ? std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now).count() + 1 : 0;
            pollfd fds[2] = {{wakeFd, POLLIN, 0}, {inotifyFd, POLLIN, 0}};
            int n = ::poll(fds, inotifyFd >= 0 ? 2 : 1, static_cast<int>(waitMs));
            if (n < 0 && errno != EINTR) {
                log::error("file_watch_failed", {{"error", std::strerror(errno)}});
                return;
            }
            if (n > 0 && fds[0].revents) return;
            if (n > 0 && inotifyFd >= 0 && fds[1].revents) {
                while (::read(inotifyFd, buf, sizeof buf) > 0) {
                }
                settling = true;  // (re)start the quiet period
                settleAt = Clock::now() + std::chrono::milliseconds(settleMs);
            }
            now = Clock::now();
            if (settling && now >= settleAt) {
                settling = false;
                onCheck(true);
            }
            if (now >= nextTick) {
                nextTick = now + std::chrono::milliseconds(intervalMs);
                onCheck(false);
            }
        }
    }
};

FileWatch::FileWatch(const std::vector<std::string>& paths, uint64_t intervalMs, uint64_t settleMs, Callback onCheck)
    : st_(std::make_unique<State>()) {
    st_->intervalMs = intervalMs ? intervalMs : 1;
    st_->settleMs = settleMs;
    st_->onCheck = std::move(onCheck);
    st_->wakeFd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (st_->wakeFd < 0) throw std::runtime_error(std::string("file watch: eventfd: ") + std::strerror(errno));
    // Without inotify (or a directory it refuses) the interval tick alone keeps watching.
    st_->inotifyFd = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    std::string failedOn = st_->inotifyFd < 0 ? "inotify_init1" : "";
    std::set<std::string> dirs;
    for (const auto& p : paths) dirs.insert(parentDir(p));
    for (const auto& d : dirs) {
        if (st_->inotifyFd >= 0 && ::inotify_add_watch(st_->inotifyFd, d.c_str(), kMask) < 0) {
            failedOn = d;
            ::close(st_->inotifyFd);
            st_->inotifyFd = -1;
        }
    }
    if (st_->inotifyFd < 0)
        log::warn("file_watch_polling", {{"on", failedOn}, {"error", std::strerror(errno)},
                                         {"interval_ms", std::to_string(st_->intervalMs)}});
    State* s = st_.get();
    st_->thread = std::thread([s] { s->run(); });
}

FileWatch::~FileWatch() {
    uint64_t one = 1;
    if (::write(st_->wakeFd, &one, sizeof one) < 0) {
        // an eventfd write only fails on counter overflow: the thread is being woken anyway
    }
    if (st_->thread.joinable()) st_->thread.join();
    if (st_->inotifyFd >= 0) ::close(st_->inotifyFd);
    ::close(st_->wakeFd);
}

bool FileWatch::usesInotify() const { return st_->inotifyFd >= 0; }

}  // namespace sf::net
