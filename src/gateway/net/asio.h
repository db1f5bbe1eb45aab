// Internal: the Asio/Beast names the gateway uses, in one place.
//
// Only the translation units that do network I/O include this header
// (net/server.cpp, net/upstream.cpp, tests/gateway/fake_telegram.cpp); the
// fronts and the admin routes see plain HttpRequest/HttpResponse values.
#pragma once

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

namespace callcache::gateway {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
namespace ssl = boost::asio::ssl;
using tcp = boost::asio::ip::tcp;
using error_code = boost::system::error_code;

template <class T>
using awaitable = boost::asio::awaitable<T>;
using boost::asio::use_awaitable;

// Completion token that returns (error_code, results...) as a tuple instead of
// throwing: every error is checked at the call site.
inline constexpr auto use_nothrow = boost::asio::as_tuple(boost::asio::use_awaitable);

}  // namespace callcache::gateway
