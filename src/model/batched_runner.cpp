#include "braid/batched_runner.h"

#include <fmt/format.h>

#include <algorithm>
#include <set>

namespace braid {

BatchedRunner::BatchedRunner(const Model& model, Backend& backend, int sequences, int max_step_tokens,
                             RunnerOptions options)
    : model_(model), backend_(backend), options_(options), sequences_(sequences), max_step_tokens_(max_step_tokens) {
  model_.config.check();
  if (sequences < 1) throw Error(fmt::format("batched runner: {} sequences (at least 1)", sequences));
  if (max_step_tokens < 1) throw Error(fmt::format("batched runner: {} tokens a step (at least 1)", max_step_tokens));
  if (options_.fuse) fused_ = std::make_unique<const Model>(fuse_projections(model_));
  for (int b = 1; b < max_step_tokens; b *= 2) buckets_.push_back(b);
  buckets_.push_back(max_step_tokens);
  positions_.assign(static_cast<size_t>(sequences), 0);
  for (int b : buckets_) prepare(b);
  warm_up();
}

// On the H200 a fresh braid serve's first burst of requests ran at ~60% of the same burst
// sent again: what a first run costs (the CUDA graph's upload, the pinned buffers its
// logits are read into) fell on the first steps. Each bucket now runs once here, on
// padding alone (rows of the scratch region, which no sequence reads), and reads back
// everything a step may read.
void BatchedRunner::warm_up() {
  for (auto it = prepared_.rbegin(); it != prepared_.rend(); ++it) {
    Prepared& p = it->second;
    inputs_for({}, it->first).set(*p.executable, p.graph);
    p.executable->run();
    read_logits(p, 0, true);
  }
}

// Views, not copies (on the H200, allocating and copying 64 sequences' logits afresh each
// step cost more host time than the step's GPU time): the CPU's own memory, CUDA's pinned
// copy. The best logits first: reading the rows too (rarely needed) leaves them valid.
BatchedRunner::Logits BatchedRunner::read_logits(Prepared& p, size_t entries, bool rows) {
  const Graph& g = p.graph.graph;
  Logits out;
  if (p.graph.best_logits != kNoTensor) {
    const Tensor& best = g[p.graph.best_logits];
    const std::span<const float> all = p.executable->read_view(p.graph.best_logits, best.elements());
    const auto count = static_cast<size_t>(best.ne[0]);
    for (size_t i = 0; i < entries; ++i) {
      out.best.push_back({all.subspan(2 * i * count, count), all.subspan((2 * i + 1) * count, count), best.params.i[1]});
    }
  }
  if (rows) {
    const Tensor& logits = g[p.graph.logits];
    const std::span<const float> all = p.executable->read_view(p.graph.logits, logits.elements());
    const auto vocab = static_cast<size_t>(logits.ne[0]);
    for (size_t i = 0; i < entries; ++i) out.rows.push_back(all.subspan(i * vocab, vocab));
  }
  return out;
}

int BatchedRunner::bucket_for(int tokens) const {
  const auto it = std::lower_bound(buckets_.begin(), buckets_.end(), tokens);
  if (tokens < 1 || it == buckets_.end()) {
    throw Error(fmt::format("batched runner: a step of {} tokens (1 to {})", tokens, max_step_tokens_));
  }
  return *it;
}

void BatchedRunner::prepare(int bucket) {
  Prepared p;
  GraphOptions graph_options;
  graph_options.fuse_projections = options_.fuse;
  graph_options.sequences = sequences_;
  graph_options.best_logits = options_.best_logits;
  p.graph = build_graph(fused_ ? *fused_ : model_, bucket, graph_options);
  if (options_.policy == Policy::Auto) {
    AutoOptions tuning = options_.autotune;
    tuning.exec = options_.exec;
    // Time a step like the ones it will run: tokens spread over every sequence. (Tuning
    // writes into the caches: it happens here, before any sequence starts.)
    std::vector<BatchEntry> entries(static_cast<size_t>(std::min(bucket, sequences_)));
    for (int i = 0; i < bucket; ++i) {
      BatchEntry& e = entries[static_cast<size_t>(i % sequences_)];
      e.sequence = i % sequences_;
      e.tokens.push_back((i * 7919 + 1) % model_.config.n_vocab);
    }
    const Inputs inputs = inputs_for(entries, bucket);
    tuning.stage_inputs = [&](Executable& executable) { inputs.set(executable, p.graph); };
    p.plan = choose_plan(backend_, p.graph.graph, options_.plan, tuning, &auto_reports_[bucket]);
  } else {
    p.plan = make_plan(p.graph.graph, options_.policy, options_.plan);
  }
  p.executable = backend_.compile(p.graph.graph, p.plan, options_.exec);
  prepared_.emplace(bucket, std::move(p));
}

void BatchedRunner::Inputs::set(Executable& x, const ModelGraph& g) const {
  x.set_input(g.tokens, tokens.data(), tokens.size() * sizeof(int32_t));
  x.set_input(g.positions, positions.data(), positions.size() * sizeof(int32_t));
  x.set_input(g.cache_rows, cache_rows.data(), cache_rows.size() * sizeof(int32_t));
  x.set_input(g.logit_rows, logit_rows.data(), logit_rows.size() * sizeof(int32_t));
}

int BatchedRunner::check(const std::vector<BatchEntry>& entries) const {
  if (entries.empty()) throw Error("batched runner: an empty step");
  std::set<int> seen;
  int tokens = 0;
  for (const BatchEntry& e : entries) {
    if (e.sequence < 0 || e.sequence >= sequences_) {
      throw Error(fmt::format("batched runner: sequence {} of {}", e.sequence, sequences_));
    }
    if (!seen.insert(e.sequence).second) {
      throw Error(fmt::format("batched runner: sequence {} appears twice in one step", e.sequence));
    }
    if (e.tokens.empty()) throw Error(fmt::format("batched runner: no tokens for sequence {}", e.sequence));
    const int position = positions_[static_cast<size_t>(e.sequence)];
    if (position + static_cast<int>(e.tokens.size()) > model_.config.n_ctx) {
      throw Error(fmt::format("context full: {} tokens at position {} of sequence {} exceed the context of {}",
                              e.tokens.size(), position, e.sequence, model_.config.n_ctx));
    }
    for (int32_t t : e.tokens) {
      if (t < 0 || t >= model_.config.n_vocab) {
        throw Error(fmt::format("token id {} outside the vocabulary of {}", t, model_.config.n_vocab));
      }
    }
    tokens += static_cast<int>(e.tokens.size());
  }
  bucket_for(tokens);  // (throws when the step is too large)
  return tokens;
}

BatchedRunner::Inputs BatchedRunner::inputs_for(const std::vector<BatchEntry>& entries, int bucket) const {
  const int n_ctx = model_.config.n_ctx;
  Inputs in;
  for (const BatchEntry& e : entries) {
    int position = positions_[static_cast<size_t>(e.sequence)];
    for (int32_t t : e.tokens) {
      in.tokens.push_back(t);
      in.positions.push_back(position);
      in.cache_rows.push_back(e.sequence * n_ctx + position);
      ++position;
    }
    in.logit_rows.push_back(static_cast<int32_t>(in.tokens.size()) - 1);
  }
  // Padding: token 0 at positions 0, 1, ... of the scratch region (after the sequences'),
  // which nothing else reads (more padding than rows: some rows are written twice, with
  // finite values either way).
  for (int j = 0; static_cast<int>(in.tokens.size()) < bucket; ++j) {
    in.tokens.push_back(0);
    in.positions.push_back(j % n_ctx);
    in.cache_rows.push_back(sequences_ * n_ctx + j % n_ctx);
  }
  in.logit_rows.resize(static_cast<size_t>(std::min(bucket, sequences_)), 0);
  return in;
}

BatchedRunner::Prepared& BatchedRunner::stage(const std::vector<BatchEntry>& entries) {
  const int bucket = bucket_for(check(entries));
  Prepared& p = prepared_.at(bucket);
  inputs_for(entries, bucket).set(*p.executable, p.graph);
  for (const BatchEntry& e : entries) positions_[static_cast<size_t>(e.sequence)] += static_cast<int>(e.tokens.size());
  return p;
}

BatchedRunner::Logits BatchedRunner::step(const std::vector<BatchEntry>& entries, bool rows) {
  Prepared& p = stage(entries);
  p.executable->run();
  return read_logits(p, entries.size(), rows);
}

std::vector<std::span<const float>> BatchedRunner::step(const std::vector<BatchEntry>& entries) {
  return step(entries, true).rows;
}

std::vector<StepTiming> BatchedRunner::trace(const std::vector<BatchEntry>& entries) {
  return stage(entries).executable->trace_run();
}

void BatchedRunner::reset(int sequence) {
  if (sequence < 0 || sequence >= sequences_) {
    throw Error(fmt::format("batched runner: sequence {} of {}", sequence, sequences_));
  }
  positions_[static_cast<size_t>(sequence)] = 0;
}

}  // namespace braid
