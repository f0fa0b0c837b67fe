// The auto policy's memory: which candidate won, per cache key, in one JSON file.
//
//   {"version": 1, "choices": {"<key>": {"policy": "cost", "index": 3,
//                                        "median_ms": {"serial": 1.92, "cost": 1.71},
//                                        "ratio_to_serial": {"serial": 1, "cost": 0.89},
//                                        "win_fraction": {"cost": 1}, "samples_ms": {...}}}}
//
// A missing or unreadable file is an empty cache; a failed write is ignored (the next run
// tunes again). Writes go to a temporary file renamed over the old one, so a reader never
// sees half a file; two processes tuning at once may lose one of their two entries.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "braid/autotune.h"

namespace braid::autotune {

struct CachedChoice {
  std::string policy;
  int index = 0;
};

std::optional<CachedChoice> load_choice(const std::string& path, const std::string& key);
// Returns false when the file could not be written.
bool store_choice(const std::string& path, const std::string& key, const CachedChoice& choice,
                  const std::vector<CandidateTiming>& timings);

}  // namespace braid::autotune
