// A few threads for work that may block (token validators flagged MAY_BLOCK), so no event
// loop ever waits. Tasks run in submission order per thread; results are posted back to
// the loop by the task itself.
#pragma once
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace sf::delivery {

class WorkerPool {
public:
    explicit WorkerPool(size_t threads = 2);
    ~WorkerPool();  // runs what is queued, then joins
    WorkerPool(const WorkerPool&) = delete;
    WorkerPool& operator=(const WorkerPool&) = delete;

    void submit(std::function<void()> task);

private:
    void run();
    std::mutex mu_;
    std::condition_variable cv_;
    std::deque<std::function<void()>> tasks_;
    bool stopping_ = false;
    std::vector<std::thread> threads_;
};

}  // namespace sf::delivery
