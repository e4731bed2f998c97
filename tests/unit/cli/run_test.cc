// faasctl end to end against an in-process fake Control service on 127.0.0.1:0.
#include "faas/cli/run.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "faas/v1/control.grpc.pb.h"

namespace faas::cli {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

class FakeControl final : public faas::v1::Control::Service {
 public:
  grpc::Status Deploy(grpc::ServerContext* ctx, grpc::ServerReader<faas::v1::DeployChunk>* reader,
                      faas::v1::DeployReply* reply) override {
    std::vector<faas::v1::DeployChunk> chunks;
    faas::v1::DeployChunk chunk;
    while (reader->Read(&chunk)) {
      chunks.push_back(chunk);
    }
    std::string name = chunks.empty() ? "" : chunks.front().name();
    {
      std::lock_guard lock(mu_);
      deploy_chunks_ = chunks;
    }
    if (name == "bad") {
      ctx->AddTrailingMetadata("faas-code", "invalid_artifact");
      return {grpc::StatusCode::INVALID_ARGUMENT, "not an ELF file"};
    }
    reply->mutable_version()->set_function(name);
    reply->mutable_version()->set_version(3);
    reply->mutable_version()->set_artifact_sha256("0123456789abcdef");
    reply->set_probe_ms(4);
    return grpc::Status::OK;
  }

  grpc::Status ListFunctions(grpc::ServerContext* ctx, const faas::v1::ListFunctionsRequest*,
                             faas::v1::ListFunctionsReply* reply) override {
    RecordAuth(ctx);
    auto* f = reply->add_functions();
    f->set_name("hello");
    f->set_latest_version(1);
    f->set_version_count(1);
    return grpc::Status::OK;
  }

  grpc::Status DescribeFunction(grpc::ServerContext* ctx, const faas::v1::NameRequest* req,
                                faas::v1::FunctionInfo* reply) override {
    if (req->name() != "hello") {
      ctx->AddTrailingMetadata("faas-code", "not_found");
      return {grpc::StatusCode::NOT_FOUND, "no function \"" + req->name() + "\""};
    }
    reply->set_name("hello");
    return grpc::Status::OK;
  }

  grpc::Status Rollback(grpc::ServerContext*, const faas::v1::RollbackRequest*,
                        faas::v1::VersionInfo*) override {
    // No faas-code: the CLI falls back to the gRPC code's name.
    return {grpc::StatusCode::FAILED_PRECONDITION, "store is read-only"};
  }

  grpc::Status Invoke(grpc::ServerContext* ctx, const faas::v1::InvokeRequest* req,
                      faas::v1::InvokeReply* reply) override {
    {
      std::lock_guard lock(mu_);
      last_invoke_ = *req;
    }
    if (req->name() == "slow") {
      // Holds the call until the client's deadline cancels it.
      while (!ctx->IsCancelled()) {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
      return grpc::Status::CANCELLED;
    }
    reply->set_invocation_id("inv-42");
    if (req->async()) {
      reply->set_status(req->name() == "limited" ? 429 : 202);
      if (req->name() == "limited") {
        reply->set_error_code("rate_limited");
        reply->set_error_message("over 10/s");
      }
      return grpc::Status::OK;
    }
    reply->set_body(req->body().empty() ? std::string("out\0put\xff", 8) : "echo:" + req->body());
    reply->set_status(200);
    reply->set_cold_start(true);
    auto* t = reply->add_timings();
    t->set_phase("init");
    t->set_ms(0.5);
    reply->set_cpu_ms(0.25);
    reply->set_logs("log line\n");
    if (req->name() == "missing-page") {
      reply->set_status(404);
    } else if (req->name() == "timeout") {
      reply->set_status(504);
      reply->set_error_code("function_timeout");
      reply->set_error_message("ran past 10s");
    }
    return grpc::Status::OK;
  }

  grpc::Status GetVersion(grpc::ServerContext*, const faas::v1::VersionRequest*,
                          faas::v1::VersionReply* reply) override {
    reply->set_version("9.8.7");
    reply->set_abi("1");
    return grpc::Status::OK;
  }

  grpc::Status Bill(grpc::ServerContext*, const faas::v1::BillRequest* req,
                    faas::v1::BillReply* reply) override {
    {
      std::lock_guard lock(mu_);
      last_bill_ = *req;
    }
    if (!req->by().empty()) {
      auto* row = reply->add_rows();
      row->set_key("2026-11-29");
      row->set_invocations(2);
      row->set_cpu_ms(1.25);
      row->set_billed_ms(3);
      row->set_cost_micros(1234);
    }
    auto* total = reply->mutable_total();
    total->set_invocations(2);
    total->set_cpu_ms(1.25);
    total->set_billed_ms(3);
    total->set_cost_micros(1234);
    total->set_errors(1);
    reply->set_currency_unit("micro-USD");
    return grpc::Status::OK;
  }

  grpc::Status ListInvocations(grpc::ServerContext* ctx,
                               const faas::v1::ListInvocationsRequest* req,
                               faas::v1::ListInvocationsReply* reply) override {
    {
      std::lock_guard lock(mu_);
      last_list_invocations_ = *req;
    }
    if (req->function() != "x") {
      ctx->AddTrailingMetadata("faas-code", "not_found");
      return {grpc::StatusCode::NOT_FOUND, "no function \"" + req->function() + "\""};
    }
    auto* r = reply->add_invocations();
    r->set_invocation_id("inv-7");
    r->set_function("x");
    r->set_start_unix_ms(1795957445123);
    r->set_outcome("ok");
    r->set_wall_ns(2'500'000);
    r->set_cpu_ns(1'000'000);
    r->set_billed_ms(1);
    r->set_cost_micros(17);
    r->set_peak_memory_bytes(2048);
    r->set_kind("invocation");
    return grpc::Status::OK;
  }

  grpc::Status AddRoute(grpc::ServerContext* ctx, const faas::v1::AddRouteRequest* req,
                        faas::v1::Route* reply) override {
    if (req->route().path() == "/taken/{x}") {
      ctx->AddTrailingMetadata("faas-code", "route_conflict");
      return {grpc::StatusCode::ALREADY_EXISTS,
              "route GET /taken/{x} conflicts with route GET /taken/{id} -> f"};
    }
    *reply = req->route();
    reply->set_created_unix_ms(1795957445123);
    return grpc::Status::OK;
  }

  grpc::Status ListRoutes(grpc::ServerContext*, const faas::v1::ListRoutesRequest*,
                          faas::v1::ListRoutesReply* reply) override {
    faas::v1::Route* r = reply->add_routes();
    r->set_method("GET");
    r->set_path("/users/{id}");
    r->set_function("users");
    r = reply->add_routes();
    r->set_method("ANY");
    r->set_path("/files/{rest...}");
    r->set_host("api.example.com");
    r->set_function("files");
    return grpc::Status::OK;
  }

  grpc::Status DeleteRoute(grpc::ServerContext* ctx, const faas::v1::RouteKey* req,
                           faas::v1::DeleteReply*) override {
    if (req->path() != "/users/{id}" || req->method() != "GET") {
      ctx->AddTrailingMetadata("faas-code", "route_not_found");
      return {grpc::StatusCode::NOT_FOUND,
              "no route " + req->method() + " \"" + req->path() + "\""};
    }
    return grpc::Status::OK;
  }

  grpc::Status Prewarm(grpc::ServerContext*, const faas::v1::PrewarmRequest* req,
                       faas::v1::PrewarmReply* reply) override {
    reply->set_started(req->count());
    reply->set_idle(req->count() + 2);
    return grpc::Status::OK;
  }

  grpc::Status CreateKey(grpc::ServerContext*, const faas::v1::CreateKeyRequest* req,
                         faas::v1::CreateKeyReply* reply) override {
    {
      std::lock_guard lock(mu_);
      last_create_key_ = *req;
    }
    faas::v1::ApiKey* k = reply->mutable_key();
    k->set_id("k1");
    k->set_tenant(req->tenant());
    *k->mutable_functions() = req->functions();
    k->set_rate_per_sec(req->rate_per_sec());
    k->set_burst(req->burst());
    k->set_created_unix_ms(1714564800000);
    reply->set_secret("faas_k1_s3cr3t");
    return grpc::Status::OK;
  }

  grpc::Status ListKeys(grpc::ServerContext*, const faas::v1::ListKeysRequest*,
                        faas::v1::ListKeysReply* reply) override {
    faas::v1::ApiKey* k = reply->add_keys();
    k->set_id("k1");
    k->set_tenant("acme");
    k->set_created_unix_ms(1714564800000);
    k = reply->add_keys();
    k->set_id("k0");
    k->set_tenant("old");
    k->add_functions("f");
    k->set_rate_per_sec(5);
    k->set_created_unix_ms(1714564800000);
    k->set_revoked_unix_ms(1714564900000);
    return grpc::Status::OK;
  }

  grpc::Status RevokeKey(grpc::ServerContext* ctx, const faas::v1::KeyId* req,
                         faas::v1::ApiKey* reply) override {
    if (req->id() != "k1") {
      ctx->AddTrailingMetadata("faas-code", "key_not_found");
      return {grpc::StatusCode::NOT_FOUND, "no key \"" + req->id() + "\""};
    }
    reply->set_id("k1");
    reply->set_tenant("acme");
    reply->set_revoked_unix_ms(1714564900000);
    return grpc::Status::OK;
  }

  grpc::Status AddTrigger(grpc::ServerContext* ctx, const faas::v1::AddTriggerRequest* req,
                          faas::v1::TriggerStatus* reply) override {
    {
      std::lock_guard lock(mu_);
      last_add_trigger_ = *req;
    }
    if (req->trigger().name() == "taken") {
      ctx->AddTrailingMetadata("faas-code", "trigger_exists");
      return {grpc::StatusCode::ALREADY_EXISTS, "trigger \"taken\" exists"};
    }
    *reply->mutable_trigger() = req->trigger();
    reply->set_state("running");
    return grpc::Status::OK;
  }

  grpc::Status ListTriggers(grpc::ServerContext*, const faas::v1::ListTriggersRequest*,
                            faas::v1::ListTriggersReply* reply) override {
    faas::v1::TriggerStatus* s = reply->add_triggers();
    s->mutable_trigger()->set_name("mail");
    s->mutable_trigger()->set_function("send");
    s->mutable_trigger()->set_source("embedded");
    s->mutable_trigger()->set_queue("emails");
    s->set_state("running");
    s->set_lag(3);
    s->set_delivered(9);
    return grpc::Status::OK;
  }

  grpc::Status PauseTrigger(grpc::ServerContext* ctx, const faas::v1::TriggerName* req,
                            faas::v1::TriggerStatus* reply) override {
    return TriggerState(ctx, *req, "paused", reply);
  }
  grpc::Status ResumeTrigger(grpc::ServerContext* ctx, const faas::v1::TriggerName* req,
                             faas::v1::TriggerStatus* reply) override {
    return TriggerState(ctx, *req, "running", reply);
  }
  grpc::Status DeleteTrigger(grpc::ServerContext* ctx, const faas::v1::TriggerName* req,
                             faas::v1::DeleteReply*) override {
    faas::v1::TriggerStatus ignored;
    return TriggerState(ctx, *req, "", &ignored);
  }

  grpc::Status Publish(grpc::ServerContext*, const faas::v1::PublishRequest* req,
                       faas::v1::PublishReply* reply) override {
    {
      std::lock_guard lock(mu_);
      last_publish_ = *req;
    }
    reply->set_message_id("101");
    return grpc::Status::OK;
  }

  grpc::Status GetQueueStats(grpc::ServerContext*, const faas::v1::QueueName* req,
                             faas::v1::QueueStats* reply) override {
    reply->set_queue(req->queue());
    reply->set_ready(4);
    reply->set_dead(2);
    return grpc::Status::OK;
  }

  grpc::Status ListDead(grpc::ServerContext*, const faas::v1::ListDeadRequest* req,
                        faas::v1::ListDeadReply* reply) override {
    {
      std::lock_guard lock(mu_);
      last_list_dead_ = *req;
    }
    if (req->replay()) {
      reply->set_replayed(2);
      return grpc::Status::OK;
    }
    faas::v1::DeadMessage* m = reply->add_messages();
    m->set_message_id("7");
    m->set_origin_queue("emails");
    m->set_attempts(5);
    m->set_error("function_error: boom");
    m->set_dead_unix_ms(1714564800000);
    m->set_body("{\"to\":\"a@b\"}\n");
    return grpc::Status::OK;
  }

  std::optional<faas::v1::CreateKeyRequest> LastCreateKey() {
    std::lock_guard lock(mu_);
    return last_create_key_;
  }
  std::optional<faas::v1::AddTriggerRequest> LastAddTrigger() {
    std::lock_guard lock(mu_);
    return last_add_trigger_;
  }
  std::optional<faas::v1::PublishRequest> LastPublish() {
    std::lock_guard lock(mu_);
    return last_publish_;
  }
  std::optional<faas::v1::ListDeadRequest> LastListDead() {
    std::lock_guard lock(mu_);
    return last_list_dead_;
  }

  std::vector<faas::v1::DeployChunk> DeployChunks() {
    std::lock_guard lock(mu_);
    return deploy_chunks_;
  }
  faas::v1::InvokeRequest LastInvoke() {
    std::lock_guard lock(mu_);
    return last_invoke_;
  }
  std::optional<faas::v1::BillRequest> LastBill() {
    std::lock_guard lock(mu_);
    return last_bill_;
  }
  std::optional<faas::v1::ListInvocationsRequest> LastListInvocations() {
    std::lock_guard lock(mu_);
    return last_list_invocations_;
  }
  std::string LastAuthorization() {
    std::lock_guard lock(mu_);
    return last_authorization_;
  }

 private:
  static grpc::Status TriggerState(grpc::ServerContext* ctx, const faas::v1::TriggerName& req,
                                   const std::string& state, faas::v1::TriggerStatus* reply) {
    if (req.name() != "mail") {
      ctx->AddTrailingMetadata("faas-code", "trigger_not_found");
      return {grpc::StatusCode::NOT_FOUND, "no trigger \"" + req.name() + "\""};
    }
    reply->mutable_trigger()->set_name(req.name());
    reply->set_state(state);
    return grpc::Status::OK;
  }

  void RecordAuth(grpc::ServerContext* ctx) {
    std::lock_guard lock(mu_);
    last_authorization_.clear();
    const auto& md = ctx->client_metadata();
    if (auto it = md.find("authorization"); it != md.end()) {
      last_authorization_.assign(it->second.data(), it->second.size());
    }
  }

  std::mutex mu_;
  std::vector<faas::v1::DeployChunk> deploy_chunks_;
  faas::v1::InvokeRequest last_invoke_;
  std::optional<faas::v1::BillRequest> last_bill_;
  std::optional<faas::v1::ListInvocationsRequest> last_list_invocations_;
  std::optional<faas::v1::CreateKeyRequest> last_create_key_;
  std::optional<faas::v1::AddTriggerRequest> last_add_trigger_;
  std::optional<faas::v1::PublishRequest> last_publish_;
  std::optional<faas::v1::ListDeadRequest> last_list_dead_;
  std::string last_authorization_;
};

class RunTest : public ::testing::Test {
 protected:
  void SetUp() override {
    unsetenv("FAAS_SERVER");
    unsetenv("FAAS_TOKEN");
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(&service_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    ASSERT_GT(port, 0);
    addr_ = "127.0.0.1:" + std::to_string(port);
  }
  void TearDown() override {
    if (server_) {
      server_->Shutdown(std::chrono::system_clock::now());
    }
  }

  int RunCli(std::vector<std::string> args, const std::string& stdin_text = "") {
    args.insert(args.begin(), {"--server", addr_});
    std::istringstream in(stdin_text);
    out_.str("");
    err_.str("");
    return faas::cli::Run(args, in, out_, err_);
  }

  std::string WriteTempFile(const std::string& name, const std::string& bytes) {
    std::string path = ::testing::TempDir() + name;
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    temp_files_.push_back(path);
    return path;
  }

  ~RunTest() override {
    for (const auto& p : temp_files_) {
      (void)std::remove(p.c_str());  // best effort: TempDir is per run
    }
  }

  FakeControl service_;
  std::unique_ptr<grpc::Server> server_;
  std::string addr_;
  std::ostringstream out_, err_;
  std::vector<std::string> temp_files_;
};

std::string PatternBytes(std::size_t n) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) {
    s[i] = static_cast<char>((i * 131 + i / 7) & 0xFF);
  }
  return s;
}

TEST_F(RunTest, DeployStreamsFileInChunksWithNameAndConfigFirst) {
  constexpr std::size_t kChunk = 256 << 10;
  std::string lib = PatternBytes(2 * kChunk + 12345);
  std::string path = WriteTempFile("faasctl_run_test_lib.so", lib);

  int rc = RunCli({"deploy", "hello", path, "--memory", "256", "--min-warm", "0", "--env", "K=V"});
  ASSERT_EQ(rc, 0) << err_.str();
  EXPECT_EQ(out_.str(), "deployed hello version 3 (sha256 01234567\u2026, probe 4.0 ms)\n");

  std::vector<faas::v1::DeployChunk> chunks = service_.DeployChunks();
  ASSERT_EQ(chunks.size(), 3u);
  EXPECT_EQ(chunks[0].name(), "hello");
  ASSERT_TRUE(chunks[0].has_config());
  EXPECT_EQ(chunks[0].config().memory_mb(), 256u);
  EXPECT_TRUE(chunks[0].config().has_min_warm());
  EXPECT_EQ(chunks[0].config().env().at("K"), "V");
  std::string joined;
  for (std::size_t i = 0; i < chunks.size(); ++i) {
    if (i > 0) {
      EXPECT_EQ(chunks[i].name(), "") << "chunk " << i;
      EXPECT_FALSE(chunks[i].has_config()) << "chunk " << i;
    }
    EXPECT_LE(chunks[i].data().size(), kChunk);
    joined += chunks[i].data();
  }
  EXPECT_EQ(joined, lib);
}

TEST_F(RunTest, DeployOfExactMultipleSendsNoEmptyTrailingChunk) {
  std::string lib = PatternBytes(std::size_t{2} * (256 << 10));
  std::string path = WriteTempFile("faasctl_run_test_exact.so", lib);
  ASSERT_EQ(RunCli({"deploy", "hello", path}), 0) << err_.str();
  std::vector<faas::v1::DeployChunk> chunks = service_.DeployChunks();
  ASSERT_EQ(chunks.size(), 2u);
  EXPECT_EQ(chunks[0].data() + chunks[1].data(), lib);
}

TEST_F(RunTest, DeployJsonPrintsTheReply) {
  std::string path = WriteTempFile("faasctl_run_test_small.so", "tiny");
  ASSERT_EQ(RunCli({"-o", "json", "deploy", "hello", path}), 0) << err_.str();
  EXPECT_THAT(out_.str(), HasSubstr("\"function\": \"hello\""));
  EXPECT_THAT(out_.str(), HasSubstr("\"probe_ms\": 4"));
}

TEST_F(RunTest, FaasCodeTrailerIsExitOneWithThatCode) {
  std::string path = WriteTempFile("faasctl_run_test_bad.so", "not elf");
  EXPECT_EQ(RunCli({"deploy", "bad", path}), 1);
  EXPECT_EQ(err_.str(), "error: invalid_artifact: not an ELF file\n");
  EXPECT_EQ(out_.str(), "");

  EXPECT_EQ(RunCli({"describe", "nope"}), 1);
  EXPECT_EQ(err_.str(), "error: not_found: no function \"nope\"\n");
}

TEST_F(RunTest, GrpcCodeNameWhenNoFaasCode) {
  EXPECT_EQ(RunCli({"rollback", "hello", "1"}), 1);
  EXPECT_EQ(err_.str(), "error: failed_precondition: store is read-only\n");
}

TEST_F(RunTest, DeployOfMissingFileIsUsageErrorAndSendsNothing) {
  EXPECT_EQ(RunCli({"deploy", "hello", "/nonexistent/faasctl/lib.so"}), 2);
  EXPECT_THAT(err_.str(), HasSubstr("/nonexistent/faasctl/lib.so"));
  EXPECT_TRUE(service_.DeployChunks().empty());
}

TEST_F(RunTest, TokenTravelsAsBearerMetadata) {
  ASSERT_EQ(RunCli({"--token", "s3cret", "list"}), 0) << err_.str();
  EXPECT_EQ(service_.LastAuthorization(), "Bearer s3cret");
  ASSERT_EQ(RunCli({"list"}), 0) << err_.str();
  EXPECT_EQ(service_.LastAuthorization(), "");
}

TEST_F(RunTest, ListPrintsTable) {
  ASSERT_EQ(RunCli({"list"}), 0) << err_.str();
  EXPECT_THAT(out_.str(), StartsWith("NAME   VERSION  VERSIONS  IDLE  BUSY  INVOCATIONS  COLD"));
  EXPECT_THAT(out_.str(), HasSubstr("\nhello  1        1 "));
}

TEST_F(RunTest, InvokePrintsRawBodyWithoutNewline) {
  ASSERT_EQ(RunCli({"invoke", "echo"}), 0) << err_.str();
  EXPECT_EQ(out_.str(), std::string("out\0put\xff", 8));
  EXPECT_EQ(err_.str(), "");
}

TEST_F(RunTest, InvokeDataSourcesAndRequestFields) {
  ASSERT_EQ(RunCli({"invoke", "echo", "--data", "hi", "--method", "GET", "--path", "/x", "--query",
                    "a=1"}),
            0);
  EXPECT_EQ(out_.str(), "echo:hi");
  faas::v1::InvokeRequest req = service_.LastInvoke();
  EXPECT_EQ(req.method(), "GET");
  EXPECT_EQ(req.path(), "/x");
  EXPECT_EQ(req.query(), "a=1");

  std::string path = WriteTempFile("faasctl_run_test_body.bin", std::string("\x01\x00z", 3));
  ASSERT_EQ(RunCli({"invoke", "echo", "--data", "@" + path}), 0);
  EXPECT_EQ(service_.LastInvoke().body(), std::string("\x01\x00z", 3));

  ASSERT_EQ(RunCli({"invoke", "echo", "--data", "-"}, "from stdin"), 0);
  EXPECT_EQ(out_.str(), "echo:from stdin");

  EXPECT_EQ(RunCli({"invoke", "echo", "--data", "@/nonexistent/faasctl/body"}), 2);
}

TEST_F(RunTest, InvokeVerboseGoesToStderr) {
  ASSERT_EQ(RunCli({"invoke", "echo", "-d", "x", "-v"}), 0);
  EXPECT_EQ(out_.str(), "echo:x");
  EXPECT_EQ(err_.str(),
            "status: 200\ninvocation: inv-42\ncold start: yes\ninit: 0.50 ms\ncpu: 0.25 ms\n"
            "--- logs ---\nlog line\n");
}

TEST_F(RunTest, InvokeHttpErrorIsExitOne) {
  EXPECT_EQ(RunCli({"invoke", "missing-page"}), 1);
  EXPECT_EQ(err_.str(), "error: HTTP 404\n");
  EXPECT_EQ(RunCli({"invoke", "timeout"}), 1);
  EXPECT_EQ(err_.str(), "error: function_timeout: ran past 10s\n");
}

TEST_F(RunTest, InvokeJsonUsesBase64ForBinaryBodies) {
  ASSERT_EQ(RunCli({"-o", "json", "invoke", "echo"}), 0);
  EXPECT_THAT(out_.str(), HasSubstr("\"body_base64\": \"b3V0AHB1dP8=\""));
  ASSERT_EQ(RunCli({"-o", "json", "invoke", "echo", "-d", "text"}), 0);
  EXPECT_THAT(out_.str(), HasSubstr("\"body\": \"echo:text\""));
  EXPECT_THAT(out_.str(), HasSubstr("\"invocation_id\": \"inv-42\""));
}

TEST_F(RunTest, DeadlineAfterConnectingIsExitOne) {
  EXPECT_EQ(RunCli({"--rpc-timeout", "200ms", "invoke", "slow"}), 1);
  EXPECT_THAT(err_.str(), StartsWith("error: deadline_exceeded: "));
}

TEST_F(RunTest, VersionPrintsBothSides) {
  ASSERT_EQ(RunCli({"version"}), 0) << err_.str();
  EXPECT_EQ(out_.str(),
            std::string("faasctl ") + ClientVersion() + "\nfaasd 9.8.7 (function ABI 1)\n");
}

TEST_F(RunTest, UsageErrorIsExitTwoWithHint) {
  EXPECT_EQ(RunCli({"deploy", "hello", "x.so", "--timeout", "2x"}), 2);
  EXPECT_THAT(err_.str(), HasSubstr("--timeout \"2x\""));
  EXPECT_THAT(err_.str(), HasSubstr("run faasctl --help\n"));
}

TEST_F(RunTest, HelpIsExitZeroOnStdout) {
  EXPECT_EQ(RunCli({"--help"}), 0);
  EXPECT_THAT(out_.str(), HasSubstr("invoke"));
  EXPECT_EQ(err_.str(), "");
}

TEST_F(RunTest, BillSendsTheRequestAndPrintsRowsAndTotal) {
  ASSERT_EQ(RunCli({"bill", "--function", "x", "--since", "2026-11-29", "--by", "day"}), 0)
      << err_.str();
  std::optional<faas::v1::BillRequest> req = service_.LastBill();
  ASSERT_TRUE(req.has_value());
  EXPECT_EQ(req->function(), "x");
  EXPECT_EQ(req->since_unix_ms(), 1795910400000);  // 2026-11-29T00:00:00Z
  EXPECT_EQ(req->until_unix_ms(), 0);
  EXPECT_EQ(req->by(), "day");
  EXPECT_EQ(out_.str(),
            "DAY         INVOCATIONS  CPU MS  BILLED MS  COST (USD)  COLD STARTS  ERRORS\n"
            "2026-11-29  2            1.2     3          0.001234    0            0\n"
            "TOTAL       2            1.2     3          0.001234    0            1\n");
  EXPECT_EQ(err_.str(), "");
}

TEST_F(RunTest, BillWithoutFlagsSendsAnEmptyRequestAndPrintsTheTotal) {
  ASSERT_EQ(RunCli({"bill"}), 0) << err_.str();
  std::optional<faas::v1::BillRequest> req = service_.LastBill();
  ASSERT_TRUE(req.has_value());
  EXPECT_EQ(req->function(), "");
  EXPECT_EQ(req->since_unix_ms(), 0);
  EXPECT_EQ(req->until_unix_ms(), 0);
  EXPECT_EQ(req->by(), "");
  EXPECT_EQ(out_.str(),
            "INVOCATIONS  CPU MS  BILLED MS  COST (USD)  COLD STARTS  ERRORS\n"
            "2            1.2     3          0.001234    0            1\n");
}

TEST_F(RunTest, BillJsonHasIntegerMicrosAndDecimalCost) {
  ASSERT_EQ(RunCli({"-o", "json", "bill", "--by", "day"}), 0) << err_.str();
  nlohmann::json j = nlohmann::json::parse(out_.str());
  EXPECT_EQ(j["currency_unit"], "micro-USD");
  EXPECT_EQ(j["total"]["cost_micros"], 1234);
  EXPECT_EQ(j["total"]["cost"], "0.001234");
  ASSERT_EQ(j["rows"].size(), 1u);
  EXPECT_EQ(j["rows"][0]["key"], "2026-11-29");
}

TEST_F(RunTest, BillUsageErrorIsExitTwoAndSendsNothing) {
  EXPECT_EQ(RunCli({"bill", "--since", "2026-11-30", "--until", "2026-11-29"}), 2);
  EXPECT_THAT(err_.str(), HasSubstr("--since \"2026-11-30\" is after --until \"2026-11-29\""));
  EXPECT_EQ(RunCli({"bill", "--until", "soon"}), 2);
  EXPECT_THAT(err_.str(), HasSubstr("--until \"soon\""));
  EXPECT_FALSE(service_.LastBill().has_value());
  EXPECT_EQ(out_.str(), "");
}

TEST_F(RunTest, InvocationsSendsLastAndPrintsTable) {
  ASSERT_EQ(RunCli({"invocations", "x", "--last", "5"}), 0) << err_.str();
  std::optional<faas::v1::ListInvocationsRequest> req = service_.LastListInvocations();
  ASSERT_TRUE(req.has_value());
  EXPECT_EQ(req->function(), "x");
  EXPECT_EQ(req->last(), 5u);
  EXPECT_EQ(req->outcome(), "");
  EXPECT_EQ(out_.str(),
            "ID     START                     OUTCOME  COLD  WALL MS  CPU MS  BILLED MS  PEAK MEM  "
            "KIND\n"
            "inv-7  2026-11-29T13:04:05.123Z  ok       no    2.50     1.00    1          2.0 KiB   "
            "invocation\n");
}

TEST_F(RunTest, InvocationsDefaultsToTwentyAndSendsOutcome) {
  ASSERT_EQ(RunCli({"invocations", "x", "--outcome", "function_error"}), 0) << err_.str();
  std::optional<faas::v1::ListInvocationsRequest> req = service_.LastListInvocations();
  ASSERT_TRUE(req.has_value());
  EXPECT_EQ(req->last(), 20u);
  EXPECT_EQ(req->outcome(), "function_error");
}

TEST_F(RunTest, InvocationsJsonIsAnArrayUnderInvocations) {
  ASSERT_EQ(RunCli({"-o", "json", "invocations", "x"}), 0) << err_.str();
  nlohmann::json j = nlohmann::json::parse(out_.str());
  ASSERT_TRUE(j["invocations"].is_array());
  ASSERT_EQ(j["invocations"].size(), 1u);
  EXPECT_EQ(j["invocations"][0]["invocation_id"], "inv-7");
  EXPECT_EQ(j["invocations"][0]["wall_ns"], 2'500'000);
  EXPECT_EQ(j["invocations"][0]["cost_micros"], 17);
}

TEST_F(RunTest, InvocationsErrorsUseTheExitCodeMapping) {
  EXPECT_EQ(RunCli({"invocations", "nope"}), 1);
  EXPECT_EQ(err_.str(), "error: not_found: no function \"nope\"\n");
  EXPECT_EQ(RunCli({"invocations", "x", "--last", "1001"}), 2);
  EXPECT_THAT(err_.str(), HasSubstr("--last \"1001\": must be 1..1000"));
  EXPECT_EQ(service_.LastListInvocations()->function(), "nope");  // the usage error sent nothing
}

// A port that was just free: bind to :0, note it, close.
int ClosedPort() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof sa;
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len) != 0) {
    return 1;
  }
  ::close(fd);
  return ntohs(sa.sin_port);
}

TEST(RunUnreachable, ClosedPortIsExitThree) {
  std::string addr = "127.0.0.1:" + std::to_string(ClosedPort());
  std::istringstream in;
  std::ostringstream out, err;
  EXPECT_EQ(faas::cli::Run({"--server", addr, "--rpc-timeout", "5s", "list"}, in, out, err), 3);
  EXPECT_THAT(err.str(), StartsWith("error: cannot reach faasd at " + addr + ": "));
  EXPECT_EQ(out.str(), "");
}

TEST(RunUnreachable, VersionStillPrintsTheClientLine) {
  std::string addr = "127.0.0.1:" + std::to_string(ClosedPort());
  std::istringstream in;
  std::ostringstream out, err;
  EXPECT_EQ(faas::cli::Run({"--server", addr, "version"}, in, out, err), 3);
  EXPECT_EQ(out.str(), std::string("faasctl ") + ClientVersion() + "\n");
  EXPECT_THAT(err.str(), StartsWith("error: cannot reach faasd at " + addr));
}

TEST_F(RunTest, RouteAddListAndDelete) {
  ASSERT_EQ(RunCli({"route", "add", "get", "/users/{id}", "users", "--host", "api.example.com"}), 0)
      << err_.str();
  EXPECT_EQ(out_.str(), "added route GET /users/{id} (host api.example.com) -> users\n");
  ASSERT_EQ(RunCli({"route", "add", "ANY", "/f/{rest...}", "files", "-o", "json"}), 0);
  nlohmann::json j = nlohmann::json::parse(out_.str());
  EXPECT_EQ(j["method"], "ANY");
  EXPECT_EQ(j["function"], "files");
  EXPECT_EQ(j["host"], "");
  EXPECT_EQ(j["created_unix_ms"], 1795957445123);

  EXPECT_EQ(RunCli({"route", "add", "GET", "/taken/{x}", "f"}), 1);
  EXPECT_THAT(err_.str(), HasSubstr("error: route_conflict: route GET /taken/{x} conflicts with "
                                    "route GET /taken/{id}"));

  ASSERT_EQ(RunCli({"route", "list"}), 0);
  EXPECT_EQ(out_.str(),
            "METHOD  PATH              HOST             FUNCTION\n"
            "GET     /users/{id}       -                users\n"
            "ANY     /files/{rest...}  api.example.com  files\n");
  ASSERT_EQ(RunCli({"route", "list", "-o", "json"}), 0);
  j = nlohmann::json::parse(out_.str());
  ASSERT_EQ(j["routes"].size(), 2u);
  EXPECT_EQ(j["routes"][1]["host"], "api.example.com");

  ASSERT_EQ(RunCli({"route", "delete", "GET", "/users/{id}"}), 0) << err_.str();
  EXPECT_EQ(out_.str(), "deleted route GET /users/{id}\n");
  EXPECT_EQ(RunCli({"route", "delete", "GET", "/nope"}), 1);
  EXPECT_THAT(err_.str(), HasSubstr("error: route_not_found: no route GET \"/nope\""));
}

TEST_F(RunTest, PrewarmPrintsStartedAndIdle) {
  ASSERT_EQ(RunCli({"prewarm", "hello", "3"}), 0) << err_.str();
  EXPECT_EQ(out_.str(), "started 3 instances of hello (5 idle)\n");
  ASSERT_EQ(RunCli({"prewarm", "hello", "2", "-o", "json"}), 0);
  nlohmann::json j = nlohmann::json::parse(out_.str());
  EXPECT_EQ(j, nlohmann::json({{"started", 2}, {"idle", 4}}));
  EXPECT_EQ(RunCli({"prewarm", "hello", "1001"}), 2);
}

TEST_F(RunTest, InvokeAsyncPrintsOnlyTheInvocationId) {
  ASSERT_EQ(
      RunCli({"invoke", "echo", "--async", "--callback-url", "http://hook.example/r", "-d", "x"}),
      0)
      << err_.str();
  EXPECT_EQ(out_.str(), "inv-42\n");
  EXPECT_EQ(err_.str(), "");
  faas::v1::InvokeRequest req = service_.LastInvoke();
  EXPECT_TRUE(req.async());
  EXPECT_EQ(req.callback_url(), "http://hook.example/r");
  EXPECT_EQ(req.body(), "x");

  ASSERT_EQ(RunCli({"-o", "json", "invoke", "echo", "--async"}), 0);
  EXPECT_EQ(nlohmann::json::parse(out_.str()), nlohmann::json({{"invocation_id", "inv-42"}}));

  EXPECT_EQ(RunCli({"invoke", "limited", "--async"}), 1);
  EXPECT_EQ(err_.str(), "error: rate_limited: over 10/s\n");
  EXPECT_EQ(RunCli({"invoke", "echo", "--callback-url", "http://h/"}), 2);
}

TEST_F(RunTest, KeyCreateListRevoke) {
  ASSERT_EQ(RunCli({"key", "create", "--tenant", "acme", "--functions", "a,b", "--rate", "6000/m",
                    "--burst", "20"}),
            0)
      << err_.str();
  std::optional<faas::v1::CreateKeyRequest> req = service_.LastCreateKey();
  ASSERT_TRUE(req.has_value());
  EXPECT_EQ(req->tenant(), "acme");
  ASSERT_EQ(req->functions_size(), 2);
  EXPECT_EQ(req->functions(1), "b");
  EXPECT_DOUBLE_EQ(req->rate_per_sec(), 100.0);
  EXPECT_EQ(req->burst(), 20u);
  EXPECT_THAT(out_.str(), HasSubstr("\nkey: faas_k1_s3cr3t\nwarning: this is the only time"));

  ASSERT_EQ(RunCli({"-o", "json", "key", "create", "--tenant", "acme"}), 0);
  nlohmann::json j = nlohmann::json::parse(out_.str());
  EXPECT_EQ(j, nlohmann::json({{"id", "k1"},
                               {"tenant", "acme"},
                               {"functions", nlohmann::json::array()},
                               {"rate_per_sec", 0.0},
                               {"burst", 0},
                               {"key", "faas_k1_s3cr3t"}}));

  ASSERT_EQ(RunCli({"key", "list"}), 0);
  EXPECT_EQ(out_.str(),
            "ID  TENANT  FUNCTIONS  RATE  BURST  CREATED               STATE\n"
            "k1  acme    *          -     -      2024-05-01T12:00:00Z  active\n"
            "k0  old     f          5/s   -      2024-05-01T12:00:00Z  revoked\n");
  EXPECT_THAT(out_.str(), Not(HasSubstr("faas_")));
  ASSERT_EQ(RunCli({"key", "list", "-o", "json"}), 0);
  j = nlohmann::json::parse(out_.str());
  ASSERT_EQ(j["keys"].size(), 2u);
  EXPECT_EQ(j["keys"][1]["state"], "revoked");

  ASSERT_EQ(RunCli({"key", "revoke", "k1"}), 0) << err_.str();
  EXPECT_EQ(out_.str(), "revoked key k1 (tenant acme)\n");
  EXPECT_EQ(RunCli({"key", "revoke", "k9"}), 1);
  EXPECT_EQ(err_.str(), "error: key_not_found: no key \"k9\"\n");
  EXPECT_EQ(RunCli({"key", "create", "--tenant", "acme", "--rate", "abc/s"}), 2);
  EXPECT_THAT(err_.str(), HasSubstr("--rate \"abc/s\""));
}

TEST_F(RunTest, TriggerAddListPauseResumeDelete) {
  ASSERT_EQ(RunCli({"trigger", "add", "orders", "--function", "process", "--source",
                    "redis://127.0.0.1:6379", "--stream", "orders", "--backoff", "1s..10s"}),
            0)
      << err_.str();
  EXPECT_EQ(out_.str(),
            "added trigger orders: redis://127.0.0.1:6379 stream orders -> process (running)\n");
  std::optional<faas::v1::AddTriggerRequest> req = service_.LastAddTrigger();
  ASSERT_TRUE(req.has_value());
  EXPECT_EQ(req->trigger().backoff_min_ms(), 1000u);
  EXPECT_EQ(req->trigger().backoff_max_ms(), 10'000u);
  EXPECT_EQ(RunCli({"trigger", "add", "taken", "--function", "f", "--source", "embedded", "--queue",
                    "q"}),
            1);
  EXPECT_EQ(err_.str(), "error: trigger_exists: trigger \"taken\" exists\n");

  ASSERT_EQ(RunCli({"trigger", "list"}), 0);
  EXPECT_THAT(out_.str(), HasSubstr("\nmail  send      embedded  emails        running  3 "));
  ASSERT_EQ(RunCli({"trigger", "list", "-o", "json"}), 0);
  nlohmann::json j = nlohmann::json::parse(out_.str());
  ASSERT_EQ(j["triggers"].size(), 1u);
  EXPECT_EQ(j["triggers"][0]["delivered"], 9);

  ASSERT_EQ(RunCli({"trigger", "pause", "mail"}), 0);
  EXPECT_EQ(out_.str(), "paused trigger mail: paused\n");
  ASSERT_EQ(RunCli({"trigger", "resume", "mail"}), 0);
  EXPECT_EQ(out_.str(), "resumed trigger mail: running\n");
  ASSERT_EQ(RunCli({"trigger", "resume", "mail", "-o", "json"}), 0);
  EXPECT_EQ(nlohmann::json::parse(out_.str())["state"], "running");
  ASSERT_EQ(RunCli({"trigger", "delete", "mail"}), 0);
  EXPECT_EQ(out_.str(), "deleted trigger mail\n");
  EXPECT_EQ(RunCli({"trigger", "pause", "nope"}), 1);
  EXPECT_EQ(err_.str(), "error: trigger_not_found: no trigger \"nope\"\n");

  // Checked before anything is sent.
  service_.LastAddTrigger();
  EXPECT_EQ(RunCli({"trigger", "add", "x", "--function", "f", "--source", "redis://h:1"}), 2);
  EXPECT_THAT(err_.str(), HasSubstr("needs --stream"));
  EXPECT_EQ(service_.LastAddTrigger()->trigger().name(), "taken");
}

TEST_F(RunTest, QueuePublishStatsAndDeadLetters) {
  ASSERT_EQ(RunCli({"queue", "publish", "emails", "hello"}), 0) << err_.str();
  EXPECT_EQ(out_.str(), "101\n");
  EXPECT_EQ(service_.LastPublish()->queue(), "emails");
  EXPECT_EQ(service_.LastPublish()->body(), "hello");
  ASSERT_EQ(RunCli({"queue", "publish", "emails", "-"}, "from stdin"), 0);
  EXPECT_EQ(service_.LastPublish()->body(), "from stdin");
  std::string path = WriteTempFile("faasctl_run_test_msg.bin", std::string("\x01\x00m", 3));
  ASSERT_EQ(RunCli({"-o", "json", "queue", "publish", "emails", "@" + path}), 0);
  EXPECT_EQ(service_.LastPublish()->body(), std::string("\x01\x00m", 3));
  EXPECT_EQ(nlohmann::json::parse(out_.str()), nlohmann::json({{"message_id", "101"}}));
  EXPECT_EQ(RunCli({"queue", "publish", "emails", "@/nonexistent/faasctl/msg"}), 2);
  EXPECT_THAT(err_.str(), HasSubstr("DATA \"@/nonexistent/faasctl/msg\""));

  ASSERT_EQ(RunCli({"queue", "stats", "emails"}), 0);
  EXPECT_THAT(out_.str(), HasSubstr("queue: emails\nready: 4\n"));
  ASSERT_EQ(RunCli({"queue", "stats", "emails", "-o", "json"}), 0);
  EXPECT_EQ(nlohmann::json::parse(out_.str())["dead"], 2);

  ASSERT_EQ(RunCli({"queue", "dlq", "emails", "--limit", "10"}), 0);
  EXPECT_EQ(service_.LastListDead()->queue(), "emails.dlq");
  EXPECT_EQ(service_.LastListDead()->limit(), 10u);
  EXPECT_FALSE(service_.LastListDead()->replay());
  EXPECT_EQ(out_.str(),
            "ID  ORIGIN  ATTEMPTS  ERROR                 TIME                  BODY\n"
            "7   emails  5         function_error: boom  2024-05-01T12:00:00Z  "
            "{\"to\":\"a@b\"}\\n\n");
  ASSERT_EQ(RunCli({"queue", "dlq", "emails.dlq", "-o", "json"}), 0);
  EXPECT_EQ(service_.LastListDead()->queue(), "emails.dlq");
  nlohmann::json j = nlohmann::json::parse(out_.str());
  EXPECT_EQ(j["dlq"], "emails.dlq");
  EXPECT_EQ(j["messages"][0]["body"], "{\"to\":\"a@b\"}\n");

  ASSERT_EQ(RunCli({"queue", "dlq", "emails", "--replay"}), 0);
  EXPECT_TRUE(service_.LastListDead()->replay());
  EXPECT_EQ(out_.str(), "replayed 2 messages from emails.dlq\n");
}

}  // namespace
}  // namespace faas::cli
