#include "backend/autotune_cache.h"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <random>
#include <system_error>

namespace braid::autotune {

namespace {

using nlohmann::json;
constexpr int kCacheVersion = 1;

// The whole file, or an empty cache when it is missing, unreadable or of another version.
json load_file(const std::string& path) {
  json empty = {{"version", kCacheVersion}, {"choices", json::object()}};
  std::ifstream in(path);
  if (!in) return empty;
  json doc = json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (!doc.is_object() || doc.value("version", 0) != kCacheVersion || !doc.contains("choices") ||
      !doc["choices"].is_object()) {
    return empty;
  }
  return doc;
}

}  // namespace

std::optional<CachedChoice> load_choice(const std::string& path, const std::string& key) {
  const json doc = load_file(path);
  const auto it = doc["choices"].find(key);
  if (it == doc["choices"].end() || !it->is_object()) return std::nullopt;
  const json& entry = *it;
  if (!entry.contains("policy") || !entry["policy"].is_string() || !entry.contains("index") ||
      !entry["index"].is_number_integer()) {
    return std::nullopt;
  }
  return CachedChoice{entry["policy"].get<std::string>(), entry["index"].get<int>()};
}

bool store_choice(const std::string& path, const std::string& key, const CachedChoice& choice,
                  const std::vector<CandidateTiming>& timings) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::path target(path);
  if (target.has_parent_path()) fs::create_directories(target.parent_path(), ec);
  if (ec) return false;

  // Re-read just before writing, to keep entries another process added meanwhile.
  json doc = load_file(path);
  // The evidence behind the choice (Note [Choosing a plan through noise]): per candidate,
  // its median, its paired ratio to serial, the share of rounds it won, every sample.
  json times = json::object(), ratios = json::object(), wins = json::object(), samples = json::object();
  for (const CandidateTiming& t : timings) {
    if (t.median_ms < 0) continue;
    times[t.policy] = t.median_ms;
    ratios[t.policy] = t.ratio_to_serial;
    wins[t.policy] = t.win_fraction;
    samples[t.policy] = t.samples_ms;
  }
  doc["choices"][key] = {{"policy", choice.policy}, {"index", choice.index}, {"median_ms", times},
                         {"ratio_to_serial", ratios}, {"win_fraction", wins}, {"samples_ms", samples}};

  std::random_device random;
  const fs::path temporary = target.string() + ".tmp" + std::to_string(random());
  {
    std::ofstream out(temporary);
    if (!out) return false;
    out << doc.dump(2) << '\n';
    if (!out) {
      out.close();
      fs::remove(temporary, ec);
      return false;
    }
  }
  fs::rename(temporary, target, ec);
  if (ec) {
    fs::remove(temporary, ec);
    return false;
  }
  return true;
}

}  // namespace braid::autotune
