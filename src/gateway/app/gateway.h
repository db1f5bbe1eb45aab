// callcache serve: the gateway process — a caching, coalescing, pacing HTTP
// proxy in front of the Telegram Bot API and of generic JSON APIs described
// by rules (config `apis:`). Gateway wires the parts together (engine, L2
// tier — SQLite, Redis or none — rate limiter, upstream client, Bot API
// handler, generic API handlers, router, admin handler, two listeners, I/O
// threads) and runs the shutdown sequence; serve_main() is the
// `callcache serve` command line.
//
// Lifecycle: create() builds and binds (errors name the config key);
// start() starts the I/O threads; stop() (or SIGINT/SIGTERM under
// run_until_signal()) begins a graceful shutdown; wait() blocks until it is
// done: stop accepting, let in-flight requests finish up to
// shutdown_timeout, close the rest, flush the L2 tier, and returns the exit
// code (0).
//
// Thread-safety: stop() may be called from any thread (and more than once);
// the other members from the owning thread.
#pragma once

#include <cstdint>
#include <memory>

#include "callcache/engine.h"
#include "callcache/status.h"
#include "gateway/app/config.h"

namespace callcache::gateway {

class Metrics;

class Gateway {
 public:
  static Result<std::unique_ptr<Gateway>> create(GatewayConfig config);
  ~Gateway();
  Gateway(const Gateway&) = delete;
  Gateway& operator=(const Gateway&) = delete;

  // Bound ports (config ports may be 0 in tests). admin_port() is 0 when the
  // admin listener is disabled.
  std::uint16_t port() const;
  std::uint16_t admin_port() const;

  void start();
  void stop();
  // REQUIRES: start() was called. Returns the process exit code.
  int wait();
  // start(), then waits for SIGINT/SIGTERM, then stop() + wait().
  int run_until_signal();

  // For tests and the admin page.
  Engine& engine();
  const Metrics& metrics() const;

  class Impl;

 private:
  explicit Gateway(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// `callcache serve [options]`: argv[0] is the program (or subcommand) name.
// Options: --config FILE, --listen HOST:PORT, --upstream URL, --threads N,
// --admin-listen HOST:PORT, --no-admin, --admin-token T,
// --storage sqlite|redis|none, --sqlite-path FILE, --redis-url URL,
// --access-log -|off|FILE, --log-level LEVEL.
// Returns the exit code: 0 after a graceful shutdown, 1 on a runtime error,
// 2 on a usage or config error (printed to stderr).
int serve_main(int argc, char** argv);

}  // namespace callcache::gateway
