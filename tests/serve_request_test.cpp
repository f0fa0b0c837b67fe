// The request parser of `braid serve`: what a client may send, and the 400s for the rest.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "serve/request.h"

namespace braid::serve {
namespace {

const RequestLimits kLimits{512, {"stories260K"}};

Request chat(const std::string& body) { return parse_request(body, Endpoint::Chat, kLimits); }
Request completion(const std::string& body) { return parse_request(body, Endpoint::Completion, kLimits); }

// The error a body gets, as the client would read it.
RequestError chat_error(const std::string& body, Endpoint endpoint = Endpoint::Chat) {
  try {
    parse_request(body, endpoint, kLimits);
  } catch (const RequestError& e) {
    return e;
  }
  ADD_FAILURE() << "accepted: " << body;
  return RequestError(0, "");
}

TEST(ServeRequestTest, ReadsAChatRequest) {
  const Request r = chat(R"({"model": "stories260K", "messages": [{"role": "system", "content": "Be brief."},
      {"role": "user", "content": [{"type": "text", "text": "Once"}, {"type": "text", "text": " upon"}]}],
      "max_tokens": 16, "temperature": 0, "top_p": 0.5, "top_k": 7, "seed": 42, "stop": ["\n", "end"],
      "presence_penalty": 0.5, "frequency_penalty": -1,
      "stream": true, "stream_options": {"include_usage": true}, "logprobs": null, "user": "x", "ignore_eos": true})");
  ASSERT_EQ(r.messages.size(), 2u);
  EXPECT_EQ(r.messages[0].role, "system");
  EXPECT_EQ(r.messages[1].content, "Once upon");
  EXPECT_EQ(r.model, "stories260K");
  EXPECT_EQ(r.max_tokens, 16);
  EXPECT_EQ(r.temperature, 0.0f);
  EXPECT_EQ(r.top_p, 0.5f);
  EXPECT_EQ(r.top_k, 7);
  EXPECT_EQ(r.presence_penalty, 0.5f);
  EXPECT_EQ(r.frequency_penalty, -1.0f);
  EXPECT_EQ(r.seed, 42u);
  EXPECT_EQ(r.stop, (std::vector<std::string>{"\n", "end"}));
  EXPECT_TRUE(r.stream);
  EXPECT_TRUE(r.include_usage);
  EXPECT_TRUE(r.ignore_eos);
}

TEST(ServeRequestTest, AbsentAndNullFieldsTakeDefaults) {
  const Request r = completion(R"({"prompt": "Once", "max_tokens": null, "stop": "x", "model": null})");
  EXPECT_EQ(r.prompt, "Once");
  EXPECT_FALSE(r.max_tokens);
  EXPECT_FALSE(r.temperature);
  EXPECT_FALSE(r.seed);
  EXPECT_EQ(r.stop, std::vector<std::string>{"x"});
  EXPECT_FALSE(r.stream);
  EXPECT_FALSE(r.ignore_eos);
  EXPECT_EQ(completion(R"({"prompt": ["one string"]})").prompt, "one string");
  EXPECT_EQ(chat(R"({"messages": [{"role": "developer", "content": "x"}]})").messages[0].role, "system");
}

TEST(ServeRequestTest, RefusesBadBodiesWith400AndTheField) {
  struct Case {
    const char* body;
    const char* param;
  };
  const Case cases[] = {
      {R"({"messages": [)", ""},
      {R"([1, 2])", ""},
      {"", ""},
      {R"({})", "messages"},
      {R"({"messages": "hi"})", "messages"},
      {R"({"messages": []})", "messages"},
      {R"({"messages": [{"role": "user"}]})", "messages[0].content"},
      {R"({"messages": [{"role": "tool", "content": "x"}]})", "messages[0].role"},
      {R"({"messages": [{"role": "user", "content": 5}]})", "messages[0].content"},
      {R"({"messages": [{"role": "user", "content": [{"type": "image_url"}]}]})", "messages[0].content[0].type"},
      {R"({"messages": [{"role": "user", "content": "x"}], "max_tokens": "10"})", "max_tokens"},
      {R"({"messages": [{"role": "user", "content": "x"}], "max_tokens": 1.5})", "max_tokens"},
      {R"({"messages": [{"role": "user", "content": "x"}], "max_tokens": 0})", "max_tokens"},
      {R"({"messages": [{"role": "user", "content": "x"}], "max_tokens": -3})", "max_tokens"},
      {R"({"messages": [{"role": "user", "content": "x"}], "max_tokens": 513})", "max_tokens"},
      {R"({"messages": [{"role": "user", "content": "x"}], "max_tokens": 18446744073709551615})", "max_tokens"},
      {R"({"messages": [{"role": "user", "content": "x"}], "temperature": "hot"})", "temperature"},
      {R"({"messages": [{"role": "user", "content": "x"}], "temperature": 3})", "temperature"},
      {R"({"messages": [{"role": "user", "content": "x"}], "top_p": -0.1})", "top_p"},
      {R"({"messages": [{"role": "user", "content": "x"}], "top_k": -1})", "top_k"},
      {R"({"messages": [{"role": "user", "content": "x"}], "seed": "s"})", "seed"},
      {R"({"messages": [{"role": "user", "content": "x"}], "stop": 3})", "stop"},
      {R"({"messages": [{"role": "user", "content": "x"}], "stop": ["a", "b", "c", "d", "e"]})", "stop"},
      {R"({"messages": [{"role": "user", "content": "x"}], "stop": [""]})", "stop"},
      {R"({"messages": [{"role": "user", "content": "x"}], "stream": "yes"})", "stream"},
      {R"({"messages": [{"role": "user", "content": "x"}], "ignore_eos": 1})", "ignore_eos"},
      {R"({"messages": [{"role": "user", "content": "x"}], "n": 2})", "n"},
      {R"({"messages": [{"role": "user", "content": "x"}], "model": 7})", "model"},
      // What braid cannot honour, asked for: refused rather than silently ignored.
      {R"({"messages": [{"role": "user", "content": "x"}], "logprobs": true})", "logprobs"},
      {R"({"messages": [{"role": "user", "content": "x"}], "top_logprobs": 3})", "top_logprobs"},
      {R"({"messages": [{"role": "user", "content": "x"}], "tools": [{"type": "function"}]})", "tools"},
      {R"({"messages": [{"role": "user", "content": "x"}], "functions": [{"name": "f"}]})", "functions"},
      {R"({"messages": [{"role": "user", "content": "x"}], "logit_bias": {"50256": -100}})", "logit_bias"},
      {R"({"messages": [{"role": "user", "content": "x"}], "presence_penalty": 2.5})", "presence_penalty"},
      {R"({"messages": [{"role": "user", "content": "x"}], "frequency_penalty": "some"})", "frequency_penalty"},
      {R"({"messages": [{"role": "user", "content": "x"}], "response_format": {"type": "json_object"}})",
       "response_format"},
      {R"({"messages": [{"role": "user", "content": "x"}], "response_format": "text"})", "response_format"},
  };
  for (const Case& c : cases) {
    const RequestError e = chat_error(c.body);
    EXPECT_EQ(e.status, 400) << c.body;
    EXPECT_EQ(e.param, c.param) << c.body;
    EXPECT_EQ(e.type, "invalid_request_error");
    EXPECT_FALSE(std::string(e.what()).empty());
  }
  EXPECT_EQ(chat_error(R"({"prompt": 5})", Endpoint::Completion).param, "prompt");
  EXPECT_EQ(chat_error(R"({"prompt": [1, 2, 3]})", Endpoint::Completion).param, "prompt");
  EXPECT_EQ(chat_error(R"({"max_tokens": 5})", Endpoint::Completion).param, "prompt");
  EXPECT_EQ(chat_error(R"({"prompt": "x", "logprobs": 2})", Endpoint::Completion).param, "logprobs");
  EXPECT_EQ(chat_error(R"({"prompt": "x", "echo": true})", Endpoint::Completion).param, "echo");
  EXPECT_EQ(chat_error(R"({"prompt": "x", "suffix": "end"})", Endpoint::Completion).param, "suffix");
  EXPECT_EQ(chat_error(R"({"prompt": "x", "best_of": 2})", Endpoint::Completion).param, "best_of");
}

// Clients send the fields braid cannot honour with their neutral values by default: those pass.
TEST(ServeRequestTest, NeutralValuesOfUnsupportedFieldsPass) {
  const Request r = chat(R"({"messages": [{"role": "user", "content": "x"}], "logprobs": false, "top_logprobs": 0,
      "tools": [], "tool_choice": "none", "logit_bias": {}, "presence_penalty": 0, "frequency_penalty": 0.0,
      "response_format": {"type": "text"}, "user": "u", "metadata": {"k": "v"}})");
  EXPECT_EQ(r.messages.size(), 1u);
  const Request c = completion(R"({"prompt": "x", "logprobs": 0, "echo": false, "suffix": "", "best_of": 1})");
  EXPECT_EQ(c.prompt, "x");
}

TEST(ServeRequestTest, UnknownModelIsModelNotFound) {
  const RequestError e = chat_error(R"({"model": "gpt-4", "messages": [{"role": "user", "content": "x"}]})");
  EXPECT_EQ(e.status, 400);
  EXPECT_EQ(e.code, "model_not_found");
  EXPECT_NE(std::string(e.what()).find("gpt-4"), std::string::npos);
}

TEST(ServeRequestTest, DeepNestingIsRefusedNotRecursedInto) {
  const std::string deep = R"({"messages": )" + std::string(100000, '[') + std::string(100000, ']') + "}";
  EXPECT_EQ(chat_error(deep).status, 400);
  // Brackets inside strings do not count.
  EXPECT_EQ(chat(R"({"messages": [{"role": "user", "content": ")" + std::string(200, '[') + R"("}]})")
                .messages[0].content.size(),
            200u);
}

TEST(ServeRequestTest, ErrorBodyHasOpenAIsShape) {
  const auto body = nlohmann::json::parse(error_body(RequestError(400, "bad \xff thing", "max_tokens")));
  ASSERT_TRUE(body.contains("error"));
  EXPECT_EQ(body["error"]["type"], "invalid_request_error");
  EXPECT_EQ(body["error"]["param"], "max_tokens");
  EXPECT_TRUE(body["error"]["code"].is_null());
  EXPECT_NE(body["error"]["message"].get<std::string>().find("bad"), std::string::npos);
}

TEST(ServeRequestTest, PromptLengthAgainstTheContext) {
  Request r = completion(R"({"prompt": "x"})");
  EXPECT_EQ(check_prompt_length(r, 12, 512), 500);  // no max_tokens: the rest of the context
  EXPECT_THROW(check_prompt_length(r, 512, 512), RequestError);
  EXPECT_THROW(check_prompt_length(r, 0, 512), RequestError);
  r.max_tokens = 100;
  EXPECT_EQ(check_prompt_length(r, 412, 512), 100);
  try {
    check_prompt_length(r, 413, 512);
    FAIL();
  } catch (const RequestError& e) {
    EXPECT_EQ(e.status, 400);
    EXPECT_EQ(e.param, "max_tokens");
  }
}

}  // namespace
}  // namespace braid::serve
