// "faulty": an in-memory FIFO storage backend that fails its calls on command, for the
// fault-injection tests. While the file named by option `failFile` exists, the operations
// whose names it contains (`append`, `read`, `remove`, `clear`) fail; with the word `refuse`
// they are refused at the call (the entry point returns false), otherwise they are accepted
// and their completion reports SF_ERR later, from a thread of the plugin's own, as a real
// backend's I/O failure would. Option `failEvery: N` also fails every Nth append.
#include <streamfence/plugin.hpp>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>

using namespace streamfence;

class FaultyStorage : public StorageBackend {
public:
    FaultyStorage(const Host&, const Options& o)
        : failFile_(o.get("failFile")), failEvery_(static_cast<uint64_t>(o.getInt("failEvery", 0))) {
        worker_ = std::thread([this] { run(); });
    }
    ~FaultyStorage() override {
        {
            std::lock_guard<std::mutex> lk(mu_);
            stop_ = true;
        }
        cv_.notify_all();
        worker_.join();
    }

    bool append(const LaneKey& lane, Record record, Completion done) override {
        const bool nth = failEvery_ && (++appends_ % failEvery_) == 0;
        return submit("append", nth, done, [this, lane, record = std::move(record), done] {
            lanes_[lane].push_back(record);
            done.ok();
        });
    }
    bool readOldest(const LaneKey& lane, uint32_t max, Completion done) override {
        return submit("read", false, done, [this, lane, max, done] {
            std::vector<Record> out;
            auto it = lanes_.find(lane);
            if (it != lanes_.end())
                for (size_t i = 0; i < it->second.size() && out.size() < max; ++i) out.push_back(it->second[i]);
            done.records(out);
        });
    }
    bool removeOldest(const LaneKey& lane, uint32_t n, Completion done) override {
        return submit("remove", false, done, [this, lane, n, done] {
            auto it = lanes_.find(lane);
            for (uint32_t i = 0; it != lanes_.end() && i < n && !it->second.empty(); ++i) it->second.pop_front();
            done.ok();
        });
    }
    bool clear(const LaneKey& lane, Completion done) override {
        return submit("clear", false, done, [this, lane, done] {
            lanes_.erase(lane);
            done.ok();
        });
    }
    Usage usage(const LaneKey* lane) override {
        std::lock_guard<std::mutex> lk(dataMu_);
        Usage u;
        for (auto& kv : lanes_)
            if (!lane || kv.first == *lane) u.records += kv.second.size();
        return u;
    }

private:
    // The words of the fail file, "" when it does not exist.
    std::string faults() const {
        if (failFile_.empty()) return "";
        std::ifstream f(failFile_);
        if (!f) return "";
        std::stringstream ss;
        ss << f.rdbuf();
        return " " + ss.str() + " ";
    }
    static bool has(const std::string& words, const char* w) { return words.find(w) != std::string::npos; }

    bool submit(const char* op, bool forced, Completion done, std::function<void()> work) {
        const std::string f = faults();
        const bool fail = forced || has(f, op);
        if (fail && has(f, "refuse")) return false;
        std::lock_guard<std::mutex> lk(mu_);
        if (fail) {
            const std::string why = std::string("faulty storage: injected ") + op + " failure";
            queue_.push_back([done, why] { done.fail(SF_ERR, why); });
        } else {
            queue_.push_back(std::move(work));
        }
        cv_.notify_one();
        return true;
    }

    void run() {
        for (;;) {
            std::function<void()> task;
            {
                std::unique_lock<std::mutex> lk(mu_);
                cv_.wait(lk, [this] { return stop_ || !queue_.empty(); });
                if (queue_.empty()) return;
                task = std::move(queue_.front());
                queue_.pop_front();
            }
            std::lock_guard<std::mutex> lk(dataMu_);
            task();
        }
    }

    const std::string failFile_;
    const uint64_t failEvery_;
    std::atomic<uint64_t> appends_{0};  // the host calls from any of its loops
    std::map<LaneKey, std::deque<Record>> lanes_;
    std::mutex dataMu_;
    std::mutex mu_;
    std::condition_variable cv_;
    std::deque<std::function<void()>> queue_;
    bool stop_ = false;
    std::thread worker_;
};

STREAMFENCE_STORAGE_BACKEND(FaultyStorage, "faulty", "1.0.0", "In-memory storage that fails its calls on command (tests)")
