#include "redis_fixture.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

namespace callcache::testing {
namespace {

int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return 0;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof a;
  int port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0) {
    port = ntohs(a.sin_port);
  }
  ::close(fd);
  return port;
}

// True if a PING on 127.0.0.1:port answers +PONG.
bool pings(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return false;
  timeval tv{0, 200000};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  bool ok = false;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) {
    const char ping[] = "PING\r\n";
    if (::send(fd, ping, sizeof ping - 1, MSG_NOSIGNAL) == sizeof ping - 1) {
      char buf[16] = {};
      ssize_t n = ::recv(fd, buf, sizeof buf - 1, 0);
      ok = n >= 5 && std::strncmp(buf, "+PONG", 5) == 0;
    }
  }
  ::close(fd);
  return ok;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

RedisServer::~RedisServer() {
  stop();
  if (!dir_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
}

std::string RedisServer::url() const {
  return "redis://" + host_ + ":" + std::to_string(port_) + "/0";
}

std::string RedisServer::start() {
  if (running()) return "";
  if (dir_.empty()) {
    std::string tmpl = (std::filesystem::temp_directory_path() / "cc-redis-XXXXXX").string();
    std::vector<char> buf(tmpl.begin(), tmpl.end());
    buf.push_back('\0');
    if (!::mkdtemp(buf.data())) return std::string("mkdtemp: ") + std::strerror(errno);
    dir_ = buf.data();
  }
  std::string err;
  // A free port can be taken between our probe and redis's bind: try a few.
  for (int attempt = 0; attempt < 5; ++attempt) {
    port_ = free_port();
    if (port_ == 0) return "no free port";
    err = launch(std::chrono::seconds(10));
    if (err.empty()) return "";
  }
  return err;
}

std::string RedisServer::restart() {
  stop();
  // The port was ours a moment ago; redis sets SO_REUSEADDR, so it binds again.
  std::string err;
  for (int attempt = 0; attempt < 20; ++attempt) {
    err = launch(std::chrono::seconds(10));
    if (err.empty()) return "";
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return err;
}

std::string RedisServer::launch(std::chrono::milliseconds wait) {
  std::string port = std::to_string(port_);
  std::string log = dir_ + "/redis.log";
  std::vector<std::string> args = {"redis-server"};
  if (!config_text.empty() || sentinel) {
    std::string conf = dir_ + "/server.conf";
    std::ofstream(conf) << config_text;
    args.push_back(conf);
  }
  if (sentinel) args.push_back("--sentinel");
  for (std::string a : {"--port", port.c_str(), "--bind", host_.c_str(), "--dir", dir_.c_str(),
                        "--daemonize", "no", "--logfile", log.c_str()}) {
    args.push_back(a);
  }
  if (!sentinel) args.insert(args.end(), {"--save", "", "--appendonly", "no"});
  args.insert(args.end(), extra_args.begin(), extra_args.end());
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t parent = ::getpid();

  pid_t pid = ::fork();
  if (pid < 0) return std::string("fork: ") + std::strerror(errno);
  if (pid == 0) {
    // Only async-signal-safe calls between fork and exec.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlive the test process
    if (::getppid() != parent) ::_exit(1);
    int devnull = ::open("/dev/null", O_RDWR);
    if (devnull >= 0) {
      ::dup2(devnull, 0);
      ::dup2(devnull, 1);
      ::dup2(devnull, 2);
    }
    ::execvp("redis-server", argv.data());
    ::_exit(127);
  }
  pid_ = pid;
  auto deadline = std::chrono::steady_clock::now() + wait;
  while (std::chrono::steady_clock::now() < deadline) {
    int st = 0;
    if (::waitpid(pid_, &st, WNOHANG) == pid_) {
      pid_ = -1;
      std::string why = WIFEXITED(st) && WEXITSTATUS(st) == 127
                            ? "redis-server not found on PATH"
                            : "redis-server exited: " + read_file(log);
      return why;
    }
    if (pings(port_)) return "";
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  stop();
  return "redis-server did not answer PING on port " + port;
}

void RedisServer::stop() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  int st = 0;
  while (::waitpid(pid_, &st, 0) < 0 && errno == EINTR) {
  }
  pid_ = -1;
}

}  // namespace callcache::testing
