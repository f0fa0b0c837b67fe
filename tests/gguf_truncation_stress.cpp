// The fixtures cut at many more places than the default suite does: every byte of
// stories260K's header, then every 61st byte of each file. Each cut must give a
// braid::Error, never a crash (run under the asan preset; about 4 minutes there).
#include <gtest/gtest.h>

#include "gguf_test_util.h"

namespace braid {
namespace {

TEST(GgufTruncationStress, ManyCutsOfEveryFixture) {
  if (!test::have_fixture("stories260K.gguf") || !test::have_fixture("llama-2-tiny-random.gguf") ||
      !test::have_fixture("ggml-vocab-llama-spm.gguf")) {
    return;
  }
  test::check_truncations("stories260K.gguf", 14176, 61);
  test::check_truncations("llama-2-tiny-random.gguf", 4096, 61);
  test::check_truncations("ggml-vocab-llama-spm.gguf", 4096, 61);
}

}  // namespace
}  // namespace braid
