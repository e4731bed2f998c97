#include "tls.h"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include <grpcpp/grpcpp.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/security/server_credentials.h>

#include "faas/base/unique_fd.h"

#include "roles.h"

namespace faas::daemon {
namespace {

Result<std::string> ReadPem(const std::string& flag, const std::string& path) {
  Result<std::string> text = ReadFile(path);
  if (!text.ok()) {
    return InvalidArgumentError(flag + " " + path + ": " + text.status().message());
  }
  if (text->find("-----BEGIN ") == std::string::npos) {
    return InvalidArgumentError(flag + " " + path + ": not a PEM file");
  }
  return text;
}

// The mistakes that would otherwise show only as failed handshakes, later and on the peer: a
// key that is not the certificate's, or a certificate the CA did not sign (or that expired).
Status CheckPems(const ClusterTls& tls) {
  auto bio = [](const std::string& pem) {
    return std::unique_ptr<BIO, decltype(&BIO_free)>(
        BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), &BIO_free);
  };
  auto cert_bio = bio(tls.cert_pem);
  std::unique_ptr<X509, decltype(&X509_free)> cert(
      PEM_read_bio_X509(cert_bio.get(), nullptr, nullptr, nullptr), &X509_free);
  if (cert == nullptr) {
    return InvalidArgumentError("--tls-cert holds no certificate");
  }
  auto key_bio = bio(tls.key_pem);
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(
      PEM_read_bio_PrivateKey(key_bio.get(), nullptr, nullptr, nullptr), &EVP_PKEY_free);
  if (key == nullptr) {
    return InvalidArgumentError("--tls-key holds no private key (or one with a passphrase)");
  }
  if (X509_check_private_key(cert.get(), key.get()) != 1) {
    return InvalidArgumentError("--tls-key is not the key of --tls-cert");
  }
  std::unique_ptr<X509_STORE, decltype(&X509_STORE_free)> store(X509_STORE_new(), &X509_STORE_free);
  auto ca_bio = bio(tls.ca_pem);
  int cas = 0;
  while (X509* ca = PEM_read_bio_X509(ca_bio.get(), nullptr, nullptr, nullptr)) {
    X509_STORE_add_cert(store.get(), ca);  // takes its own reference
    X509_free(ca);
    ++cas;
  }
  if (cas == 0) {
    return InvalidArgumentError("--tls-ca holds no certificate");
  }
  std::unique_ptr<X509_STORE_CTX, decltype(&X509_STORE_CTX_free)> ctx(X509_STORE_CTX_new(),
                                                                      &X509_STORE_CTX_free);
  if (X509_STORE_CTX_init(ctx.get(), store.get(), cert.get(), nullptr) != 1 ||
      X509_verify_cert(ctx.get()) != 1) {
    return InvalidArgumentError(std::string("--tls-cert does not verify against --tls-ca: ") +
                                X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx.get())));
  }
  return OkStatus();
}

}  // namespace

Result<std::shared_ptr<const ClusterTls>> LoadClusterTls(const DaemonConfig& config) {
  if (config.tls_ca.empty() && config.tls_cert.empty() && config.tls_key.empty()) {
    return std::shared_ptr<const ClusterTls>();
  }
  auto tls = std::make_shared<ClusterTls>();
  FAAS_ASSIGN_OR_RETURN(tls->ca_pem, ReadPem("--tls-ca", config.tls_ca));
  FAAS_ASSIGN_OR_RETURN(tls->cert_pem, ReadPem("--tls-cert", config.tls_cert));
  FAAS_ASSIGN_OR_RETURN(tls->key_pem, ReadPem("--tls-key", config.tls_key));
  tls->node_name = config.tls_node_name;
  FAAS_RETURN_IF_ERROR(CheckPems(*tls));
  return std::shared_ptr<const ClusterTls>(std::move(tls));
}

bool IsLoopbackHost(std::string_view host) {
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  return host == "localhost" || host == "::1" || host.starts_with("127.");
}

std::shared_ptr<grpc::ServerCredentials> NodeServerCredentials(const ClusterTls* tls) {
  if (tls == nullptr) {
    return grpc::InsecureServerCredentials();
  }
  grpc::SslServerCredentialsOptions opts(
      GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  opts.pem_root_certs = tls->ca_pem;
  opts.pem_key_cert_pairs.push_back({tls->key_pem, tls->cert_pem});
  return grpc::SslServerCredentials(opts);
}

std::shared_ptr<grpc::ServerCredentials> ControlServerCredentials(const ClusterTls* tls,
                                                                  const std::string& address) {
  auto host = SplitHostPort(address);
  if (tls == nullptr || (host.ok() && IsLoopbackHost(host->first))) {
    return grpc::InsecureServerCredentials();
  }
  grpc::SslServerCredentialsOptions opts(GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  opts.pem_key_cert_pairs.push_back({tls->key_pem, tls->cert_pem});
  return grpc::SslServerCredentials(opts);
}

std::shared_ptr<grpc::ChannelCredentials> NodeChannelCredentials(const ClusterTls* tls,
                                                                 grpc::ChannelArguments* args) {
  if (tls == nullptr) {
    return grpc::InsecureChannelCredentials();
  }
  if (!tls->node_name.empty()) {
    args->SetSslTargetNameOverride(tls->node_name);
  }
  grpc::SslCredentialsOptions opts;
  opts.pem_root_certs = tls->ca_pem;
  opts.pem_private_key = tls->key_pem;
  opts.pem_cert_chain = tls->cert_pem;
  return grpc::SslCredentials(opts);
}

}  // namespace faas::daemon
