// Value framing and the compressing Backend decorator (callcache/codec.h).
#include <zstd.h>

#include <atomic>
#include <string>
#include <utility>
#include <vector>

#include "callcache/codec.h"

namespace callcache {

std::string frame_value(std::string_view raw, const CompressionOptions& options) {
  if (options.threshold != 0 && raw.size() >= options.threshold) {
    std::size_t bound = ZSTD_compressBound(raw.size());
    std::string out(1 + bound, '\0');
    out[0] = static_cast<char>(kZstdFrame);
    std::size_t n = ZSTD_compress(out.data() + 1, bound, raw.data(), raw.size(), options.level);
    // Keep the compressed form only if it saves space; otherwise store raw.
    if (!ZSTD_isError(n) && n < raw.size()) {
      out.resize(1 + n);
      return out;
    }
  }
  std::string out;
  out.reserve(1 + raw.size());
  out.push_back(static_cast<char>(kRawFrame));
  out.append(raw);
  return out;
}

Result<std::string> unframe_value(std::string_view framed, std::size_t max_bytes) {
  if (framed.empty()) return Status::corruption("stored value has no frame header");
  auto header = static_cast<std::uint8_t>(framed[0]);
  std::string_view body = framed.substr(1);
  if (header == kRawFrame) {
    if (body.size() > max_bytes) {
      return Status::corruption("stored value has " + std::to_string(body.size()) +
                                " bytes, over the limit of " + std::to_string(max_bytes));
    }
    return std::string(body);
  }
  if (header != kZstdFrame) {
    return Status::corruption("stored value has unknown frame header " + std::to_string(header));
  }
  unsigned long long size = ZSTD_getFrameContentSize(body.data(), body.size());
  if (size == ZSTD_CONTENTSIZE_ERROR || size == ZSTD_CONTENTSIZE_UNKNOWN) {
    return Status::corruption("stored zstd value has no readable content size");
  }
  if (size > max_bytes) {
    return Status::corruption("stored zstd value claims " + std::to_string(size) +
                              " bytes, over the limit of " + std::to_string(max_bytes));
  }
  // Checked before allocating `size` bytes: a few bytes cannot claim a lot.
  if (size > (body.size() / 4 + 1) * ZSTD_BLOCKSIZE_MAX) {
    return Status::corruption("stored zstd value claims " + std::to_string(size) +
                              " bytes, more than its " + std::to_string(body.size()) +
                              " bytes can hold");
  }
  std::string out(static_cast<std::size_t>(size), '\0');
  std::size_t n = ZSTD_decompress(out.data(), out.size(), body.data(), body.size());
  if (ZSTD_isError(n)) {
    return Status::corruption(std::string("stored zstd value does not decode: ") +
                              ZSTD_getErrorName(n));
  }
  if (n != out.size()) return Status::corruption("stored zstd value has the wrong length");
  return out;
}

namespace {

class CompressingBackend final : public Backend {
 public:
  CompressingBackend(std::unique_ptr<Backend> inner, CompressionOptions options)
      : inner_(std::move(inner)), options_(options) {}

  std::string_view name() const noexcept override { return inner_->name(); }

  Result<std::optional<StoredValue>> get(const BackendKey& key) override {
    auto r = inner_->get(key);
    if (!r.ok() || !r->has_value()) return r;
    if (!unframe(**r)) return std::optional<StoredValue>();
    return r;
  }

  Result<std::vector<std::optional<StoredValue>>> get_many(
      std::span<const BackendKey> keys) override {
    auto r = inner_->get_many(keys);
    if (!r.ok()) return r;
    for (auto& v : *r) {
      if (v && !unframe(*v)) v.reset();
    }
    return r;
  }

  Status put(const BackendKey& key, std::string_view bytes, Duration ttl) override {
    return inner_->put(key, frame_value(bytes, options_), ttl);
  }

  Status put_many(std::span<const BackendItem> items) override {
    std::vector<std::string> framed;
    framed.reserve(items.size());
    std::vector<BackendItem> out;
    out.reserve(items.size());
    for (const auto& item : items) framed.push_back(frame_value(item.bytes, options_));
    for (std::size_t i = 0; i < items.size(); ++i) {
      out.push_back(BackendItem{items[i].key, framed[i], items[i].ttl});
    }
    return inner_->put_many(out);
  }

  Status erase(const BackendKey& key) override { return inner_->erase(key); }
  Status erase_tenant(TenantId tenant) override { return inner_->erase_tenant(tenant); }
  Status erase_namespace(std::string_view ns) override { return inner_->erase_namespace(ns); }
  Result<std::uint64_t> purge_expired() override { return inner_->purge_expired(); }
  Status flush() override { return inner_->flush(); }
  Status health() override { return inner_->health(); }
  BackendStats stats() const override {
    BackendStats s = inner_->stats();
    s.errors += corrupt_.load(std::memory_order_relaxed);
    return s;
  }

 private:
  // Replaces v.bytes by its raw form; false (counted) if it does not unframe.
  bool unframe(StoredValue& v) {
    auto raw = unframe_value(v.bytes);
    if (!raw.ok()) {
      corrupt_.fetch_add(1, std::memory_order_relaxed);
      return false;
    }
    v.bytes = std::move(*raw);
    return true;
  }

  std::unique_ptr<Backend> inner_;
  CompressionOptions options_;
  std::atomic<std::uint64_t> corrupt_{0};
};

}  // namespace

std::unique_ptr<Backend> wrap_compression(std::unique_ptr<Backend> inner,
                                          CompressionOptions options) {
  return std::make_unique<CompressingBackend>(std::move(inner), options);
}

}  // namespace callcache
