// Watches a few files from a thread of its own and says when they may have changed: as soon
// as inotify reports a change in one of their directories and the directory has been quiet
// for settleMs (writers finish), and in any case every intervalMs (a fallback for file
// systems without inotify events, and the only mode when inotify is unavailable). The
// directories are watched rather than the files, so a file replaced by rename or a swapped
// symlink (how certificate managers rotate) is seen too. The callback runs on the watch
// thread, never on an event loop, so it may do slow work such as loading files.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace sf::net {

class FileWatch {
public:
    // fromEvent: true after an inotify report, false on the interval tick.
    using Callback = std::function<void(bool fromEvent)>;
    FileWatch(const std::vector<std::string>& paths, uint64_t intervalMs, uint64_t settleMs, Callback onCheck);
    ~FileWatch();  // stops the thread and waits for a running callback to return
    FileWatch(const FileWatch&) = delete;
    FileWatch& operator=(const FileWatch&) = delete;

    bool usesInotify() const;

    struct State;

private:
    std::unique_ptr<State> st_;
};

}  // namespace sf::net
