// HTTP side: GET /ping, POST /token/websocket, and the WebSocket upgrade on /ws
// (authenticated at the upgrade by ?apiKey=, an x-api-key header, or ?token=).
#pragma once
#include <Poco/Net/HTTPRequestHandlerFactory.h>

namespace hpkv {

struct App;

class RequestHandlerFactory : public Poco::Net::HTTPRequestHandlerFactory {
public:
    explicit RequestHandlerFactory(App& app) : app_(app) {}
    Poco::Net::HTTPRequestHandler* createRequestHandler(const Poco::Net::HTTPServerRequest& request) override;

private:
    App& app_;
};

}  // namespace hpkv
