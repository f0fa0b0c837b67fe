// Renderings of a traced run: Chrome trace JSON (opens in Perfetto or chrome://tracing,
// one track per stream) and an SVG timeline picture of the streams.
#pragma once

#include <string>
#include <vector>

#include "braid/backend.h"

namespace braid::cli {

std::string chrome_trace_json(const Graph& graph, const Plan& plan, const std::vector<StepTiming>& timings,
                              const std::string& title);
std::string timeline_svg(const Graph& graph, const Plan& plan, const std::vector<StepTiming>& timings,
                         const std::string& title);

}  // namespace braid::cli
